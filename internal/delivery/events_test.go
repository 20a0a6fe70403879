package delivery_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/ledger/ledgertest"
	"github.com/recledger/recledger/rc"
)

const t0 = int64(1_764_000_000_000) // RC's clock and the server's start here

func callback(typ rc.Type, ts int64, file string, code int) rc.Callback {
	cb := rc.Callback{Timestamp: ts, Type: typ, AppKey: "app", RecordID: "rec1", RoomID: "room",
		SessionID: "sess", UserID: "u1", Mode: rc.ModeVideo, Code: code}
	cb.Output.FileName = file
	switch typ {
	case rc.TypeStart:
		cb.Config = &rc.Config{MixLayout: 2, SlicesMin: 30, AudioFormat: "aac", VideoFormat: "mp4"}
		cb.Output.FileName = "temporary.mp4"
	case rc.TypeSegment, rc.TypeEnd:
		size := int64(1000 + len(file))
		cb.Output.FileSize = &size
	case rc.TypeUpload:
		if code == 200 {
			cb.Output.FileURL = "https://oss.example.com/" + file
		}
	}
	return cb
}

func file(i int) string { return fmt.Sprintf("sess_room_u1_%d.mp4", t0+int64(i)*1_800_000) }

// recording is one recording as RC sends it: start, two segments, the end,
// and an upload per file, the final file's first upload failing.
func recording() []rc.Callback {
	return []rc.Callback{
		callback(rc.TypeStart, t0, "", 200),
		callback(rc.TypeSegment, t0+1_800_000, file(0), 200),
		callback(rc.TypeUpload, t0+1_805_000, file(0), 200),
		callback(rc.TypeEnd, t0+2_000_000, file(1), 200),
		callback(rc.TypeUpload, t0+2_005_000, file(1), 500),
		callback(rc.TypeUpload, t0+2_015_000, file(1), 200),
		callback(rc.TypeSegment, t0+1_900_000, file(2), 200), // a second stream's segment
		callback(rc.TypeUpload, t0+1_905_000, file(2), 200),
	}
}

type announced struct {
	delivery.Change
	at int64
}

// play delivers callbacks in order, one a second (within Settle of each
// other), skipping redeliveries as the log does; it derives after each and
// once more when the recording has been quiet for Settle.
func play(r delivery.Rules, cbs []rc.Callback) (ledger.State, []announced) {
	var (
		st   ledger.State
		a    delivery.Announced
		out  []announced
		seen = map[rc.Key]bool{}
		now  = t0 + 3_000_000
	)
	for _, cb := range cbs {
		now += 1000
		if !seen[cb.Key()] {
			seen[cb.Key()] = true
			st = ledger.Apply(st, cb, now)
		}
		for _, c := range r.Derive(&st, &a, now) {
			out = append(out, announced{c, now})
		}
	}
	now += r.Settle.Milliseconds()
	for _, c := range r.Derive(&st, &a, now) {
		out = append(out, announced{c, now})
	}
	return st, out
}

// check holds the rules an order of arrival may never break.
func check(t *testing.T, st ledger.State, events []announced) {
	t.Helper()
	index := map[string]int{}
	for i, e := range events {
		if e.Sequence != i+1 {
			t.Fatalf("event %d has sequence %d", i+1, e.Sequence)
		}
		k := string(e.Type) + " " + e.File
		if _, dup := index[k]; dup {
			t.Fatalf("%s announced twice: %v", k, events)
		}
		index[k] = i
	}
	at := func(typ delivery.Type, file string) (int, bool) {
		i, ok := index[string(typ)+" "+file]
		return i, ok
	}
	for name := range st.Files {
		created, ok := at(delivery.FileCreated, name)
		if !ok {
			t.Fatalf("file %s never announced created", name)
		}
		up, upOK := at(delivery.FileUploaded, name)
		failed, failedOK := at(delivery.UploadFailed, name)
		if upOK && up < created || failedOK && failed < created {
			t.Fatalf("file %s uploaded or failed before it was created: %v", name, events)
		}
		if upOK && failedOK && failed > up {
			t.Fatalf("file %s: upload_failed after file_uploaded: %v", name, events)
		}
	}
	done, ok := at(delivery.Completed, "")
	if ok != (st.Status() == ledger.StatusComplete) {
		t.Fatalf("completed announced %v, final status %s", ok, st.Status())
	}
	if ok {
		if done != len(events)-1 {
			t.Fatalf("events after completed: %v", events[done:])
		}
		if end, ended := at(delivery.Ended, ""); !ended || end > done {
			t.Fatalf("completed without or before ended: %v", events)
		}
		for name := range st.Files {
			if up, upOK := at(delivery.FileUploaded, name); !upOK || up > done {
				t.Fatalf("completed before %s was uploaded: %v", name, events)
			}
		}
		if _, failed := at(delivery.Failed, ""); failed {
			t.Fatalf("both completed and failed: %v", events)
		}
	}
}

// kinds is the set of (type, file) announced, without upload_failed: a
// failure seen before the success, or not at all, depends on arrival.
func kinds(events []announced) []string {
	var out []string
	for _, e := range events {
		if e.Type != delivery.UploadFailed {
			out = append(out, string(e.Type)+" "+e.File)
		}
	}
	slices.Sort(out)
	return out
}

// TestEveryOrder feeds every order of a recording's eight callbacks
// (40,320 orders): none announces a thing twice, out of order, or
// contradicted by a later state, and every order announces the same
// events (upload failures aside).
func TestEveryOrder(t *testing.T) {
	r := delivery.Rules{Settle: time.Minute}
	cbs := recording()
	st, inOrder := play(r, cbs)
	check(t, st, inOrder)
	want := kinds(inOrder)
	if !slices.Contains(want, string(delivery.Completed)+" ") {
		t.Fatalf("RC's order does not complete: %v", inOrder)
	}
	orders := 0
	ledgertest.Permute(len(cbs), func(p []int) {
		orders++
		shuffled := make([]rc.Callback, len(p))
		for i, j := range p {
			shuffled[i] = cbs[j]
		}
		st, events := play(r, shuffled)
		check(t, st, events)
		if got := kinds(events); !slices.Equal(got, want) {
			t.Fatalf("order %v announces %v, RC's order %v", p, got, want)
		}
	})
	if orders != 40320 {
		t.Fatalf("checked %d orders", orders)
	}
}

// TestRedeliveriesAndLongRecordings: a recording of 30 segments and their
// uploads, some failing first, every callback delivered up to three
// times, in 300 random orders.
func TestRedeliveriesAndLongRecordings(t *testing.T) {
	r := delivery.Rules{Settle: time.Minute}
	var cbs []rc.Callback
	cbs = append(cbs, callback(rc.TypeStart, t0, "", 200))
	for i := range 30 {
		typ := rc.TypeSegment
		if i == 29 {
			typ = rc.TypeEnd
		}
		cbs = append(cbs, callback(typ, t0+int64(i+1)*1_800_000, file(i), 200))
		if i%4 == 0 {
			cbs = append(cbs, callback(rc.TypeUpload, t0+int64(i+1)*1_800_000+5000, file(i), 500))
		}
		cbs = append(cbs, callback(rc.TypeUpload, t0+int64(i+1)*1_800_000+9000, file(i), 200))
	}
	_, inOrder := play(r, cbs)
	want := kinds(inOrder)
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		var shuffled []rc.Callback
		for _, cb := range cbs {
			for range 1 + rnd.IntN(3) {
				shuffled = append(shuffled, cb)
			}
		}
		rnd.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		st, events := play(r, shuffled)
		check(t, st, events)
		if got := kinds(events); !slices.Equal(got, want) {
			t.Fatalf("announces %v, RC's order %v", got, want)
		}
	}
}

// TestSettle: a complete recording is announced completed only once it
// has been quiet for Settle; a file that appears later still gets its own
// events, but no second completed.
func TestSettle(t *testing.T) {
	r := delivery.Rules{Settle: time.Minute}
	var (
		st ledger.State
		a  delivery.Announced
	)
	at := t0
	for _, cb := range []rc.Callback{
		callback(rc.TypeStart, t0, "", 200),
		callback(rc.TypeEnd, t0+60_000, file(1), 200),
		callback(rc.TypeUpload, t0+65_000, file(1), 200),
	} {
		at += 1000
		st = ledger.Apply(st, cb, at)
		r.Derive(&st, &a, at)
	}
	if got := r.Derive(&st, &a, at+59_999); len(got) != 0 {
		t.Fatalf("59.999 s after the last callback: %v", got)
	}
	if due, ok := r.Due(&st, &a); !ok || due != at+60_000 {
		t.Fatalf("Due = %d, %v; want %d", due, ok, at+60_000)
	}
	got := r.Derive(&st, &a, at+60_000)
	if len(got) != 1 || got[0].Type != delivery.Completed || got[0].Sequence != 5 {
		t.Fatalf("at Settle: %v, want completed as event 5", got)
	}
	if _, ok := r.Due(&st, &a); ok {
		t.Error("still due after completed")
	}
	st = ledger.Apply(st, callback(rc.TypeSegment, t0+30_000, file(0), 200), at+600_000)
	st = ledger.Apply(st, callback(rc.TypeUpload, t0+35_000, file(0), 200), at+601_000)
	st = ledger.Apply(st, callback(rc.TypeEnd, t0+70_000, file(1), 500), at+602_000)
	late := r.Derive(&st, &a, at+700_000)
	if len(late) != 2 || late[0].Type != delivery.FileCreated || late[1].Type != delivery.FileUploaded {
		t.Errorf("a file and a failed end ten minutes late: %v, want the file created and uploaded only", late)
	}
}

// TestOverdue: a file still not uploaded past RC's retry window is
// announced overdue once; its upload then still completes the recording.
func TestOverdue(t *testing.T) {
	r := delivery.Rules{}
	var (
		st ledger.State
		a  delivery.Announced
	)
	st = ledger.Apply(st, callback(rc.TypeStart, t0, "", 200), t0)
	st = ledger.Apply(st, callback(rc.TypeEnd, t0+60_000, file(1), 200), t0+61_000)
	st = ledger.Apply(st, callback(rc.TypeUpload, t0+65_000, file(1), 500), t0+66_000)
	r.Derive(&st, &a, t0+66_000)
	due, ok := r.Due(&st, &a)
	if want := t0 + 61_000 + ledger.OverdueAfter.Milliseconds() + 1; !ok || due != want {
		t.Fatalf("Due = %d, %v; want %d", due, ok, want)
	}
	if got := r.Derive(&st, &a, due-1); len(got) != 0 {
		t.Fatalf("before the window closed: %v", got)
	}
	if got := r.Derive(&st, &a, due); len(got) != 1 || got[0].Type != delivery.UploadOverdue {
		t.Fatalf("when the window closed: %v", got)
	}
	if got := r.Derive(&st, &a, due+3_600_000); len(got) != 0 {
		t.Fatalf("an hour later: %v", got)
	}
	st = ledger.Apply(st, callback(rc.TypeUpload, t0+90_000_000, file(1), 200), due+3_600_000)
	got := r.Derive(&st, &a, due+3_600_000+time.Minute.Milliseconds())
	if len(got) != 2 || got[0].Type != delivery.FileUploaded || got[1].Type != delivery.Completed {
		t.Errorf("the late upload: %v, want uploaded then completed", got)
	}
}

// TestFailed: a failed end is announced once and never followed by
// completed, whatever uploads come.
func TestFailed(t *testing.T) {
	r := delivery.Rules{Settle: time.Second}
	st, events := play(r, []rc.Callback{
		callback(rc.TypeStart, t0, "", 200),
		callback(rc.TypeEnd, t0+60_000, file(1), 503),
		callback(rc.TypeUpload, t0+65_000, file(1), 200),
	})
	check(t, st, events)
	var types []delivery.Type
	for _, e := range events {
		types = append(types, e.Type)
	}
	want := []delivery.Type{delivery.Started, delivery.FileCreated, delivery.Ended, delivery.Failed, delivery.FileUploaded}
	if !slices.Equal(types, want) {
		t.Errorf("announced %v, want %v", types, want)
	}
}

// TestFailedStart: a recording whose start failed (RC sends nothing more
// for it) is announced failed, never started.
func TestFailedStart(t *testing.T) {
	st, events := play(delivery.Rules{Settle: time.Second}, []rc.Callback{callback(rc.TypeStart, t0, "", 500)})
	check(t, st, events)
	if len(events) != 1 || events[0].Type != delivery.Failed || events[0].Sequence != 1 {
		t.Errorf("announced %v, want failed alone", events)
	}
}

func TestID(t *testing.T) {
	ids := map[string]bool{}
	for _, tc := range [][4]string{
		{"app", "rec1", string(delivery.Completed), ""},
		{"app", "rec1", string(delivery.FileCreated), "a.mp4"},
		{"app", "rec1", string(delivery.FileUploaded), "a.mp4"},
		{"app", "rec1", string(delivery.FileCreated), "b.mp4"},
		{"app", "rec2", string(delivery.Completed), ""},
		{"app2", "rec1", string(delivery.Completed), ""},
		{"appr", "ec1", string(delivery.Completed), ""}, // the parts do not run into each other
		{"app", "R", string(delivery.FileCreated), "recording.completed\x00x"},
		{"app", "R\x00recording.file_created", string(delivery.Completed), "x"}, // not even with NUL bytes
	} {
		id := delivery.ID(tc[0], tc[1], delivery.Type(tc[2]), tc[3])
		if ids[id] {
			t.Errorf("ID %v repeats %s", tc, id)
		}
		ids[id] = true
		if !strings.HasPrefix(id, "evt_") || len(id) != 36 || strings.Trim(id[4:], "abcdefghijklmnopqrstuvwxyz234567") != "" {
			t.Errorf("ID %v = %q", tc, id)
		}
		if again := delivery.ID(tc[0], tc[1], delivery.Type(tc[2]), tc[3]); again != id {
			t.Errorf("ID %v not stable: %s, %s", tc, id, again)
		}
	}
}

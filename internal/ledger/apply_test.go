package ledger_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/ledger/ledgertest"
	"github.com/recledger/recledger/rc"
)

// arrival is one delivery: a callback and the server time it arrived.
type arrival struct {
	cb rc.Callback
	at int64
}

const t0 = int64(1530027865231)

func callback(typ rc.Type, ts int64, file string, code int) rc.Callback {
	cb := rc.Callback{
		Timestamp: ts, Type: typ, AppKey: "app", RecordID: "rec1", RoomID: "111",
		SessionID: "sess", UserID: "222", Mode: rc.ModeVideo, Extra: "x", Code: code,
		ErrorMessage: "Success",
	}
	if code != 200 {
		cb.ErrorMessage = fmt.Sprintf("error %d", code)
	}
	cb.Output.FileName = file
	switch typ {
	case rc.TypeStart:
		cb.Config = &rc.Config{MixLayout: 2, SlicesMin: 30, AudioFormat: "aac", VideoFormat: "mp4"}
		cb.Output.AudioSample, cb.Output.VideoResolution = 48000, "640x480"
		cb.Output.FileName = "temporary.mp4"
	case rc.TypeSegment, rc.TypeEnd:
		size := int64(len(file)) * 1000
		if typ == rc.TypeEnd {
			size++
		}
		cb.Output.FileSize = &size
	case rc.TypeUpload:
		if code == 200 {
			cb.Output.FileURL = fmt.Sprintf("http://oss/%s?v=%d", file, ts)
		}
	}
	return cb
}

func name(i int) string { return fmt.Sprintf("sess_111_222_%d.mp4", t0+int64(i)) }

// fold applies arrivals in order, skipping redeliveries as the raw log does.
func fold(arrivals []arrival) ledger.State {
	var s ledger.State
	seen := map[rc.Key]bool{}
	for _, a := range arrivals {
		if seen[a.cb.Key()] {
			continue
		}
		seen[a.cb.Key()] = true
		s = ledger.Apply(s, a.cb, a.at)
	}
	return s
}

// TestApplyOrderIndependentAllPermutations feeds every order of seven
// callbacks (5040 orders) of two recordings' worth of shapes and compares
// each final state with the one from arrival in RC's order.
func TestApplyOrderIndependentAllPermutations(t *testing.T) {
	scenarios := map[string][]arrival{
		"segments, end, failed then retried upload": {
			{callback(rc.TypeStart, t0, "", 200), 100},
			{callback(rc.TypeSegment, t0+1800_000, name(1), 200), 200},
			{callback(rc.TypeUpload, t0+1800_500, name(1), 200), 300},
			{callback(rc.TypeEnd, t0+2000_000, name(2), 200), 400},
			{callback(rc.TypeUpload, t0+2000_500, name(2), 500), 500},
			{callback(rc.TypeUpload, t0+2010_500, name(2), 200), 600},
			{callback(rc.TypeUpload, t0+2020_500, name(2), 200), 700}, // a re-upload: the later URL counts
		},
		"failed end, unknown type, upload of an unnamed file": {
			{callback(rc.TypeStart, t0, "", 200), 100},
			{callback(rc.TypeStart, t0+5, "", 200), 150}, // a second start: the first counts
			{callback(rc.TypeEnd, t0+9000, name(1), 503), 200},
			{callback(rc.TypeEnd, t0+9500, name(2), 200), 250},
			{callback(rc.Type(9), t0+9600, "", 200), 300},
			{callback(rc.TypeUpload, t0+9700, name(3), 200), 350},
			{callback(rc.TypeSegment, t0+100, name(2), 200), 50}, // arrived first, by the server clock
		},
	}
	for label, arrivals := range scenarios {
		t.Run(label, func(t *testing.T) {
			want := fold(arrivals)
			orders := 0
			ledgertest.Permute(len(arrivals), func(p []int) {
				orders++
				shuffled := make([]arrival, len(p))
				for i, j := range p {
					shuffled[i] = arrivals[j]
				}
				if diff := cmp.Diff(want, fold(shuffled)); diff != "" {
					t.Fatalf("order %v gives another state (-RC's order +this one):\n%s", p, diff)
				}
			})
			if orders != 5040 {
				t.Fatalf("checked %d orders, want 5040", orders)
			}
		})
	}
}

// TestApplyOrderIndependentLong shuffles a recording of 40 segments, an end
// and their uploads (some failing first), with every callback delivered up
// to three times, and compares 2000 random orders.
func TestApplyOrderIndependentLong(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	var arrivals []arrival
	at := int64(1000)
	add := func(cb rc.Callback) {
		at += 10
		arrivals = append(arrivals, arrival{cb, at})
	}
	add(callback(rc.TypeStart, t0, "", 200))
	for i := 1; i <= 40; i++ {
		add(callback(rc.TypeSegment, t0+int64(i)*1800_000, name(i), 200))
		if i%5 == 0 {
			add(callback(rc.TypeUpload, t0+int64(i)*1800_000+100, name(i), 502))
		}
		if i%7 != 0 {
			add(callback(rc.TypeUpload, t0+int64(i)*1800_000+10_100, name(i), 200))
		}
	}
	add(callback(rc.TypeEnd, t0+41*1800_000, name(41), 200))
	add(callback(rc.TypeUpload, t0+41*1800_000+500, name(41), 200))
	want := fold(arrivals)
	if got := len(want.Files); got != 41 {
		t.Fatalf("files = %d, want 41", got)
	}
	for range 2000 {
		var shuffled []arrival
		for _, a := range arrivals {
			for range 1 + r.IntN(3) {
				shuffled = append(shuffled, a) // a redelivery is the same callback arriving again
			}
		}
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if diff := cmp.Diff(want, fold(shuffled)); diff != "" {
			t.Fatalf("a shuffled order gives another state (-in order +shuffled):\n%s", diff)
		}
	}
}

// deepCopy copies s through JSON, so that the copy shares no pointer, map
// or slice with s: comparing s with it after Apply sees a write through any
// of them, which comparing the pointers themselves would not.
func deepCopy(t *testing.T, s ledger.State) ledger.State {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var c ledger.State
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s, c); diff != "" {
		t.Fatalf("the JSON copy loses something (-state +copy):\n%s", diff)
	}
	return c
}

// TestApplyIsIdempotentAndPure applies every kind of callback, succeeding
// and failing, to a state with every pointer, map and slice field set, and
// checks the input state and callback are unchanged, field by field.
func TestApplyIsIdempotentAndPure(t *testing.T) {
	full := fold([]arrival{
		{callback(rc.TypeStart, t0+10, "", 200), 1},
		{callback(rc.TypeSegment, t0+20, name(1), 200), 2},
		{callback(rc.TypeUpload, t0+30, name(1), 500), 3},
		{callback(rc.TypeUpload, t0+40, name(1), 200), 4},
		{callback(rc.TypeEnd, t0+50, name(2), 500), 5},
		{callback(rc.TypeUpload, t0+60, name(2), 200), 6},
	})
	for _, p := range []any{full.MetaFrom, full.StartFrom, full.Config, full.EndedAt, full.EndReceivedAt, full.LastErrorFrom, full.LastError,
		full.Files[name(1)].SizeFrom, full.Files[name(1)].Size, full.Files[name(1)].UploadFrom, full.Files[name(1)].UploadedAt} {
		if fmt.Sprint(p) == "<nil>" {
			t.Fatalf("the state under test leaves a pointer field nil: %+v", full)
		}
	}
	for _, cb := range []rc.Callback{
		with(callback(rc.TypeStart, t0, "", 200), func(cb *rc.Callback) { // earlier than the state's start: takes over config and identity
			cb.Config, cb.UserID = &rc.Config{SlicesMin: 120, VideoFormat: "flv"}, "another"
		}),
		callback(rc.TypeStart, t0+1, "", 500),
		callback(rc.TypeSegment, t0, name(1), 200), // an earlier size for a known file
		callback(rc.TypeSegment, t0+70, name(3), 501),
		callback(rc.TypeEnd, t0+80, name(2), 200),    // a later end
		callback(rc.TypeEnd, t0+5, name(1), 200),     // an end's size for a known file
		callback(rc.TypeUpload, t0+90, name(1), 200), // a re-upload
		callback(rc.TypeUpload, t0+95, name(2), 502),
		callback(rc.Type(9), t0+99, "", 200),
	} {
		t.Run(fmt.Sprintf("type %d code %d at %d", cb.Type, cb.Code, cb.Timestamp-t0), func(t *testing.T) {
			before := deepCopy(t, full)
			cbBefore := cb
			cbBefore.Config, cbBefore.Output.FileSize = cloneOf(cb.Config), cloneOf(cb.Output.FileSize)
			once := ledger.Apply(full, cb, 1000)
			if diff := cmp.Diff(before, full); diff != "" {
				t.Errorf("Apply modified its input state (-before +after):\n%s", diff)
			}
			if diff := cmp.Diff(cbBefore, cb); diff != "" {
				t.Errorf("Apply modified its input callback (-before +after):\n%s", diff)
			}
			onceCopy := deepCopy(t, once)
			twice := ledger.Apply(once, cb, 1000)
			if diff := cmp.Diff(once, twice); diff != "" {
				t.Errorf("applying a callback twice differs from once:\n%s", diff)
			}
			if diff := cmp.Diff(onceCopy, once); diff != "" {
				t.Errorf("applying it again modified the state it was given (-before +after):\n%s", diff)
			}
		})
	}
}

// cloneOf returns a pointer to a copy of *p, or nil.
func cloneOf[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

var now = time.UnixMilli(t0 + 100*3600_000)

func TestStatusRules(t *testing.T) {
	end := now.Add(-time.Hour).UnixMilli()
	tests := []struct {
		name     string
		arrivals []arrival
		now      time.Time
		status   ledger.Status
		upload   ledger.UploadState
		files    int
		uploaded int
	}{
		{"start only", []arrival{{callback(rc.TypeStart, t0, "", 200), 1}}, now,
			ledger.StatusRecording, ledger.UploadNone, 0, 0},
		{"segment written", []arrival{{callback(rc.TypeStart, t0, "", 200), 1}, {callback(rc.TypeSegment, t0+1, name(1), 200), 2}}, now,
			ledger.StatusRecording, ledger.UploadPending, 1, 0},
		{"ended, not uploaded", []arrival{{callback(rc.TypeStart, t0, "", 200), 1}, {callback(rc.TypeEnd, t0+1, name(1), 200), end}}, now,
			ledger.StatusEnded, ledger.UploadPending, 1, 0},
		{"ended and uploaded", []arrival{{callback(rc.TypeEnd, t0+1, name(1), 200), end}, {callback(rc.TypeUpload, t0+2, name(1), 200), end + 1}}, now,
			ledger.StatusComplete, ledger.UploadComplete, 1, 1},
		{"one of two uploaded", []arrival{{callback(rc.TypeSegment, t0, name(1), 200), 1}, {callback(rc.TypeEnd, t0+1, name(2), 200), end},
			{callback(rc.TypeUpload, t0+2, name(1), 200), end + 1}}, now,
			ledger.StatusEnded, ledger.UploadPartial, 2, 1},
		{"upload failed", []arrival{{callback(rc.TypeEnd, t0+1, name(1), 200), end}, {callback(rc.TypeUpload, t0+2, name(1), 500), end + 1}}, now,
			ledger.StatusEnded, ledger.UploadFailed, 1, 0},
		{"upload failed then retried", []arrival{{callback(rc.TypeEnd, t0+1, name(1), 200), end}, {callback(rc.TypeUpload, t0+2, name(1), 500), end + 1},
			{callback(rc.TypeUpload, t0+10_002, name(1), 200), end + 2}}, now,
			ledger.StatusComplete, ledger.UploadComplete, 1, 1},
		{"failed start", []arrival{{callback(rc.TypeStart, t0, "", 400), 1}}, now,
			ledger.StatusFailed, ledger.UploadNone, 0, 0},
		{"failed end", []arrival{{callback(rc.TypeStart, t0, "", 200), 1}, {callback(rc.TypeEnd, t0+1, name(1), 500), end}}, now,
			ledger.StatusFailed, ledger.UploadPending, 1, 0},
		{"failed segment is not a failed recording", []arrival{{callback(rc.TypeSegment, t0, name(1), 500), 1}}, now,
			ledger.StatusRecording, ledger.UploadPending, 1, 0},
		{"unknown type only", []arrival{{callback(rc.Type(7), t0, "", 200), 1}}, now,
			ledger.StatusRecording, ledger.UploadNone, 0, 0},
		{"overdue just after 25h", []arrival{{callback(rc.TypeEnd, t0+1, name(1), 200), end}}, time.UnixMilli(end).Add(ledger.OverdueAfter + time.Millisecond),
			ledger.StatusEnded, ledger.UploadOverdue, 1, 0},
		{"not overdue at 25h", []arrival{{callback(rc.TypeEnd, t0+1, name(1), 200), end}}, time.UnixMilli(end).Add(ledger.OverdueAfter),
			ledger.StatusEnded, ledger.UploadPending, 1, 0},
		{"overdue overrides failed", []arrival{{callback(rc.TypeEnd, t0+1, name(1), 200), end}, {callback(rc.TypeUpload, t0+2, name(1), 500), end + 1}},
			time.UnixMilli(end).Add(26 * time.Hour), ledger.StatusEnded, ledger.UploadOverdue, 1, 0},
		{"complete is never overdue", []arrival{{callback(rc.TypeEnd, t0+1, name(1), 200), end}, {callback(rc.TypeUpload, t0+2, name(1), 200), end + 1}},
			time.UnixMilli(end).Add(48 * time.Hour), ledger.StatusComplete, ledger.UploadComplete, 1, 1},
		{"overdue judged by arrival, not RC's clock", []arrival{{callback(rc.TypeEnd, 1, name(1), 200), end}}, now,
			ledger.StatusEnded, ledger.UploadPending, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := fold(tt.arrivals).View(tt.now)
			if r.Status != tt.status || r.UploadState != tt.upload || r.FileCount != tt.files || r.UploadedCount != tt.uploaded {
				t.Errorf("status %s, uploadState %s, files %d, uploaded %d; want %s, %s, %d, %d",
					r.Status, r.UploadState, r.FileCount, r.UploadedCount, tt.status, tt.upload, tt.files, tt.uploaded)
			}
		})
	}
}

func TestViewFields(t *testing.T) {
	s := fold([]arrival{
		{callback(rc.TypeStart, t0, "", 200), 10},
		{callback(rc.TypeSegment, t0+5, name(1), 200), 20},
		{callback(rc.TypeEnd, t0+9, name(1), 200), 30}, // the end names the segment's file again
		{callback(rc.TypeUpload, t0+10, name(1), 500), 40},
		{callback(rc.TypeUpload, t0+20, name(1), 200), 50},
		{callback(rc.TypeUpload, t0+30, "other.flv", 200), 60},
	})
	got := s.View(now)
	size := int64(len(name(1))*1000 + 1)
	want := ledger.Recording{
		RecordID: "rec1", AppKey: "app", RoomID: "111", SessionID: "sess", UserID: "222",
		Mode: rc.ModeVideo, ModeName: "single-video", Status: ledger.StatusComplete, UploadState: ledger.UploadComplete,
		StartedAt: ptr(t0), EndedAt: ptr(t0 + 9), FirstSeenAt: ptr(int64(10)), LastEventAt: ptr(int64(60)),
		Config:      &rc.Config{MixLayout: 2, SlicesMin: 30, AudioFormat: "aac", VideoFormat: "mp4"},
		AudioSample: 48000, VideoResolution: "640x480", Extra: "x",
		FileCount: 2, UploadedCount: 2, TotalBytes: size,
		LastError:   &ledger.ErrorInfo{Code: 500, Message: "error 500", At: t0 + 10},
		UploadLagMs: ptr(int64(30 - 9)), // the latest upload, other.flv's, after the end
		Files: []ledger.File{
			{FileName: "other.flv", RecordID: "rec1", Kind: ledger.KindUnknown, FileURL: ptr("http://oss/other.flv?v=" + fmt.Sprint(t0+30)),
				UploadStatus: ledger.UploadStatusUploaded, UploadedAt: ptr(t0 + 30), FirstSeenAt: 60, Format: "flv"},
			{FileName: name(1), RecordID: "rec1", Kind: ledger.KindFinal, FileSize: &size,
				FileURL:      ptr("http://oss/" + name(1) + "?v=" + fmt.Sprint(t0+20)),
				UploadStatus: ledger.UploadStatusUploaded, UploadedAt: ptr(t0 + 20), FirstSeenAt: 20, Format: "mp4",
				Parsed: &rc.NameParts{SessionID: "sess", RoomID: "111", UserID: "222", Timestamp: t0 + 1, Format: "mp4"}},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("View (-want +got):\n%s", diff)
	}
}

func ptr[T any](v T) *T { return &v }

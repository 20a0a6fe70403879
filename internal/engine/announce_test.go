package engine

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/ledger"
)

func verified() ledger.Verification {
	status, size, at := 200, int64(1000), base.UnixMilli()
	return ledger.Verification{State: ledger.VerifyVerified, HTTPStatus: &status, Size: &size, CheckedAt: &at, Attempts: 1}
}

func storedRecord(t *testing.T, d *memDriver, id string) Record {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	r, err := DecodeRecord(d.records[id])
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func outboxEvents(t *testing.T, d *memDriver) []delivery.Event {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []delivery.Event
	for _, o := range d.outbox {
		var ev delivery.Event
		if err := json.Unmarshal(o.Payload, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.ID != o.ID || string(ev.Type) != o.Type || ev.RecordID != o.RecordID || o.RoomID != "room" {
			t.Fatalf("outbox row %+v does not match its payload %+v", o, ev)
		}
		out = append(out, ev)
	}
	return out
}

// TestAnnounceFile: a verification event is announced once, as the
// recording's next sequence number, with the file's verification, and
// the record keeps it across later steps (the cache holds what was
// saved); callbacks after it number on from it.
func TestAnnounceFile(t *testing.T) {
	d := newMemDriver()
	clock := base.Add(time.Hour)
	woke := 0
	e := start(t, d, Options{Now: func() time.Time { return clock }, OnOutbound: func() { woke++ }})
	e.SetOutbound(true)
	bodies := recording("r", 2)
	for i, b := range bodies[:3] { // start, segment 0, its upload
		d.add(b, base.UnixMilli()+int64(i), true)
	}
	if err := e.catchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := len(outboxEvents(t, d)) // started, file_created, file_uploaded
	name := "sess_room_u1_r_0.mp4"
	woke = 0
	if err := e.AnnounceFile(context.Background(), "r", name, delivery.FileVerified, verified()); err != nil {
		t.Fatal(err)
	}
	if err := e.AnnounceFile(context.Background(), "r", name, delivery.FileVerified, verified()); err != nil {
		t.Fatalf("announcing again: %v", err)
	}
	evs := outboxEvents(t, d)
	if len(evs) != before+1 || woke != 1 {
		t.Fatalf("%d events after two announcements (%d before), dispatchers woken %d times; want one more, woken once", len(evs), before, woke)
	}
	ev := evs[before]
	if ev.Type != delivery.FileVerified || ev.Sequence != before+1 || ev.File == nil || ev.File.FileName != name ||
		ev.File.Verification == nil || ev.File.Verification.State != ledger.VerifyVerified || !ev.Time.Equal(clock.Truncate(time.Millisecond)) ||
		ev.ID != delivery.ID("app", "r", delivery.FileVerified, name) {
		t.Fatalf("announced %+v (file %+v)", ev, ev.File)
	}
	if r := storedRecord(t, d, "r"); !r.Announced.Files[name][delivery.FileVerified] || r.Announced.Count != before+1 {
		t.Fatalf("stored record announced %+v", r.Announced)
	}
	if d.watermark.Seq != 3 {
		t.Fatalf("watermark %+v after announcing: it must not move", d.watermark)
	}
	for i, b := range bodies[3:] { // segment 1, its upload, the end
		d.add(b, base.UnixMilli()+int64(10+i), true)
	}
	if err := e.catchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	evs = outboxEvents(t, d)
	for i, ev := range evs {
		if ev.Sequence != i+1 {
			t.Fatalf("event %d (%s) has sequence %d", i, ev.Type, ev.Sequence)
		}
	}
	if r := storedRecord(t, d, "r"); !r.Announced.Files[name][delivery.FileVerified] {
		t.Fatalf("a later step lost the announcement: %+v", r.Announced)
	}
}

// TestAnnounceFileOutboundOff: with no destination, the event is marked
// and counted but not put in the outbox.
func TestAnnounceFileOutboundOff(t *testing.T) {
	d := newMemDriver()
	e := start(t, d, Options{})
	for i, b := range recording("r", 1)[:3] {
		d.add(b, base.UnixMilli()+int64(i), true)
	}
	if err := e.catchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	count := storedRecord(t, d, "r").Announced.Count
	if err := e.AnnounceFile(context.Background(), "r", "sess_room_u1_r_0.mp4", delivery.FileMissing, ledger.Verification{State: ledger.VerifyMissing}); err != nil {
		t.Fatal(err)
	}
	if len(d.outbox) != 0 {
		t.Fatalf("outbound off, yet %d events in the outbox", len(d.outbox))
	}
	if r := storedRecord(t, d, "r"); !r.Announced.Files["sess_room_u1_r_0.mp4"][delivery.FileMissing] || r.Announced.Count != count+1 {
		t.Fatalf("stored record announced %+v", r.Announced)
	}
}

// TestAnnounceFileRefusals: a follower, a rebuild and an unknown file
// announce nothing and say why.
func TestAnnounceFileRefusals(t *testing.T) {
	d := newMemDriver()
	e := start(t, d, Options{})
	e.SetOutbound(true)
	for i, b := range recording("r", 1)[:3] {
		d.add(b, base.UnixMilli()+int64(i), true)
	}
	if err := e.catchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	n := len(d.outbox)
	ctx := context.Background()
	for name, want := range map[string]error{"sess_room_u1_r_9.mp4": ErrNoFile} {
		if err := e.AnnounceFile(ctx, "r", name, delivery.FileVerified, verified()); !errors.Is(err, want) {
			t.Errorf("unknown file: %v, want %v", err, want)
		}
	}
	if err := e.AnnounceFile(ctx, "gone", "x.mp4", delivery.FileVerified, verified()); !errors.Is(err, ErrNoFile) {
		t.Errorf("unknown recording: %v", err)
	}
	e.work.Lock()
	e.rebuilding = true
	e.work.Unlock()
	if err := e.AnnounceFile(ctx, "r", "sess_room_u1_r_0.mp4", delivery.FileVerified, verified()); !errors.Is(err, ErrRebuilding) {
		t.Errorf("while rebuilding: %v", err)
	}
	e.work.Lock()
	e.rebuilding = false
	e.work.Unlock()
	d.mu.Lock()
	d.follower = true
	d.mu.Unlock()
	if err := e.AnnounceFile(ctx, "r", "sess_room_u1_r_0.mp4", delivery.FileVerified, verified()); !errors.Is(err, ErrNotLeader) || !e.Following() {
		t.Errorf("on a follower: %v (following %v)", err, e.Following())
	}
	if len(d.outbox) != n || storedRecord(t, d, "r").Announced.Files["sess_room_u1_r_0.mp4"][delivery.FileVerified] {
		t.Errorf("a refused announcement was saved")
	}
}

// TestAnnounceFileMoved: when another projector moved the watermark, the
// announcement's save is fenced off (ErrMoved) and the cache dropped; the
// retry, from the stored watermark, reads the record again and keeps the
// other projector's work.
func TestAnnounceFileMoved(t *testing.T) {
	for _, viaStep := range []bool{false, true} {
		d := newMemDriver()
		e := start(t, d, Options{})
		bodies := recording("r", 2)
		for i, b := range bodies[:3] {
			d.add(b, base.UnixMilli()+int64(i), false)
		}
		if err := e.catchUp(context.Background()); err != nil { // e caches r
			t.Fatal(err)
		}
		if viaStep {
			// Another projector applied the next row: e's own step reads
			// it from its stale position and is fenced off.
			d.add(bodies[3], base.UnixMilli()+3, false)
			if err := New(d, Options{}).Start(context.Background()); err != nil {
				t.Fatal(err)
			}
		} else {
			// The other projector changed the record with nothing left
			// in the log for e to read: only the announcement's save
			// meets the fence.
			stale := storedRecord(t, d, "r")
			stale.Announced.Count += 10
			blob, _ := EncodeRecord(&stale)
			d.mu.Lock()
			d.records["r"] = blob
			d.watermark.Seq++
			d.mu.Unlock()
		}
		err := e.AnnounceFile(context.Background(), "r", "sess_room_u1_r_0.mp4", delivery.FileVerified, verified())
		if !errors.Is(err, ErrMoved) {
			t.Fatalf("via step %v: announcing over a moved watermark: %v, want ErrMoved", viaStep, err)
		}
		want := storedRecord(t, d, "r")
		if err := e.AnnounceFile(context.Background(), "r", "sess_room_u1_r_0.mp4", delivery.FileVerified, verified()); err != nil {
			t.Fatalf("via step %v: the retry: %v", viaStep, err)
		}
		r := storedRecord(t, d, "r")
		if len(r.Events) != len(want.Events) || r.Announced.Count != want.Announced.Count+1 || !r.Announced.Files["sess_room_u1_r_0.mp4"][delivery.FileVerified] {
			t.Errorf("via step %v: record after the retry: %d events, announced %+v; want %d events, count %d and the mark",
				viaStep, len(r.Events), r.Announced, len(want.Events), want.Announced.Count+1)
		}
	}
}

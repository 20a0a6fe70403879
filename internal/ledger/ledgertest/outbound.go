package ledgertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/ledger"
)

// source is the store as the outbound side sees it.
func source(t *testing.T, s ledger.Store) delivery.Source {
	t.Helper()
	src, ok := s.(delivery.Source)
	if !ok {
		t.Fatalf("%T keeps no outbox (delivery.Source)", s)
	}
	return src
}

// outboxUntil reads the outbox after seq after until stop says it holds
// what the test waits for (the engine's periodic pass runs every second).
func outboxUntil(t *testing.T, d delivery.Store, after int64, stop func([]delivery.Stored) bool) []delivery.Stored {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, err := d.Outbox(context.Background(), after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if stop(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("the outbox did not get there in 15 s; it holds %d events", len(got))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func hasType(t delivery.Type) func([]delivery.Stored) bool {
	return func(s []delivery.Stored) bool {
		return slices.ContainsFunc(s, func(e delivery.Stored) bool { return e.Type == t })
	}
}

// testOutbox: with the outbox on, a recording's callbacks put its events in
// the outbox in order, numbered per recording, each once, completed by the
// periodic pass once it settled; with it off, nothing.
func testOutbox(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	src := source(t, s)
	src.Announce(true)
	cbs := Recording(t, "out-1", 3, false)
	cbs = append(cbs, cbs[2], cbs[4]) // redeliveries
	appendAll(t, s, cbs, time.Now().Add(-10*time.Minute))
	got := outboxUntil(t, src.Delivery(), 0, hasType(delivery.Completed))
	var types []delivery.Type
	seen := map[string]bool{}
	for i, e := range got {
		if i > 0 && e.Seq <= got[i-1].Seq {
			t.Errorf("seq %d after %d", e.Seq, got[i-1].Seq)
		}
		if seen[e.ID] {
			t.Errorf("event %s stored twice", e.ID)
		}
		seen[e.ID] = true
		var ev delivery.Event
		if err := json.Unmarshal(e.Payload, &ev); err != nil {
			t.Fatalf("payload of %d: %v", e.Seq, err)
		}
		if ev.ID != e.ID || ev.Type != e.Type || ev.RecordID != "out-1" || ev.AppKey != e.AppKey || ev.Sequence != i+1 {
			t.Errorf("event %d: stored as %+v, payload says id %s type %s sequence %d", i, e, ev.ID, ev.Type, ev.Sequence)
		}
		if e.RoomID != "room" || e.CommittedAt == 0 {
			t.Errorf("event %d: room %q, committed at %d", i, e.RoomID, e.CommittedAt)
		}
		types = append(types, e.Type)
	}
	want := []delivery.Type{delivery.Started, delivery.FileCreated, delivery.UploadFailed, delivery.FileUploaded,
		delivery.FileCreated, delivery.FileUploaded, delivery.FileCreated, delivery.Ended, delivery.FileUploaded, delivery.Completed}
	if !slices.Equal(types, want) {
		t.Errorf("announced %v\nwant      %v", types, want)
	}

	some, err := src.Delivery().OutboxEvents(context.Background(), []int64{got[1].Seq, got[3].Seq, got[len(got)-1].Seq + 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(some) != 2 || some[got[1].Seq].ID != got[1].ID || string(some[got[3].Seq].Payload) != string(got[3].Payload) {
		t.Errorf("OutboxEvents of two stored seqs and one not: %d events", len(some))
	}

	src.Announce(false)
	appendAll(t, s, Recording(t, "out-2", 1, false), time.Now().Add(-10*time.Minute))
	mustRecording(t, s, "out-2")        // reads wait for the projections
	time.Sleep(1500 * time.Millisecond) // a periodic pass
	after, err := src.Delivery().Outbox(context.Background(), got[len(got)-1].Seq, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 0 {
		t.Errorf("the outbox is off, yet it took %d events", len(after))
	}
}

// testOutboxOnAtStart: a store reopened with a destination stored keeps
// its outbox from the first step, before any dispatcher says so: what the
// catch-up at start announces is not lost.
func testOutboxOnAtStart(t *testing.T, open Opener) {
	s := open()
	d := source(t, s).Delivery()
	dst := delivery.Destination{ID: "dst_s", Kind: delivery.Webhook, URL: "https://example.com/", Enabled: true}
	if err := d.AddDestination(context.Background(), &dst); err != nil {
		t.Fatal(err)
	}
	closeStore(t, s)
	s = open()
	defer closeStore(t, s)
	appendAll(t, s, Recording(t, "start-1", 1, false), time.Now().Add(-10*time.Minute))
	outboxUntil(t, source(t, s).Delivery(), 0, hasType(delivery.Completed)) // nobody called Announce
}

// testDestinations: destinations are stored, listed, changed and removed;
// a new one starts at the outbox's end.
func testDestinations(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open()
	defer closeStore(t, s)
	src := source(t, s)
	src.Announce(true)
	appendAll(t, s, Recording(t, "dst-1", 1, false), time.Now())
	got := outboxUntil(t, src.Delivery(), 0, hasType(delivery.Ended))
	d := src.Delivery()
	a := delivery.Destination{ID: "dst_a", Kind: delivery.Webhook, URL: "https://example.com/hook", Enabled: true, CreatedAt: 1000,
		Filter: delivery.Filter{Types: []delivery.Type{delivery.Completed}, AppKey: "app", RoomPrefix: "ro"},
		Keys:   []delivery.Key{{Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}}
	if err := d.AddDestination(ctx, &a); err != nil {
		t.Fatal(err)
	}
	if last := got[len(got)-1].Seq; a.Cursor < last {
		t.Errorf("a new destination's cursor is %d, want the outbox's end (at least %d)", a.Cursor, last)
	}
	b := delivery.Destination{ID: "dst_b", Kind: delivery.NATS, URL: "nats://127.0.0.1:4222", Stream: "S", Prefix: "p", Enabled: true, CreatedAt: 2000}
	if err := d.AddDestination(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if err := d.AddDestination(ctx, &b); err == nil {
		t.Error("a second destination of one id was stored")
	}
	list, err := d.Destinations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || !equalDestination(list[0], a) || !equalDestination(list[1], b) {
		t.Errorf("Destinations = %+v\nwant %+v and %+v", list, a, b)
	}
	a.Enabled, a.DisabledReason, a.URL = false, "disabled by a test", "https://example.com/other"
	if err := d.UpdateDestination(ctx, &a); err != nil {
		t.Fatal(err)
	}
	if one, err := d.Destination(ctx, "dst_a"); err != nil || !equalDestination(one, a) {
		t.Errorf("after an update: %+v, %v; want %+v", one, err, a)
	}
	// Re-enabling clears the reason and the failure state.
	if err := d.Commit(ctx, &delivery.Progress{Destination: "dst_a", Owner: "", FailingSince: ptr(int64(5))}); !errors.Is(err, delivery.ErrLeaseLost) {
		t.Errorf("a commit without the lease: %v, want ErrLeaseLost", err)
	}
	a.Enabled = true
	if err := d.UpdateDestination(ctx, &a); err != nil {
		t.Fatal(err)
	}
	if one, _ := d.Destination(ctx, "dst_a"); one.DisabledReason != "" || !one.Enabled {
		t.Errorf("re-enabled: %+v", one)
	}
	if err := d.RemoveDestination(ctx, "dst_a"); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		d.RemoveDestination(ctx, "dst_a"),
		d.UpdateDestination(ctx, &a),
		func() error { _, err := d.Destination(ctx, "dst_a"); return err }(),
	} {
		if !errors.Is(err, delivery.ErrNoDestination) {
			t.Errorf("a removed destination: %v, want ErrNoDestination", err)
		}
	}
}

func equalDestination(a, b delivery.Destination) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func ptr[T any](v T) *T { return &v }

// testDeliveryProgress: the lease fences commits; held events, dead
// letters, redelivery and the attempt log.
func testDeliveryProgress(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open()
	defer closeStore(t, s)
	d := source(t, s).Delivery()
	dst := delivery.Destination{ID: "dst_p", Kind: delivery.Webhook, URL: "https://example.com/", Enabled: true}
	if err := d.AddDestination(ctx, &dst); err != nil {
		t.Fatal(err)
	}
	lease := func(owner string, now int64) bool {
		t.Helper()
		ok, err := d.Lease(ctx, "dst_p", owner, now, now+1000)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !lease("A", 1) || lease("B", 500) || !lease("A", 900) {
		t.Fatal("a lease is held by one owner while it lasts, and renewed by it")
	}
	if err := d.Commit(ctx, &delivery.Progress{Destination: "dst_p", Owner: "A", Cursor: 10,
		Hold: []delivery.Held{{Seq: 11, RecordID: "r", Attempts: 1, NextAt: 5000, LastStatus: 500, LastError: "boom"}, {Seq: 12, RecordID: "r"}},
	}); err != nil {
		t.Fatal(err)
	}
	if !lease("B", 1901) {
		t.Fatal("an expired lease was not handed over")
	}
	if err := d.Commit(ctx, &delivery.Progress{Destination: "dst_p", Owner: "A", Cursor: 20}); !errors.Is(err, delivery.ErrLeaseLost) {
		t.Fatalf("the old owner committed after the hand-over: %v", err)
	}
	held, err := d.Held(ctx, "dst_p")
	if err != nil {
		t.Fatal(err)
	}
	want := []delivery.Held{{Seq: 11, RecordID: "r", Attempts: 1, NextAt: 5000, LastStatus: 500, LastError: "boom"}, {Seq: 12, RecordID: "r"}}
	if fmt.Sprint(held) != fmt.Sprint(want) {
		t.Errorf("Held = %+v, want %+v", held, want)
	}
	// B: 11 dies, 12 is delivered, the cursor never moves back.
	var attempts []delivery.AttemptRecord
	for i := range 205 {
		attempts = append(attempts, delivery.AttemptRecord{At: int64(i), Seq: 11, EventID: "evt_x", Type: delivery.Started, Outcome: "failed", Status: 500, LatencyMs: 3})
	}
	if err := d.Commit(ctx, &delivery.Progress{Destination: "dst_p", Owner: "B", Cursor: 5, Release: []int64{12},
		Dead:     []delivery.DeadLetter{{Seq: 11, EventID: "evt_x", Type: delivery.Started, RecordID: "r", Attempts: 8, LastStatus: 500, LastError: "boom", DeadAt: 7000}},
		Attempts: attempts, FailingSince: ptr(int64(4000))}); err != nil {
		t.Fatal(err)
	}
	if one, _ := d.Destination(ctx, "dst_p"); one.Cursor != 10 || one.FailingSince != 4000 {
		t.Errorf("cursor %d (want 10: never back), failing since %d (want 4000)", one.Cursor, one.FailingSince)
	}
	if held, _ := d.Held(ctx, "dst_p"); len(held) != 0 {
		t.Errorf("still held: %+v", held)
	}
	dead, err := d.DeadLetters(ctx, "dst_p", 10)
	if err != nil || len(dead) != 1 || dead[0].Seq != 11 || dead[0].Attempts != 8 || dead[0].EventID != "evt_x" {
		t.Errorf("DeadLetters = %+v, %v", dead, err)
	}
	log, err := d.Attempts(ctx, "dst_p", 1000)
	if err != nil || len(log) != 200 || log[0].At != 204 || log[199].At != 5 {
		t.Errorf("the attempt log keeps %d (want the newest 200, newest first): first %+v", len(log), log[:min(1, len(log))])
	}
	n, err := d.Redeliver(ctx, "dst_p", nil, 9000)
	if err != nil || n != 1 {
		t.Fatalf("Redeliver = %d, %v", n, err)
	}
	if held, _ := d.Held(ctx, "dst_p"); len(held) != 1 || held[0].Seq != 11 || held[0].NextAt != 9000 || held[0].Attempts != 0 {
		t.Errorf("redelivered: %+v, want seq 11 held, due at 9000, no attempts", held)
	}
	if err := d.Commit(ctx, &delivery.Progress{Destination: "dst_p", Owner: "B", Disable: "gone"}); err != nil {
		t.Fatal(err)
	}
	if one, _ := d.Destination(ctx, "dst_p"); one.Enabled || one.DisabledReason != "gone" {
		t.Errorf("disabled: %+v", one)
	}
}

// testPruneOutbox: pruning keeps what a destination has not passed, holds
// or keeps as a dead letter, and what is younger than the limit.
func testPruneOutbox(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open()
	defer closeStore(t, s)
	src := source(t, s)
	d := src.Delivery()
	dst := delivery.Destination{ID: "dst_x", Kind: delivery.Webhook, URL: "https://example.com/", Enabled: true}
	if err := d.AddDestination(ctx, &dst); err != nil {
		t.Fatal(err)
	}
	if ok, err := d.Lease(ctx, "dst_x", "A", 0, 1<<62); !ok || err != nil {
		t.Fatal(ok, err)
	}
	src.Announce(true)
	appendAll(t, s, Recording(t, "prune-1", 3, false), time.Now().Add(-time.Hour))
	all := outboxUntil(t, d, 0, hasType(delivery.Completed))
	seqs := func(es []delivery.Stored) (out []int64) {
		for _, e := range es {
			out = append(out, e.Seq)
		}
		return out
	}
	// Another destination, added now, starts at the end: the first one
	// still bounds what goes.
	later := delivery.Destination{ID: "dst_y", Kind: delivery.Webhook, URL: "https://example.com/", Enabled: true}
	if err := d.AddDestination(ctx, &later); err != nil {
		t.Fatal(err)
	}
	// The first destination passed the sixth event, holds the fifth and gave
	// up on the fourth.
	cursor, held, dead := all[5].Seq, all[4].Seq, all[3].Seq
	if err := d.Commit(ctx, &delivery.Progress{Destination: "dst_x", Owner: "A", Cursor: cursor, Hold: []delivery.Held{{Seq: held, RecordID: "prune-1"}},
		Dead: []delivery.DeadLetter{{Seq: dead, EventID: "e", Type: delivery.FileCreated, RecordID: "prune-1"}}}); err != nil {
		t.Fatal(err)
	}
	if n, err := d.PruneOutbox(ctx, time.Now().Add(-2*time.Hour).UnixMilli()); err != nil || n != 0 {
		t.Errorf("pruned %d events younger than the limit (%v)", n, err)
	}
	n, err := d.PruneOutbox(ctx, time.Now().Add(time.Minute).UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	left, err := d.Outbox(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{dead, held}
	for _, e := range all[3:] {
		if e.Seq > cursor {
			want = append(want, e.Seq)
		}
	}
	slices.Sort(want)
	want = slices.Compact(want)
	if !slices.Equal(seqs(left), want) || n != int64(len(all)-len(want)) {
		t.Errorf("pruned %d; left %v, want %v", n, seqs(left), want)
	}
}

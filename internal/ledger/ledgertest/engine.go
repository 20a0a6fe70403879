package ledgertest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// Engine: what the projection engine derives from the log: the fold, duplicates, rebuild.

func testAppendAndProject(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	cbs := Recording(t, "rec-a", 3, false)
	at := time.Now()
	got := appendAll(t, s, cbs, at)
	for i, a := range got {
		if a.Seq != 0 && a.Seq != int64(i+1) { // 0: the log numbers rows as it projects them
			t.Fatalf("Append #%d = %+v, want seq %d (or 0)", i, a, i+1)
		}
	}
	if diff := cmp.Diff(fold(cbs, at), mustRecording(t, s, "rec-a")); diff != "" {
		t.Errorf("stored state differs from Apply's (-want +got):\n%s", diff)
	}
	r := mustRecording(t, s, "rec-a").View(at)
	if r.Status != ledger.StatusComplete || r.FileCount != 3 || r.UploadedCount != 3 {
		t.Errorf("view: status %s, %d files, %d uploaded; want complete, 3, 3", r.Status, r.FileCount, r.UploadedCount)
	}
	evs, err := s.RecordingEvents(context.Background(), "rec-a")
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != len(cbs) {
		t.Fatalf("RecordingEvents: %d, want %d", len(evs), len(cbs))
	}
	for i, e := range evs {
		want := ledger.NewEvent(cbs[i], at.Add(time.Duration(i)*time.Millisecond))
		want.Seq = int64(i + 1)
		if diff := cmp.Diff(want, e); diff != "" {
			t.Fatalf("event %d (-want +got):\n%s", i, diff)
		}
	}
}

func testDuplicates(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	cbs := Recording(t, "rec-d", 2, false)
	at := time.Now()
	appendAll(t, s, cbs, at)
	before := mustRecording(t, s, "rec-d")
	// The same callbacks again, later, and a reparse of one (a new body copy).
	again := appendAll(t, s, append(cbs, Callback(t, "rec-d", rc.TypeEnd, 60*time.Minute, "sess_room_u1_rec-d_2.mp4", 200)), at.Add(time.Hour))
	for i, a := range again {
		if a.Seq != 0 && a.Seq != int64(len(cbs)+i+1) {
			t.Errorf("redelivery #%d = %+v, want seq %d (or 0)", i, a, len(cbs)+i+1)
		}
	}
	if diff := cmp.Diff(before, mustRecording(t, s, "rec-d")); diff != "" {
		t.Errorf("duplicates changed the recording (-before +after):\n%s", diff)
	}
	evs, err := s.RecordingEvents(context.Background(), "rec-d")
	if err != nil {
		t.Fatal(err)
	}
	dups := 0
	for i, e := range evs {
		if e.Duplicate {
			dups++
		}
		if e.Duplicate != (i >= len(cbs)) || e.Seq != int64(i+1) {
			t.Errorf("event %d: seq %d, duplicate %v; want seq %d, duplicate %v", i, e.Seq, e.Duplicate, i+1, i >= len(cbs))
		}
	}
	if len(evs) != 2*len(cbs)+1 || dups != len(cbs)+1 {
		t.Errorf("log holds %d events, %d duplicate; want %d and %d", len(evs), dups, 2*len(cbs)+1, len(cbs)+1)
	}
	// The same identity with another code is another callback, not a duplicate.
	if _, err := s.Append(context.Background(), ledger.Incoming{Callback: Callback(t, "rec-d", rc.TypeEnd, 60*time.Minute, "sess_room_u1_rec-d_2.mp4", 500), ReceivedAt: at}); err != nil {
		t.Fatal(err)
	}
	if evs, err := s.RecordingEvents(context.Background(), "rec-d"); err != nil || len(evs) != 2*len(cbs)+2 || evs[len(evs)-1].Duplicate {
		t.Errorf("end with another code: %d events (%v), the last duplicate; want %d, an original", len(evs), err, 2*len(cbs)+2)
	}
}

// testRebuildEqualsLive runs a mixed workload (several recordings, failures,
// redeliveries, unknown types) and checks that rebuilding the projections
// from the log gives exactly the live ones.
func testRebuildEqualsLive(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	ids := []string{"rb-1", "rb-2", "rb-3", "rb-4"}
	at := time.Now()
	var all []rc.Callback
	for i, id := range ids {
		all = append(all, Recording(t, id, i+1, i%2 == 1)...)
	}
	all = append(all, Callback(t, "rb-1", rc.Type(9), time.Hour, "", 200), Callback(t, "rb-5", rc.TypeStart, 0, "", 503))
	appendAll(t, s, all, at)
	appendAll(t, s, all[:7], at.Add(time.Minute)) // redeliveries
	live := map[string]ledger.State{}
	for _, id := range append(ids, "rb-5") {
		live[id] = mustRecording(t, s, id)
	}
	before, err := s.ListRecordings(context.Background(), ledger.RecordingFilter{})
	if err != nil {
		t.Fatal(err)
	}
	feed, err := s.Events(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.Rebuild(context.Background())
	if err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	if n != int64(len(all)) {
		t.Errorf("Rebuild applied %d events, want %d originals", n, len(all))
	}
	for id, want := range live {
		if diff := cmp.Diff(want, mustRecording(t, s, id)); diff != "" {
			t.Errorf("%s after rebuild (-live +rebuilt):\n%s", id, diff)
		}
	}
	after, err := s.ListRecordings(context.Background(), ledger.RecordingFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(recordIDs(before.Items), recordIDs(after.Items)); diff != "" {
		t.Errorf("list order changed by the rebuild (-live +rebuilt):\n%s", diff)
	}
	// The feed too: the same seqs, bodies and duplicate marks.
	rebuilt, err := s.Events(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(feed, rebuilt); diff != "" || len(feed) != 2*len(all)-len(all)+7 {
		t.Errorf("feed of %d events changed by the rebuild (-live +rebuilt):\n%s", len(feed), diff)
	}
	// The store goes on working after a rebuild.
	if _, err := s.Append(context.Background(), ledger.Incoming{Callback: Callback(t, "rb-6", rc.TypeStart, 0, "", 200), ReceivedAt: at}); err != nil {
		t.Errorf("Append after Rebuild: %v", err)
	}
}

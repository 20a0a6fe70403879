package ledgertest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// Removal: ledger.Remover, the one primitive of retention and erasure.

func remover(t *testing.T, s ledger.Store) ledger.Remover {
	t.Helper()
	r, ok := s.(ledger.Remover)
	if !ok {
		t.Fatalf("%T cannot remove recordings (ledger.Remover)", s)
	}
	return r
}

// UserRecording is Recording with the callbacks naming user instead of
// "u1" (in userId and in the file names, as RC's naming rule does).
func UserRecording(t testing.TB, recordID, user string, n int) []rc.Callback {
	t.Helper()
	cbs := Recording(t, recordID, n, false)
	for i, cb := range cbs {
		body := strings.ReplaceAll(string(cb.Raw), `"userId":"u1"`, `"userId":"`+user+`"`)
		body = strings.ReplaceAll(body, "_u1_", "_"+user+"_")
		parsed, err := rc.Parse([]byte(body))
		if err != nil {
			t.Fatalf("test callback does not parse: %v", err)
		}
		cbs[i] = parsed
	}
	return cbs
}

// removalFixture logs two recordings of one user ("gone-1", "gone-2",
// with redeliveries) between two of another ("kept-1", "kept-2").
func removalFixture(t *testing.T, s ledger.Store, at time.Time) (gone, kept []rc.Callback) {
	t.Helper()
	k1 := UserRecording(t, "kept-1", "keeper", 2)
	g1 := UserRecording(t, "gone-1", "leaver", 3)
	g2 := UserRecording(t, "gone-2", "leaver", 1)
	k2 := UserRecording(t, "kept-2", "keeper", 1)
	appendAll(t, s, k1, at)
	appendAll(t, s, g1, at.Add(time.Second))
	appendAll(t, s, g1[:2], at.Add(2*time.Second)) // redeliveries: duplicate marks to drop
	appendAll(t, s, g2, at.Add(3*time.Second))
	appendAll(t, s, k2, at.Add(4*time.Second))
	gone = append(append(append(gone, g1...), g1[:2]...), g2...)
	kept = append(kept, k1...)
	return gone, append(kept, k2...)
}

func forget(t *testing.T, s ledger.Store, ids ...string) ledger.Removed {
	t.Helper()
	got, err := remover(t, s).Forget(context.Background(), ids)
	if err != nil {
		t.Fatalf("Forget: %v", err)
	}
	return got
}

// checkFeedGapless reads the whole feed, one event a page too (so every
// cursor is used, tombstones' included), and checks that seqs run 1..n
// without a gap, that tombstones carry nothing but their place, and that
// no event names a removed recording.
func checkFeedGapless(t *testing.T, s ledger.Store, n int, removed map[string]bool) []ledger.Event {
	t.Helper()
	all, err := s.Events(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != n {
		t.Fatalf("feed holds %d events, want %d", len(all), n)
	}
	tombstones := 0
	for i, e := range all {
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d: the feed has a gap", i, e.Seq)
		}
		if e.ReceivedAt == 0 {
			t.Errorf("event %d lost its arrival time", e.Seq)
		}
		if removed[e.RecordID] {
			t.Errorf("event %d still names removed recording %s", e.Seq, e.RecordID)
		}
		if e.Removed {
			tombstones++
			if e.RecordID != "" || e.Body != nil || e.AppKey != "" || e.Duplicate || e.TypeName != "removed" {
				t.Errorf("tombstone %d keeps more than its place: %+v", e.Seq, e)
			}
		}
		page, err := s.Events(context.Background(), e.Seq-1, 1)
		if err != nil || len(page) != 1 || page[0].Seq != e.Seq {
			t.Fatalf("Events(after %d, 1) = %d events, %v; want seq %d", e.Seq-1, len(page), err, e.Seq)
		}
	}
	if want := n; removed != nil && tombstones == 0 && want > 0 {
		t.Errorf("no tombstone in the feed")
	}
	return all
}

func testForget(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	at := time.Now().Add(-time.Hour)
	gone, kept := removalFixture(t, s, at)
	keptBefore := map[string]ledger.State{"kept-1": mustRecording(t, s, "kept-1"), "kept-2": mustRecording(t, s, "kept-2")}
	var goneFile string
	for name := range mustRecording(t, s, "gone-1").Files {
		goneFile = name
	}
	statsBefore, err := s.Stats(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}

	got := forget(t, s, "gone-1", "gone-2", "never-was")
	want := ledger.Removed{Recordings: 2, LogRows: int64(len(gone)), Files: 4}
	if got != want {
		t.Errorf("Forget = %+v, want %+v", got, want)
	}
	for _, id := range []string{"gone-1", "gone-2"} {
		if _, err := s.Recording(context.Background(), id); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("Recording(%s) after Forget: %v, want ErrNotFound", id, err)
		}
		if evs, err := s.RecordingEvents(context.Background(), id); err != nil || len(evs) != 0 {
			t.Errorf("RecordingEvents(%s) = %d events, %v; want none", id, len(evs), err)
		}
	}
	for id, st := range keptBefore {
		if diff := cmp.Diff(st, mustRecording(t, s, id)); diff != "" {
			t.Errorf("%s changed by Forget (-before +after):\n%s", id, diff)
		}
	}
	if sts, err := s.FileRecordings(context.Background(), goneFile); err != nil || len(sts) != 0 {
		t.Errorf("FileRecordings(%s) = %d, %v; want none", goneFile, len(sts), err)
	}
	for _, f := range []ledger.RecordingFilter{{UserID: "leaver"}, {}} {
		page, err := s.ListRecordings(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range page.Items {
			if st.UserID == "leaver" {
				t.Errorf("ListRecordings(%+v) still lists %s", f, st.RecordID)
			}
		}
	}
	files, err := s.ListFiles(context.Background(), ledger.FileFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files.Items {
		if f.RecordID == "gone-1" || f.RecordID == "gone-2" {
			t.Errorf("ListFiles still lists %s of %s", f.FileName, f.RecordID)
		}
	}
	stats, err := s.Stats(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var nBefore, nAfter int64
	for _, n := range statsBefore.RecordingsByStatus {
		nBefore += n
	}
	for _, n := range stats.RecordingsByStatus {
		nAfter += n
	}
	if nBefore-nAfter != 2 || stats.LoggedSeq != statsBefore.LoggedSeq {
		t.Errorf("stats: %d recordings before, %d after, logged %d then %d; want 2 fewer, the same log", nBefore, nAfter, statsBefore.LoggedSeq, stats.LoggedSeq)
	}
	checkFeedGapless(t, s, len(gone)+len(kept), map[string]bool{"gone-1": true, "gone-2": true})

	if again := forget(t, s, "gone-1", "gone-2"); again != (ledger.Removed{}) {
		t.Errorf("Forget again = %+v, want nothing", again)
	}
}

// testRebuildAfterForget: a rebuild from the log after a removal gives the
// ledger and the feed it had before the rebuild, and so does a restart.
func testRebuildAfterForget(t *testing.T, open Opener) {
	s := open()
	at := time.Now().Add(-time.Hour)
	gone, kept := removalFixture(t, s, at)
	forget(t, s, "gone-1", "gone-2")
	list := func() []ledger.State {
		page, err := s.ListRecordings(context.Background(), ledger.RecordingFilter{})
		if err != nil {
			t.Fatal(err)
		}
		return page.Items
	}
	before, feed := list(), checkFeedGapless(t, s, len(gone)+len(kept), map[string]bool{"gone-1": true, "gone-2": true})
	n, err := s.Rebuild(context.Background())
	if err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	if n != int64(len(kept)) {
		t.Errorf("Rebuild applied %d callbacks, want %d (the kept ones)", n, len(kept))
	}
	if diff := cmp.Diff(before, list()); diff != "" {
		t.Errorf("rebuild after Forget changed the ledger (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(feed, checkFeedGapless(t, s, len(gone)+len(kept), map[string]bool{"gone-1": true})); diff != "" {
		t.Errorf("rebuild after Forget changed the feed (-before +after):\n%s", diff)
	}
	closeStore(t, s)
	s = open()
	defer closeStore(t, s)
	if diff := cmp.Diff(before, list()); diff != "" {
		t.Errorf("reopen after Forget changed the ledger (-before +after):\n%s", diff)
	}
	if _, err := s.Recording(context.Background(), "gone-1"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("gone-1 after reopen: %v, want ErrNotFound", err)
	}
}

// testCallbackAfterForget: a later callback of a removed recording (RC
// retrying) is a new row and makes the recording again, from it alone.
func testCallbackAfterForget(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	at := time.Now().Add(-time.Hour)
	gone, kept := removalFixture(t, s, at)
	forget(t, s, "gone-1", "gone-2")
	late := UserRecording(t, "gone-1", "leaver", 3)[0:1]
	later := time.Now()
	appendAll(t, s, late, later)
	if diff := cmp.Diff(fold(late, later), mustRecording(t, s, "gone-1")); diff != "" {
		t.Errorf("gone-1 after a late callback (-want +got):\n%s", diff)
	}
	evs, err := s.RecordingEvents(context.Background(), "gone-1")
	if err != nil || len(evs) != 1 || evs[0].Seq != int64(len(gone)+len(kept)+1) || evs[0].Duplicate {
		t.Errorf("RecordingEvents(gone-1) = %+v, %v; want the late callback alone, an original", evs, err)
	}
	if _, err := s.Rebuild(context.Background()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(fold(late, later), mustRecording(t, s, "gone-1")); diff != "" {
		t.Errorf("gone-1 after rebuild (-want +got):\n%s", diff)
	}
}

// testForgetOutbound: a removed recording's outbound events go, delivered
// or not; a destination's cursor past them still reads what follows.
func testForgetOutbound(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	src := source(t, s)
	src.Announce(true)
	at := time.Now().Add(-10 * time.Minute)
	appendAll(t, s, UserRecording(t, "ob-gone", "leaver", 1), at)
	appendAll(t, s, UserRecording(t, "ob-kept", "keeper", 1), at.Add(time.Second))
	all := outboxUntil(t, src.Delivery(), 0, func(st []delivery.Stored) bool {
		n := 0
		for _, e := range st {
			if e.Type == delivery.Completed {
				n++
			}
		}
		return n == 2
	})
	var goneEvents int64
	for _, e := range all {
		if e.RecordID == "ob-gone" {
			goneEvents++
		}
	}
	got := forget(t, s, "ob-gone")
	if got.Outbound != goneEvents || goneEvents == 0 {
		t.Errorf("Forget removed %d outbound events, want %d", got.Outbound, goneEvents)
	}
	left, err := src.Delivery().Outbox(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		if e.RecordID == "ob-gone" || bytes.Contains(e.Payload, []byte("leaver")) {
			t.Errorf("outbound event %d of the removed recording is left", e.Seq)
		}
	}
	if int64(len(left)) != int64(len(all))-goneEvents {
		t.Errorf("outbox holds %d events, want %d", len(left), int64(len(all))-goneEvents)
	}
	// A cursor at the first removed event still reads the rest.
	first := all[0].Seq
	for _, e := range all {
		if e.RecordID == "ob-gone" {
			first = e.Seq
			break
		}
	}
	after, err := src.Delivery().Outbox(context.Background(), first, 1000)
	if err != nil || len(after) == 0 {
		t.Errorf("Outbox(after %d) = %d, %v; want the kept recording's events", first, len(after), err)
	}
}

// testExpired: recordings by the arrival of their last callback.
func testExpired(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	old := time.Now().Add(-48 * time.Hour)
	appendAll(t, s, UserRecording(t, "old-1", "a", 1), old)
	appendAll(t, s, UserRecording(t, "old-2", "a", 1)[:1], old.Add(time.Minute)) // never ended
	appendAll(t, s, UserRecording(t, "new-1", "a", 1), time.Now())
	// A recording first seen long ago whose last callback is recent stays.
	appendAll(t, s, UserRecording(t, "mixed", "a", 1)[:1], old)
	appendAll(t, s, UserRecording(t, "mixed", "a", 1)[1:], time.Now())
	mustRecording(t, s, "mixed")
	r := remover(t, s)
	got, err := r.Expired(context.Background(), time.Now().Add(-24*time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"old-1", "old-2"}, got); diff != "" {
		t.Errorf("Expired (-want +got):\n%s", diff)
	}
	if got, err := r.Expired(context.Background(), time.Now().Add(-24*time.Hour), 1); err != nil || len(got) != 1 || got[0] != "old-1" {
		t.Errorf("Expired(limit 1) = %v, %v; want [old-1]", got, err)
	}
	if got, err := r.Expired(context.Background(), old, 10); err != nil || len(got) != 0 {
		t.Errorf("Expired(before the oldest) = %v, %v; want none", got, err)
	}
}

// SharedRecording is a single-mode recording of two users: the room's
// recording whose first callbacks, so its userId, are first's, and which
// also holds the files of second (named after second, as RC names them).
func SharedRecording(t testing.TB, recordID, first, second string) []rc.Callback {
	t.Helper()
	cbs := UserRecording(t, recordID, first, 2)
	for _, cb := range UserRecording(t, recordID, second, 2) {
		if strings.Contains(cb.Output.FileName, "_"+second+"_") {
			cbs = append(cbs, cb)
		}
	}
	return cbs
}

// testNamingRecordings: a recording is found by the users its file names
// name, not only by its userId (ids with '_' included), of one app or all.
func testNamingRecordings(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	at := time.Now().Add(-time.Hour)
	appendAll(t, s, SharedRecording(t, "shared", "alpha", "user_7"), at)
	appendAll(t, s, UserRecording(t, "own", "user_7", 1), at.Add(time.Second))
	appendAll(t, s, UserRecording(t, "other", "keeper", 1), at.Add(2*time.Second))
	if st := mustRecording(t, s, "shared"); st.UserID != "alpha" || len(st.Files) != 4 {
		t.Fatalf("shared recording: userId %q, %d files; want alpha, 4", st.UserID, len(st.Files))
	}
	r := remover(t, s)
	for _, c := range []struct {
		user, app string
		want      []string
	}{
		{"user_7", "", []string{"own", "shared"}},
		{"user_7", "app", []string{"own", "shared"}},
		{"user_7", "another-app", nil},
		{"alpha", "", []string{"shared"}},
		{"keeper", "", []string{"other"}},
		{"user_8", "", nil},
		{"ser_7", "", nil},
	} {
		got, err := r.NamingRecordings(context.Background(), c.user, c.app)
		slices.Sort(got)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("NamingRecordings(%q, %q) = %v, %v; want %v", c.user, c.app, got, err, c.want)
		}
	}
}

// testQuarantineRemoval: an age limit, and erasure by the bytes of an id.
func testQuarantineRemoval(t *testing.T, open Opener) {
	s := open()
	ctx := context.Background()
	now := time.Now()
	add := func(at time.Time, path, body string) {
		t.Helper()
		r := ledger.Rejection{At: at.UnixMilli(), Status: 401, Reason: "bad_signature", Method: "POST", Path: path,
			Header: map[string][]string{"Content-Type": {"application/json"}}, Body: []byte(body), BodySize: int64(len(body))}
		if err := s.Quarantine(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	add(now.Add(-72*time.Hour), "/v1/callbacks/recording", `{"userId":"someone"}`)
	add(now.Add(-time.Hour), "/v1/callbacks/recording?u=leaver", `{}`)
	add(now.Add(-time.Hour), "/v1/callbacks/recording", `{"userId":"leaver","fileName":"x_leaver_1.mp4"}`)
	add(now, "/v1/callbacks/recording", `{"userId":"keeper"}`)
	r := remover(t, s)
	if n, err := r.PruneQuarantine(ctx, now.Add(-24*time.Hour), 100); err != nil || n != 1 {
		t.Errorf("PruneQuarantine = %d, %v; want 1", n, err)
	}
	if n, err := r.EraseQuarantine(ctx, []byte("leaver")); err != nil || n != 2 {
		t.Errorf("EraseQuarantine = %d, %v; want 2", n, err)
	}
	left, err := s.QuarantineList(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || !bytes.Contains(left[0].Body, []byte("keeper")) {
		t.Errorf("quarantine keeps %d rows, want the keeper's alone", len(left))
	}
	stats, err := s.Stats(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if stats.QuarantineCount != 1 {
		t.Errorf("Stats.QuarantineCount = %d, want 1", stats.QuarantineCount)
	}
	if err := r.Audit(ctx, ledger.Audit{At: now.UnixMilli(), AppKey: "app", Removed: ledger.Removed{Recordings: 1}, Quarantine: 2}); err != nil {
		t.Errorf("Audit: %v", err)
	}
	closeStore(t, s)
}

package ledgertest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/recledger/recledger/internal/ledger"
)

// Verifications: ledger.Verifications, the storage checks of uploaded
// files (the verifier's queue and its results).

func verifications(t *testing.T, s ledger.Store) ledger.Verifications {
	t.Helper()
	v, ok := s.(ledger.Verifications)
	if !ok {
		t.Fatalf("%T keeps no storage verification (ledger.Verifications)", s)
	}
	return v
}

// check is a queued check of recordID's file name, due at next.
func check(recordID, name, url string, next int64) ledger.FileCheck {
	return ledger.FileCheck{RecordID: recordID, FileName: name, AppKey: "app", URLHash: ledger.URLHash(url),
		Verification: ledger.Verification{State: ledger.VerifyPending}, NextAt: next}
}

// outcome is c checked at `at` with state and the storage's status.
func outcome(c ledger.FileCheck, state ledger.VerificationState, status int, at int64) ledger.FileCheck {
	size := int64(1234)
	c.Verification = ledger.Verification{State: state, HTTPStatus: &status, Size: &size, ContentType: "video/mp4",
		ETag: `"e1"`, CheckedAt: &at, Attempts: c.Attempts + 1}
	if state != ledger.VerifyVerified {
		c.Error = "the storage answered " + fmt.Sprint(status)
	}
	c.NextAt = 0
	return c
}

func queue(t *testing.T, v ledger.Verifications, cursor int64, checks ...ledger.FileCheck) {
	t.Helper()
	if err := v.QueueVerifications(context.Background(), checks, cursor); err != nil {
		t.Fatalf("QueueVerifications: %v", err)
	}
}

func save(t *testing.T, v ledger.Verifications, c ledger.FileCheck) {
	t.Helper()
	if ok, err := v.SaveVerification(context.Background(), c); err != nil || !ok {
		t.Fatalf("SaveVerification(%s) = %v, %v; want stored", c.FileName, ok, err)
	}
}

func fileVerifications(t *testing.T, v ledger.Verifications, recordID string) map[string]ledger.Verification {
	t.Helper()
	got, err := v.FileVerifications(context.Background(), recordID)
	if err != nil {
		t.Fatalf("FileVerifications(%s): %v", recordID, err)
	}
	return got
}

func dueNames(t *testing.T, v ledger.Verifications, now int64, limit int) []string {
	t.Helper()
	due, err := v.DueVerifications(context.Background(), now, limit)
	if err != nil {
		t.Fatalf("DueVerifications: %v", err)
	}
	names := []string{}
	for _, c := range due {
		names = append(names, c.RecordID+"/"+c.FileName)
	}
	return names
}

func cursorIs(t *testing.T, v ledger.Verifications, want int64) {
	t.Helper()
	if got, err := v.VerificationCursor(context.Background()); err != nil || got != want {
		t.Errorf("VerificationCursor = %d, %v; want %d", got, err, want)
	}
}

// testVerificationQueue: the cursor starts at 0 and moves with the queue;
// a redelivered upload (same URL) leaves a check as it is, a new URL
// replaces it.
func testVerificationQueue(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	v := verifications(t, s)
	cursorIs(t, v, 0)
	a := check("r1", "a.mp4", "http://oss/a?sig=1", 100)
	queue(t, v, 7, a, check("r1", "b.mp4", "http://oss/b", 100))
	cursorIs(t, v, 7)
	done := outcome(a, ledger.VerifyVerified, 200, 150)
	save(t, v, done)

	// The same URL again: the verified outcome stays.
	queue(t, v, 9, check("r1", "a.mp4", "http://oss/a?sig=1", 500))
	cursorIs(t, v, 9)
	if got := fileVerifications(t, v, "r1")["a.mp4"]; !cmp.Equal(got, done.Verification) {
		t.Errorf("a redelivered upload changed the check: %s", cmp.Diff(done.Verification, got))
	}
	// Another URL: checked afresh.
	queue(t, v, 12, check("r1", "a.mp4", "http://oss/a?sig=2", 600))
	want := ledger.Verification{State: ledger.VerifyPending}
	if got := fileVerifications(t, v, "r1")["a.mp4"]; !cmp.Equal(got, want) {
		t.Errorf("a new URL left the old check: %s", cmp.Diff(want, got))
	}
	if got := dueNames(t, v, 600, 10); !cmp.Equal(got, []string{"r1/b.mp4", "r1/a.mp4"}) {
		t.Errorf("due = %v, want b then the replaced a", got)
	}
	// The old URL's outcome comes late: refused, the check stays pending.
	if ok, err := v.SaveVerification(context.Background(), outcome(a, ledger.VerifyMissing, 404, 700)); err != nil || ok {
		t.Errorf("SaveVerification under a replaced URL = %v, %v; want not stored", ok, err)
	}
	if got := fileVerifications(t, v, "r1")["a.mp4"]; got.State != ledger.VerifyPending {
		t.Errorf("a stale outcome was stored: %+v", got)
	}
	// An empty batch still moves the cursor (a page of events naming no upload).
	queue(t, v, 20)
	cursorIs(t, v, 20)

	// It survives a restart.
	closeStore(t, s)
	s = open()
	v = verifications(t, s)
	cursorIs(t, v, 20)
	if got := len(fileVerifications(t, v, "r1")); got != 2 {
		t.Errorf("after reopening: %d checks, want 2", got)
	}
}

// testVerificationDue: the earliest first, up to limit, neither final
// checks (NextAt 0) nor those due later.
func testVerificationDue(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	v := verifications(t, s)
	queue(t, v, 1,
		check("r1", "c.mp4", "u/c", 300), check("r2", "a.mp4", "u/a", 100), check("r1", "b.mp4", "u/b", 200),
		check("r3", "later.mp4", "u/l", 301), check("r3", "final.mp4", "u/f", 50))
	save(t, v, outcome(check("r3", "final.mp4", "u/f", 50), ledger.VerifyMissing, 404, 60))
	if got, want := dueNames(t, v, 300, 10), []string{"r2/a.mp4", "r1/b.mp4", "r1/c.mp4"}; !cmp.Equal(got, want) {
		t.Errorf("due at 300 = %v, want %v", got, want)
	}
	if got, want := dueNames(t, v, 300, 2), []string{"r2/a.mp4", "r1/b.mp4"}; !cmp.Equal(got, want) {
		t.Errorf("due at 300, 2 = %v, want %v", got, want)
	}
	if got := dueNames(t, v, 99, 10); len(got) != 0 {
		t.Errorf("due at 99 = %v, want none", got)
	}
	// A transient failure waits: due again later, pending, with its answer.
	retry := check("r2", "a.mp4", "u/a", 100)
	status := 503
	retry.Attempts, retry.HTTPStatus, retry.Error, retry.NextAt = 1, &status, "503 from the storage", 1000
	save(t, v, retry)
	if got, want := dueNames(t, v, 999, 10), []string{"r1/b.mp4", "r1/c.mp4", "r3/later.mp4"}; !cmp.Equal(got, want) {
		t.Errorf("due at 999 = %v, want %v", got, want)
	}
	due, err := v.DueVerifications(context.Background(), 1000, 10)
	if err != nil || len(due) != 4 {
		t.Fatalf("DueVerifications(1000, 10) = %v, %v; want 4", due, err)
	}
	if want := retry; !cmp.Equal(due[3], want) {
		t.Errorf("the retried check reads back otherwise: %s", cmp.Diff(want, due[3]))
	}
}

// testVerificationRecheck: each selector, and the zero filter selects
// nothing.
func testVerificationRecheck(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open()
	defer closeStore(t, s)
	v := verifications(t, s)
	checks := []ledger.FileCheck{check("r1", "a.mp4", "u/1a", 1), check("r1", "b.mp4", "u/1b", 1), check("r2", "a.mp4", "u/2a", 1), check("r3", "x.mp4", "u/3x", 1)}
	states := []ledger.VerificationState{ledger.VerifyMissing, ledger.VerifyVerified, ledger.VerifyMissing, ledger.VerifySizeMismatch}
	queue(t, v, 1, checks...)
	reset := func() {
		for i, c := range checks {
			c.Attempts = 2
			c.Announced = true
			save(t, v, outcome(c, states[i], 200, 10))
		}
	}
	for _, tt := range []struct {
		name string
		f    ledger.RecheckFilter
		want []string
	}{
		{"zero", ledger.RecheckFilter{}, nil},
		{"file without its recording", ledger.RecheckFilter{FileName: "a.mp4"}, nil},
		{"recording", ledger.RecheckFilter{RecordID: "r1"}, []string{"r1/a.mp4", "r1/b.mp4"}},
		{"file", ledger.RecheckFilter{RecordID: "r1", FileName: "b.mp4"}, []string{"r1/b.mp4"}},
		{"state", ledger.RecheckFilter{State: ledger.VerifyMissing}, []string{"r1/a.mp4", "r2/a.mp4"}},
		{"recording and state", ledger.RecheckFilter{RecordID: "r1", State: ledger.VerifyMissing}, []string{"r1/a.mp4"}},
		{"unknown recording", ledger.RecheckFilter{RecordID: "r9"}, nil},
		{"unknown file", ledger.RecheckFilter{RecordID: "r1", FileName: "zz.mp4"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			reset()
			n, err := v.Recheck(ctx, tt.f, 500)
			if err != nil || n != int64(len(tt.want)) {
				t.Errorf("Recheck(%+v) = %d, %v; want %d", tt.f, n, err, len(tt.want))
			}
			got := dueNames(t, v, 500, 10)
			if len(got) == 0 {
				got = nil
			}
			if !cmp.Equal(got, tt.want) {
				t.Errorf("due after Recheck(%+v) = %v, want %v", tt.f, got, tt.want)
			}
			for _, name := range tt.want {
				rec, file, _ := strings.Cut(name, "/")
				got := fileVerifications(t, v, rec)[file]
				if got.State != ledger.VerifyPending || got.Attempts != 0 {
					t.Errorf("%s after Recheck: %+v; want pending with attempts counted afresh", name, got)
				}
			}
			if due, _ := v.DueVerifications(ctx, 500, 10); len(due) > 0 && due[0].Announced {
				t.Errorf("a re-checked check is still marked announced: its new outcome would not be")
			}
		})
	}
	if _, err := v.Recheck(ctx, ledger.RecheckFilter{State: "gone"}, 1); !errors.Is(err, ledger.ErrBadFilter) {
		t.Errorf("Recheck of an unknown state: %v, want ErrBadFilter", err)
	}
}

// testVerificationAnnounce: final outcomes wait to be announced until
// marked, for the URL and state they were announced for.
func testVerificationAnnounce(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open()
	defer closeStore(t, s)
	v := verifications(t, s)
	a, b, c := check("r1", "a.mp4", "u/a", 1), check("r1", "b.mp4", "u/b", 1), check("r2", "c.mp4", "u/c", 1)
	queue(t, v, 1, a, b, c)
	unannounced := func() []string {
		t.Helper()
		got, err := v.Unannounced(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		names := []string{}
		for _, c := range got {
			names = append(names, c.FileName+":"+string(c.State))
		}
		return names
	}
	if got := unannounced(); len(got) != 0 {
		t.Errorf("Unannounced before any outcome = %v, want none (pending is not announced)", got)
	}
	missing := outcome(a, ledger.VerifyMissing, 404, 20)
	save(t, v, missing)
	save(t, v, outcome(b, ledger.VerifyVerified, 200, 10))
	unreachable := outcome(c, ledger.VerifyUnreachable, 0, 30)
	unreachable.Announced = true // no event: saved as announced
	save(t, v, unreachable)
	if got, want := unannounced(), []string{"b.mp4:verified", "a.mp4:missing"}; !cmp.Equal(got, want) {
		t.Errorf("Unannounced = %v, want %v (by checkedAt)", got, want)
	}
	if got, err := v.Unannounced(ctx, 1); err != nil || len(got) != 1 {
		t.Errorf("Unannounced(1) = %d, %v; want 1", len(got), err)
	}
	// Marked under another state or URL: not this outcome.
	wrong := missing
	wrong.State = ledger.VerifyVerified
	other := missing
	other.URLHash = ledger.URLHash("u/other")
	for _, m := range []ledger.FileCheck{wrong, other} {
		if err := v.MarkAnnounced(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if got := unannounced(); len(got) != 2 {
		t.Errorf("a mark for another state or URL took: %v", got)
	}
	if err := v.MarkAnnounced(ctx, missing); err != nil {
		t.Fatal(err)
	}
	if got, want := unannounced(), []string{"b.mp4:verified"}; !cmp.Equal(got, want) {
		t.Errorf("after MarkAnnounced: %v, want %v", got, want)
	}
}

// testVerificationCounts: VerificationCounts by state, and
// RecordingFilter.Verification over pages and in CountRecordings.
func testVerificationCounts(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open()
	defer closeStore(t, s)
	v := verifications(t, s)
	at := time.Now().Add(-time.Hour)
	for i, id := range []string{"v-1", "v-2", "v-3", "v-4"} {
		appendAll(t, s, Recording(t, id, 2, false), at.Add(time.Duration(i)*time.Second))
	}
	mustRecording(t, s, "v-4")
	file := func(id string, n int) string { return fmt.Sprintf("sess_room_u1_%s_%d.mp4", id, n) }
	set := map[string][2]ledger.VerificationState{
		"v-1": {ledger.VerifyMissing, ledger.VerifyVerified},
		"v-2": {ledger.VerifyVerified, ledger.VerifyVerified},
		"v-3": {ledger.VerifyMissing, ledger.VerifyMissing},
		"v-4": {ledger.VerifySizeMismatch, ledger.VerifyPending},
	}
	for id, states := range set {
		for n, st := range states {
			c := check(id, file(id, n+1), "http://oss/"+file(id, n+1), 1)
			queue(t, v, 1, c)
			if st != ledger.VerifyPending {
				save(t, v, outcome(c, st, 200, 5))
			}
		}
	}
	counts, err := v.VerificationCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[ledger.VerificationState]int64{ledger.VerifyMissing: 3, ledger.VerifyVerified: 3, ledger.VerifySizeMismatch: 1, ledger.VerifyPending: 1}
	if !cmp.Equal(counts, want) {
		t.Errorf("VerificationCounts: %s", cmp.Diff(want, counts))
	}
	// Of some states only (the overview's), and a state none has.
	some, err := v.VerificationCounts(ctx, ledger.VerifyMissing, ledger.VerifySizeMismatch, ledger.VerifyUnreachable)
	if want := (map[ledger.VerificationState]int64{ledger.VerifyMissing: 3, ledger.VerifySizeMismatch: 1}); err != nil || !cmp.Equal(some, want) {
		t.Errorf("VerificationCounts(missing, size_mismatch, unreachable) = %v, %v; want %v", some, err, want)
	}
	for _, bad := range []ledger.VerificationState{"gone", "", "missing\x00"} {
		if _, err := v.VerificationCounts(ctx, ledger.VerifyMissing, bad); !errors.Is(err, ledger.ErrBadFilter) {
			t.Errorf("VerificationCounts(%q): %v, want ErrBadFilter", bad, err)
		}
	}

	// Missing: v-3 then v-1 (newest first), one a page.
	f := ledger.RecordingFilter{Verification: ledger.VerifyMissing, Limit: 1}
	var ids []string
	for {
		page, err := s.ListRecordings(ctx, f)
		if err != nil {
			t.Fatalf("ListRecordings(verification missing): %v", err)
		}
		for _, st := range page.Items {
			ids = append(ids, st.RecordID)
		}
		if page.Next == "" || len(ids) > 4 {
			break
		}
		f.Cursor = page.Next
	}
	if want := []string{"v-3", "v-1"}; !cmp.Equal(ids, want) {
		t.Errorf("recordings with a missing file = %v, want %v", ids, want)
	}
	for st, want := range map[ledger.VerificationState]int64{
		ledger.VerifyMissing: 2, ledger.VerifyVerified: 2, ledger.VerifySizeMismatch: 1, ledger.VerifyUnreachable: 0, ledger.VerifyPending: 1, "": 4,
	} {
		n, err := s.CountRecordings(ctx, ledger.RecordingFilter{Verification: st}, 100)
		if err != nil || n != want {
			t.Errorf("CountRecordings(verification %q) = %d, %v; want %d", st, n, err, want)
		}
	}
	// With other filters: a status that none of them has.
	if n, err := s.CountRecordings(ctx, ledger.RecordingFilter{Verification: ledger.VerifyMissing, Status: ledger.StatusRecording}, 100); err != nil || n != 0 {
		t.Errorf("CountRecordings(missing, recording) = %d, %v; want 0", n, err)
	}
	for _, bad := range []ledger.VerificationState{"gone", "Missing", "missing\x00", ledger.VerificationState(strings.Repeat("m", 100_000))} {
		if _, err := s.ListRecordings(ctx, ledger.RecordingFilter{Verification: bad}); !errors.Is(err, ledger.ErrBadFilter) {
			t.Errorf("ListRecordings(verification %.20q): %v, want ErrBadFilter", bad, err)
		}
		if _, err := s.CountRecordings(ctx, ledger.RecordingFilter{Verification: bad}, 10); !errors.Is(err, ledger.ErrBadFilter) {
			t.Errorf("CountRecordings(verification %.20q): %v, want ErrBadFilter", bad, err)
		}
	}
}

// testVerificationLifecycle: checks survive a rebuild (they are not
// derived from the log) and go with their recording when it is removed.
func testVerificationLifecycle(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open()
	defer closeStore(t, s)
	v := verifications(t, s)
	at := time.Now().Add(-time.Hour)
	appendAll(t, s, Recording(t, "keep", 2, false), at)
	appendAll(t, s, Recording(t, "drop", 2, false), at.Add(time.Second))
	mustRecording(t, s, "drop")
	keep := outcome(check("keep", "sess_room_u1_keep_1.mp4", "u/k", 1), ledger.VerifyMissing, 404, 9)
	drop := outcome(check("drop", "sess_room_u1_drop_1.mp4", "u/d", 1), ledger.VerifyMissing, 404, 9)
	queue(t, v, 3, check("keep", keep.FileName, "u/k", 1), check("drop", drop.FileName, "u/d", 1), check("drop", "sess_room_u1_drop_2.mp4", "u/d2", 1))
	save(t, v, keep)
	save(t, v, drop)

	if _, err := s.Rebuild(ctx); err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	cursorIs(t, v, 3)
	if got := fileVerifications(t, v, "keep"); !cmp.Equal(got, map[string]ledger.Verification{keep.FileName: keep.Verification}) {
		t.Errorf("after Rebuild: %v", got)
	}
	if n, err := s.CountRecordings(ctx, ledger.RecordingFilter{Verification: ledger.VerifyMissing}, 10); err != nil || n != 2 {
		t.Errorf("after Rebuild, recordings with a missing file = %d, %v; want 2", n, err)
	}

	forget(t, s, "drop")
	if got := fileVerifications(t, v, "drop"); len(got) != 0 {
		t.Errorf("Forget left the checks of its recording: %v", got)
	}
	if got := fileVerifications(t, v, "keep"); len(got) != 1 {
		t.Errorf("Forget took another recording's checks: %v", got)
	}
	counts, err := v.VerificationCounts(ctx)
	if err != nil || !cmp.Equal(counts, map[ledger.VerificationState]int64{ledger.VerifyMissing: 1}) {
		t.Errorf("counts after Forget = %v, %v; want one missing", counts, err)
	}
	if got := dueNames(t, v, 1<<62, 10); len(got) != 0 {
		t.Errorf("Forget left due checks: %v", got)
	}
}

// testVerificationHostile: what a hostile storage answers (NUL, invalid
// UTF-8, megabytes) is stored bounded on both backends, and ids no store
// can hold are refused or match nothing, never a database error.
func testVerificationHostile(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open()
	defer closeStore(t, s)
	v := verifications(t, s)
	queue(t, v, 4, check("r1", "a.mp4", "u/a", 1))
	huge := strings.Repeat("x", 1<<20)
	c := outcome(check("r1", "a.mp4", "u/a", 1), ledger.VerifyMissing, 404, 5)
	c.Error, c.ContentType, c.ETag = "no\x00such\xffkey "+huge, "text/\x00html", huge
	save(t, v, c)
	got := fileVerifications(t, v, "r1")["a.mp4"]
	if !strings.HasPrefix(got.Error, "no\uFFFDsuch\uFFFDkey xxx") || len(got.Error) > 2048 || got.ContentType != "text/\uFFFDhtml" || len(got.ETag) > 512 {
		t.Errorf("hostile answer stored as error %.40q (%d bytes), type %q, etag of %d bytes", got.Error, len(got.Error), got.ContentType, len(got.ETag))
	}

	for _, bad := range []ledger.FileCheck{
		check("r2", "a\x00.mp4", "u/n", 1),
		check("r2", strings.Repeat("f", ledger.MaxFileNameBytes+1), "u/h", 1),
		check("r\x002", "b.mp4", "u/b", 1),
		check("r2", "bad\xff.mp4", "u/b", 1),
	} {
		err := v.QueueVerifications(ctx, []ledger.FileCheck{check("r2", "fine.mp4", "u/f", 1), bad}, 99)
		if !errors.Is(err, ledger.ErrUnstorable) {
			t.Errorf("QueueVerifications(%.30q/%.30q): %v, want ErrUnstorable", bad.RecordID, bad.FileName, err)
		}
		if ok, err := v.SaveVerification(ctx, bad); ok || err != nil {
			t.Errorf("SaveVerification(%.30q) = %v, %v; want not stored, no error", bad.FileName, ok, err)
		}
		if err := v.MarkAnnounced(ctx, bad); err != nil {
			t.Errorf("MarkAnnounced(%.30q): %v", bad.FileName, err)
		}
		if n, err := v.Recheck(ctx, ledger.RecheckFilter{RecordID: bad.RecordID, FileName: bad.FileName}, 1); n != 0 || err != nil {
			t.Errorf("Recheck(%.30q) = %d, %v; want 0", bad.FileName, n, err)
		}
	}
	cursorIs(t, v, 4) // a refused batch stores nothing and keeps the cursor
	if got := fileVerifications(t, v, "r2"); len(got) != 0 {
		t.Errorf("a refused batch stored %v", got)
	}
	for _, id := range []string{"r\x001", strings.Repeat("r", 100_000), "\xff"} {
		if got, err := v.FileVerifications(ctx, id); err != nil || len(got) != 0 {
			t.Errorf("FileVerifications(%.20q) = %v, %v; want empty", id, got, err)
		}
		if n, err := v.Recheck(ctx, ledger.RecheckFilter{RecordID: id}, 1); n != 0 || err != nil {
			t.Errorf("Recheck(%.20q) = %d, %v; want 0", id, n, err)
		}
	}
}

// testVerificationTaken: an outcome saved with TakenAt is stored only
// while the check is still due as it was taken; a re-check meanwhile (a
// new NextAt) refuses it, and the re-check's own check then stores.
func testVerificationTaken(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open()
	defer closeStore(t, s)
	v := verifications(t, s)
	const due = int64(1_800_000_000_000) // a real clock's milliseconds: past 32 bits
	a := check("r1", "a.mp4", "u/a", due)
	queue(t, v, 1, a, check("r1", "b.mp4", "u/b", due))
	taken, err := v.DueVerifications(ctx, due, 10)
	if err != nil || len(taken) != 2 {
		t.Fatalf("DueVerifications = %v, %v", taken, err)
	}
	if n, err := v.Recheck(ctx, ledger.RecheckFilter{RecordID: "r1", FileName: "a.mp4"}, due+5); err != nil || n != 1 {
		t.Fatalf("Recheck = %d, %v", n, err)
	}
	for _, c := range taken {
		out := outcome(c, ledger.VerifyMissing, 404, due+10)
		out.TakenAt = c.NextAt
		ok, err := v.SaveVerification(ctx, out)
		if want := c.FileName == "b.mp4"; err != nil || ok != want {
			t.Errorf("SaveVerification(%s, taken at %d) = %v, %v; want %v (a.mp4 was re-checked meanwhile)", c.FileName, c.NextAt, ok, err, want)
		}
	}
	if got := fileVerifications(t, v, "r1"); got["a.mp4"].State != ledger.VerifyPending || got["b.mp4"].State != ledger.VerifyMissing {
		t.Errorf("after the saves: %+v", got)
	}
	again, err := v.DueVerifications(ctx, due+5, 10)
	if err != nil || len(again) != 1 || again[0].FileName != "a.mp4" {
		t.Fatalf("due after the re-check = %v, %v; want a.mp4", again, err)
	}
	out := outcome(again[0], ledger.VerifyVerified, 200, due+20)
	out.TakenAt = again[0].NextAt
	save(t, v, out)
	if got := fileVerifications(t, v, "r1")["a.mp4"]; got.State != ledger.VerifyVerified {
		t.Errorf("the re-check's own outcome: %+v", got)
	}
}

// testVerificationDrop: DropVerification deletes the check it names, and
// only while it still has that URL (a newer upload's check stays); ids no
// store holds drop nothing, without a database error.
func testVerificationDrop(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open()
	defer closeStore(t, s)
	v := verifications(t, s)
	a, b := check("r1", "a.mp4", "u/a", 1), check("r1", "b.mp4", "u/b", 1)
	queue(t, v, 1, a, b, check("r2", "a.mp4", "u/2a", 1))
	if err := v.DropVerification(ctx, a); err != nil {
		t.Fatalf("DropVerification: %v", err)
	}
	got := fileVerifications(t, v, "r1")
	if _, ok := got["a.mp4"]; ok || len(got) != 1 {
		t.Errorf("after dropping a.mp4, r1's checks = %v; want b.mp4's only", got)
	}
	if got := fileVerifications(t, v, "r2"); len(got) != 1 {
		t.Errorf("dropping r1's a.mp4 took r2's: %v", got)
	}
	stale := check("r1", "b.mp4", "u/b-old", 1)
	if err := v.DropVerification(ctx, stale); err != nil {
		t.Fatalf("DropVerification under another URL: %v", err)
	}
	if got := fileVerifications(t, v, "r1"); len(got) != 1 {
		t.Errorf("a drop under a replaced URL took the newer check: %v", got)
	}
	for _, bad := range []ledger.FileCheck{check("r\x001", "b.mp4", "u/b", 1), check("r1", strings.Repeat("f", 100_000), "u/b", 1), check("r1", "\xff", "u/b", 1)} {
		if err := v.DropVerification(ctx, bad); err != nil {
			t.Errorf("DropVerification(%.20q/%.20q): %v", bad.RecordID, bad.FileName, err)
		}
	}
	if got := dueNames(t, v, 10, 10); !cmp.Equal(got, []string{"r1/b.mp4", "r2/a.mp4"}) {
		t.Errorf("due after the drops = %v", got)
	}
}

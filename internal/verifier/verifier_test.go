package verifier

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/storagecheck"
)

const secret = "X-Amz-Signature=SECRETSIG&X-Amz-Credential=AKIDSECRET"

func url(name string) string { return "https://bucket.s3.example.com/rec/" + name + "?" + secret }

func sizeOf(n int64) *int64 { return &n }

func answer(state storagecheck.State, status int, err string) storagecheck.Result {
	r := storagecheck.Result{State: state, HTTPStatus: status, CheckedAt: time.UnixMilli(1_800_000_000_000)}
	if err != "" {
		r.Err = errors.New(err)
	}
	return r
}

func transient(status int) storagecheck.Result {
	r := answer(storagecheck.Unreachable, status, fmt.Sprintf("https://bucket.s3.example.com/rec/x: answered %d", status))
	r.Transient = true
	return r
}

type harness struct {
	store *fakeStore
	ann   *fakeAnnouncer
	chk   *fakeChecker
	clock *clock
	v     *Verifier
	logs  *syncBuffer
	outs  map[string]int
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newHarness(t *testing.T, waits []time.Duration) *harness {
	t.Helper()
	h := &harness{store: newFakeStore(), ann: &fakeAnnouncer{}, chk: &fakeChecker{answers: map[string][]storagecheck.Result{}},
		clock: &clock{now: time.UnixMilli(1_800_000_000_000)}, logs: &syncBuffer{}, outs: map[string]int{}}
	var mu sync.Mutex
	h.v = New(Options{Store: h.store, Announcer: h.ann, Checker: h.chk, Waits: waits, Now: h.clock.Now, Workers: 3,
		Logger:      slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		IsNoFile:    func(err error) bool { return errors.Is(err, errNoFile) },
		IsNotLeader: func(err error) bool { return errors.Is(err, errNotLeader) },
		Checked:     func(o string, _ time.Duration) { mu.Lock(); h.outs[o]++; mu.Unlock() }})
	return h
}

func (h *harness) script(name string, rs ...storagecheck.Result) {
	h.chk.answers[storagecheck.Redact(url(name))] = rs
}

func (h *harness) pass(t *testing.T) {
	t.Helper()
	if _, err := h.v.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func (h *harness) state(t *testing.T, rec, file string) ledger.FileCheck {
	t.Helper()
	c, ok := h.store.check(rec, file)
	if !ok {
		t.Fatalf("no check of %s/%s", rec, file)
	}
	return c
}

// TestQueueCheckAnnounce: every successful upload in the feed, and only
// those, is checked once, and its outcome announced once: verified as
// file_verified, missing and size_mismatch as file_missing.
func TestQueueCheckAnnounce(t *testing.T) {
	h := newHarness(t, nil)
	h.store.other(ledger.Event{Type: 1, Code: 200, RecordID: "r1"}) // a start
	h.store.upload("r1", "a.mp4", url("a.mp4"), sizeOf(10))
	h.store.upload("r1", "b.mp4", url("b.mp4"), sizeOf(10))
	h.store.other(ledger.Event{Type: 4, Code: 500, RecordID: "r1", FileName: "f.mp4"})                  // a failed upload
	h.store.other(ledger.Event{Type: 4, Code: 200, RecordID: "r1", FileName: "a.mp4", Duplicate: true}) // a redelivery
	h.store.other(ledger.Event{Type: 4, Removed: true})                                                 // a tombstone
	h.store.upload("r2", "c.mp4", url("c.mp4"), sizeOf(10))
	h.store.other(ledger.Event{Type: 4, Code: 200, RecordID: "gone", FileName: "g.mp4"}) // its recording was removed
	size := int64(10)
	ok := answer(storagecheck.Verified, 200, "")
	ok.Size, ok.ETag, ok.ContentType = &size, `"etag"`, "video/mp4"
	h.script("a.mp4", ok)
	h.script("b.mp4", answer(storagecheck.Missing, 404, "https://bucket.s3.example.com/rec/b.mp4: 404"))
	h.script("c.mp4", answer(storagecheck.SizeMismatch, 200, "size 11, RC said 10"))
	h.pass(t)
	h.pass(t)
	if n := h.chk.askedCount(); n != 3 {
		t.Errorf("%d checks made, want 3: %q", n, h.chk.asked)
	}
	if h.store.cursor != int64(len(h.store.events)) {
		t.Errorf("cursor %d, want the feed's end %d", h.store.cursor, len(h.store.events))
	}
	got := h.ann.announcements()
	want := []struct {
		rec, file string
		t         delivery.Type
		state     ledger.VerificationState
	}{
		{"r1", "a.mp4", delivery.FileVerified, ledger.VerifyVerified},
		{"r1", "b.mp4", delivery.FileMissing, ledger.VerifyMissing},
		{"r2", "c.mp4", delivery.FileMissing, ledger.VerifySizeMismatch},
	}
	if len(got) != len(want) {
		t.Fatalf("announced %+v, want %d", got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.recordID != w.rec || g.file != w.file || g.t != w.t || g.v.State != w.state || g.v.Attempts != 1 || g.v.CheckedAt == nil {
			t.Errorf("announcement %d: %+v, want %+v", i, g, w)
		}
	}
	a := h.state(t, "r1", "a.mp4")
	if a.HTTPStatus == nil || *a.HTTPStatus != 200 || a.Size == nil || *a.Size != 10 || a.ETag != `"etag"` || a.ContentType != "video/mp4" ||
		a.NextAt != 0 || !a.Announced || a.URLHash != ledger.URLHash(url("a.mp4")) || a.AppKey != "app" {
		t.Errorf("stored check of a.mp4: %+v", a)
	}
	if b := h.state(t, "r1", "b.mp4"); b.Error == "" || !b.Announced {
		t.Errorf("stored check of b.mp4: %+v", b)
	}
	if h.outs["verified"] != 1 || h.outs["missing"] != 1 || h.outs["size_mismatch"] != 1 {
		t.Errorf("outcomes counted %v", h.outs)
	}
}

// TestRetriesWithBackoff: a transient failure keeps the check pending with
// the storage's last answer and makes it due after the schedule's wait,
// not before; after the last wait it is unreachable, announced as
// nothing.
func TestRetriesWithBackoff(t *testing.T) {
	h := newHarness(t, []time.Duration{30 * time.Second, 2 * time.Minute})
	h.store.upload("r", "flaky.mp4", url("flaky.mp4"), nil)
	h.store.upload("r", "down.mp4", url("down.mp4"), nil)
	h.script("flaky.mp4", transient(503), transient(503), answer(storagecheck.Verified, 200, ""))
	h.script("down.mp4", transient(503))
	t0 := h.clock.Now().UnixMilli()
	h.pass(t)
	for _, f := range []string{"flaky.mp4", "down.mp4"} {
		c := h.state(t, "r", f)
		if c.State != ledger.VerifyPending || c.Attempts != 1 || c.NextAt != t0+30_000 || c.HTTPStatus == nil || *c.HTTPStatus != 503 || c.Error == "" {
			t.Fatalf("%s after a 503: %+v (next at +%d ms)", f, c, c.NextAt-t0)
		}
	}
	h.clock.advance(30*time.Second - time.Millisecond)
	h.pass(t)
	if n := h.chk.askedCount(); n != 2 {
		t.Fatalf("%d checks before the wait was over, want 2", n)
	}
	h.clock.advance(time.Millisecond)
	h.pass(t)
	if n := h.chk.askedCount(); n != 4 {
		t.Fatalf("%d checks once the wait was over, want 4", n)
	}
	if c := h.state(t, "r", "flaky.mp4"); c.State != ledger.VerifyPending || c.Attempts != 2 || c.NextAt != h.clock.Now().UnixMilli()+120_000 {
		t.Fatalf("flaky after its second 503: %+v", c)
	}
	h.clock.advance(2 * time.Minute)
	h.pass(t)
	if c := h.state(t, "r", "flaky.mp4"); c.State != ledger.VerifyVerified || c.Attempts != 3 || c.NextAt != 0 || c.Error != "" {
		t.Errorf("flaky after the third check: %+v", c)
	}
	if c := h.state(t, "r", "down.mp4"); c.State != ledger.VerifyUnreachable || c.Attempts != 3 || c.NextAt != 0 || !c.Announced {
		t.Errorf("down after the retries ran out: %+v", c)
	}
	got := h.ann.announcements()
	if len(got) != 1 || got[0].file != "flaky.mp4" || got[0].t != delivery.FileVerified {
		t.Errorf("announced %+v, want flaky's file_verified only", got)
	}
	if h.outs["retry"] != 4 || h.outs["unreachable"] != 1 || h.outs["verified"] != 1 {
		t.Errorf("outcomes counted %v", h.outs)
	}
}

// TestStaleURL: a check whose file got another URL since it was queued
// is not made against the old URL: the new one is queued and checked.
func TestStaleURL(t *testing.T) {
	h := newHarness(t, nil)
	h.store.upload("r", "a.mp4", url("old/a.mp4"), nil)
	if _, err := h.v.queue(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.store.mu.Lock()
	h.store.states["r"].Files["a.mp4"] = ledger.FileState{URL: url("new/a.mp4")}
	h.store.mu.Unlock()
	h.script("old/a.mp4", answer(storagecheck.Missing, 404, "old"))
	h.script("new/a.mp4", answer(storagecheck.Verified, 200, ""))
	h.pass(t)
	h.pass(t)
	for _, u := range h.chk.asked {
		if strings.Contains(u, "/old/") {
			t.Errorf("the stale URL was checked: %s", storagecheck.Redact(u))
		}
	}
	if c := h.state(t, "r", "a.mp4"); c.State != ledger.VerifyVerified || c.URLHash != ledger.URLHash(url("new/a.mp4")) {
		t.Errorf("check after the URL changed: %+v", c)
	}
	if got := h.ann.announcements(); len(got) != 1 || got[0].t != delivery.FileVerified {
		t.Errorf("announced %+v", got)
	}
}

// TestHostNotListed: a host not on --storage-hosts makes the file
// unreachable, saying so in the operator's words, with no event.
func TestHostNotListed(t *testing.T) {
	h := newHarness(t, nil)
	h.store.upload("r", "a.mp4", url("a.mp4"), nil)
	r := answer(storagecheck.Unreachable, 0, "")
	r.Err = fmt.Errorf("https://bucket.s3.example.com/rec/a.mp4: %w", storagecheck.ErrNotAllowed)
	h.script("a.mp4", r)
	h.pass(t)
	c := h.state(t, "r", "a.mp4")
	if c.State != ledger.VerifyUnreachable || c.Error != "storage host not on --storage-hosts" || c.HTTPStatus != nil || !c.Announced || c.NextAt != 0 {
		t.Errorf("check of a URL off the list: %+v", c)
	}
	if got := h.ann.announcements(); len(got) != 0 {
		t.Errorf("announced %+v for an unreachable file", got)
	}
}

// TestAnnounceRetries: where the announcement fails because another
// instance projects, the outcome stays unannounced and the next pass
// announces it; a file removed meanwhile is marked without an event.
func TestAnnounceRetries(t *testing.T) {
	h := newHarness(t, nil)
	h.store.upload("r", "a.mp4", url("a.mp4"), nil)
	h.store.upload("r", "gone.mp4", url("gone.mp4"), nil)
	h.script("a.mp4", answer(storagecheck.Verified, 200, ""))
	h.script("gone.mp4", answer(storagecheck.Missing, 404, "gone"))
	h.ann.notLeader = 1
	h.pass(t)
	if c := h.state(t, "r", "a.mp4"); c.Announced || len(h.ann.announcements()) != 0 {
		t.Fatalf("after ErrNotLeader: %+v, announced %+v", c, h.ann.announcements())
	}
	h.pass(t)
	if c := h.state(t, "r", "a.mp4"); !c.Announced || len(h.ann.announcements()) != 1 {
		t.Fatalf("after the retry: %+v, announced %+v", c, h.ann.announcements())
	}
	if c := h.state(t, "r", "gone.mp4"); !c.Announced {
		t.Errorf("a removed file's outcome stays unannounced: %+v", c)
	}
	if h.chk.askedCount() != 2 {
		t.Errorf("%d checks, want 2: announcing again checks nothing again", h.chk.askedCount())
	}
}

// TestNoQueryString: no log line and no stored error holds a URL's query
// string, whatever the outcome.
func TestNoQueryString(t *testing.T) {
	h := newHarness(t, []time.Duration{time.Second})
	for i, r := range []storagecheck.Result{answer(storagecheck.Verified, 200, ""), answer(storagecheck.Missing, 404, storagecheck.Redact(url("1"))+": 404"),
		transient(503), answer(storagecheck.Unreachable, 403, "forbidden")} {
		name := fmt.Sprint(i)
		h.store.upload("r", name, url(name), nil)
		h.script(name, r)
	}
	h.store.failDue = errors.New("database is locked")
	if _, err := h.v.Pass(context.Background()); err == nil {
		t.Fatal("a failing store: no error")
	} else {
		h.v.report(err)
	}
	h.store.failDue = nil
	for range 3 {
		h.pass(t)
		h.v.report(nil)
		h.clock.advance(time.Minute)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "storage checked") || !strings.Contains(logs, "database is locked") {
		t.Fatalf("the test logged too little to mean anything:\n%s", logs)
	}
	for _, leak := range []string{"SECRETSIG", "AKIDSECRET", "X-Amz"} {
		if strings.Contains(logs, leak) {
			t.Errorf("a log line holds %q:\n%s", leak, logs)
		}
		for _, f := range []string{"0", "1", "2", "3"} {
			if c := h.state(t, "r", f); strings.Contains(c.Error, leak) {
				t.Errorf("stored error of %s holds %q: %s", f, leak, c.Error)
			}
		}
	}
}

// TestRunOnlyWhereProjecting: an instance that does not project checks
// nothing; once it projects, Run checks and announces, and returns when
// its context ends.
func TestRunOnlyWhereProjecting(t *testing.T) {
	h := newHarness(t, nil)
	h.v.o.Poll = time.Millisecond
	h.store.upload("r", "a.mp4", url("a.mp4"), nil)
	h.script("a.mp4", answer(storagecheck.Verified, 200, ""))
	h.ann.following = true
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.v.Run(ctx) }()
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10 s", what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	// Three polls asked whether this instance projects, and it did not:
	// nothing was read or checked.
	waitFor("three polls", func() bool { h.ann.mu.Lock(); defer h.ann.mu.Unlock(); return h.ann.asked >= 3 })
	if h.chk.askedCount() != 0 || h.store.cursor != 0 {
		t.Fatalf("a follower checked (%d checks, cursor %d)", h.chk.askedCount(), h.store.cursor)
	}
	h.ann.mu.Lock()
	h.ann.following = false
	h.ann.mu.Unlock()
	waitFor("the announcement", func() bool { return len(h.ann.announcements()) == 1 })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestRemovedMeanwhile: a check queued from a read of its recording just
// before Forget removed it (Forget deleted the checks it found, then this
// one was stored) is dropped when it comes due: nothing is asked of the
// storage, announced, or kept of an erased recording's file.
func TestRemovedMeanwhile(t *testing.T) {
	h := newHarness(t, nil)
	h.store.upload("r", "a.mp4", url("a.mp4"), nil)
	h.store.upload("keep", "b.mp4", url("b.mp4"), nil)
	if _, err := h.v.queue(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.store.mu.Lock()
	delete(h.store.states, "r") // forgotten after the queue read it
	h.store.mu.Unlock()
	h.script("b.mp4", answer(storagecheck.Verified, 200, ""))
	h.pass(t)
	if c, ok := h.store.check("r", "a.mp4"); ok {
		t.Errorf("the check of a removed recording's file is kept: %+v", c)
	}
	for _, u := range h.chk.asked {
		if strings.Contains(u, "a.mp4") {
			t.Errorf("a removed file was checked: %s", storagecheck.Redact(u))
		}
	}
	if c := h.state(t, "keep", "b.mp4"); c.State != ledger.VerifyVerified {
		t.Errorf("the other recording's check: %+v", c)
	}
	if got := h.ann.announcements(); len(got) != 1 || got[0].file != "b.mp4" {
		t.Errorf("announced %+v, want b.mp4's only", got)
	}
}

// TestNotHTTP: a file URL that is not http(s) is unreachable with words
// that say so, not "storage host not on --storage-hosts" (listing its host
// would change nothing); the real checker is used, so no request leaves.
func TestNotHTTP(t *testing.T) {
	h := newHarness(t, nil)
	hosts, err := storagecheck.ParseHosts("bucket.s3.example.com")
	if err != nil {
		t.Fatal(err)
	}
	h.v.o.Checker = storagecheck.New(storagecheck.Options{Hosts: hosts})
	h.store.upload("r", "a.mp4", "s3://bucket.s3.example.com/rec/a.mp4?"+secret, nil)
	h.pass(t)
	c := h.state(t, "r", "a.mp4")
	if c.State != ledger.VerifyUnreachable || strings.Contains(c.Error, "--storage-hosts") || !strings.Contains(c.Error, "not an http or https URL") || strings.Contains(c.Error, "SECRET") {
		t.Errorf("check of an s3:// URL: %+v", c)
	}
}

// recheckingChecker is the storage answering a check that began before the
// user asked for a re-check (say, before restoring the object): the re-check
// is asked while the check is in flight.
type recheckingChecker struct {
	inner   Checker
	recheck func()
	once    sync.Once
}

func (c *recheckingChecker) Check(ctx context.Context, fileURL string, size *int64) storagecheck.Result {
	r := c.inner.Check(ctx, fileURL, size)
	c.once.Do(c.recheck)
	return r
}

// TestRecheckDuringCheck: the outcome of a check begun before a re-check
// does not answer the re-check: the file stays pending and the next pass
// checks it again, and that outcome is the one kept and announced.
func TestRecheckDuringCheck(t *testing.T) {
	h := newHarness(t, nil)
	h.store.upload("r", "a.mp4", url("a.mp4"), nil)
	h.script("a.mp4", answer(storagecheck.Missing, 404, "not there yet"), answer(storagecheck.Verified, 200, ""))
	h.v.o.Checker = &recheckingChecker{inner: h.chk, recheck: func() {
		if _, err := h.store.Recheck(context.Background(), ledger.RecheckFilter{RecordID: "r"}, h.clock.Now().UnixMilli()); err != nil {
			t.Error(err)
		}
	}}
	if _, err := h.v.queue(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.clock.advance(time.Second) // the re-check is asked a second after the upload was queued
	h.pass(t)
	if c := h.state(t, "r", "a.mp4"); c.State != ledger.VerifyPending || c.NextAt == 0 {
		t.Fatalf("after a re-check during the check: %+v; want pending, due", c)
	}
	h.pass(t)
	if c := h.state(t, "r", "a.mp4"); c.State != ledger.VerifyVerified {
		t.Errorf("the re-check's own check: %+v", c)
	}
	if got := h.ann.announcements(); len(got) != 1 || got[0].t != delivery.FileVerified {
		t.Errorf("announced %+v, want file_verified only", got)
	}
}

// TestReuploadChecksAgain: RC reporting another upload of a file after its
// check found it missing (the storage was fixed, RC uploaded again, to the
// same URL) checks it again; a verified file, and an upload that arrived
// before the check ended, do not.
func TestReuploadChecksAgain(t *testing.T) {
	h := newHarness(t, nil)
	start := h.clock.Now().UnixMilli()
	h.store.arrival = start
	h.store.upload("r1", "a.mp4", url("a.mp4"), sizeOf(10))
	h.store.upload("r1", "b.mp4", url("b.mp4"), sizeOf(10))
	ok := answer(storagecheck.Verified, 200, "")
	h.script("a.mp4", answer(storagecheck.Missing, 404, "not there"), ok)
	h.script("b.mp4", ok, ok)
	h.pass(t)
	if a := h.state(t, "r1", "a.mp4"); a.State != ledger.VerifyMissing {
		t.Fatalf("a.mp4 after the first check: %+v", a)
	}
	// An upload that arrived before the check ended is what was checked.
	h.store.arrival = start - 1
	h.store.upload("r1", "a.mp4", url("a.mp4"), sizeOf(10))
	h.pass(t)
	if n := h.chk.askedCount(); n != 2 {
		t.Fatalf("%d checks after an older upload event, want 2", n)
	}
	// RC uploads both again, later.
	h.clock.advance(time.Minute)
	h.store.arrival = h.clock.Now().UnixMilli()
	h.store.upload("r1", "a.mp4", url("a.mp4"), sizeOf(10))
	h.store.upload("r1", "b.mp4", url("b.mp4"), sizeOf(10))
	h.pass(t)
	h.pass(t)
	if n := h.chk.askedCount(); n != 3 {
		t.Errorf("%d checks, want 3: a.mp4 once more, b.mp4 (verified) not", n)
	}
	if a := h.state(t, "r1", "a.mp4"); a.State != ledger.VerifyVerified || !a.Announced {
		t.Errorf("a.mp4 after its new upload: %+v", a)
	}
	if !strings.Contains(h.logs.String(), "uploaded again") {
		t.Errorf("no log line of the re-check:\n%s", h.logs)
	}
}

// TestSizeAfterCheckChecksAgain: a file verified before RC gave its size
// (the segment or end callback came after the upload's) is checked again
// when the size RC then gives is not the storage's; one whose size agrees
// is not.
func TestSizeAfterCheckChecksAgain(t *testing.T) {
	h := newHarness(t, nil)
	h.store.upload("r1", "c.mp4", url("c.mp4"), nil)
	h.store.upload("r1", "d.mp4", url("d.mp4"), nil)
	seven := answer(storagecheck.Verified, 200, "")
	seven.Size = sizeOf(7)
	h.script("c.mp4", seven, answer(storagecheck.SizeMismatch, 200, "size 7, RC said 10"))
	h.script("d.mp4", seven, seven)
	h.pass(t)
	if c := h.state(t, "r1", "c.mp4"); c.State != ledger.VerifyVerified {
		t.Fatalf("c.mp4 before RC's size: %+v", c)
	}
	h.store.mu.Lock()
	st := h.store.states["r1"]
	st.Files["c.mp4"] = ledger.FileState{URL: url("c.mp4"), Size: sizeOf(10)}
	st.Files["d.mp4"] = ledger.FileState{URL: url("d.mp4"), Size: sizeOf(7)}
	h.store.mu.Unlock()
	h.store.other(ledger.Event{Type: 2, Code: 200, RecordID: "r1", FileName: "c.mp4"})
	h.store.other(ledger.Event{Type: 3, Code: 200, RecordID: "r1", FileName: "d.mp4"})
	h.pass(t)
	h.pass(t)
	if n := h.chk.askedCount(); n != 3 {
		t.Errorf("%d checks, want 3: c.mp4 again, d.mp4 (sizes agree) not", n)
	}
	if c := h.state(t, "r1", "c.mp4"); c.State != ledger.VerifySizeMismatch {
		t.Errorf("c.mp4 after RC's size: %+v", c)
	}
}

package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/api"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/ledger/ledgertest"
	"github.com/recledger/recledger/internal/sqlitestore"
)

// fakeVerifier stands in for internal/verifier (wired by serve's
// --verify-storage): it takes the checks that come due and stores the
// outcome the test set for each file, until stopped.
type fakeVerifier struct {
	v        ledger.Verifications
	mu       sync.Mutex
	outcomes map[string]ledger.VerificationState // by file name
	paused   bool
}

func (f *fakeVerifier) set(name string, st ledger.VerificationState) {
	f.mu.Lock()
	f.outcomes[name] = st
	f.mu.Unlock()
}

func (f *fakeVerifier) pause(p bool) {
	f.mu.Lock()
	f.paused = p
	f.mu.Unlock()
}

func (f *fakeVerifier) run(ctx context.Context, t *testing.T) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		f.mu.Lock()
		paused := f.paused
		f.mu.Unlock()
		if paused {
			continue
		}
		due, err := f.v.DueVerifications(ctx, time.Now().UnixMilli(), 10)
		if err != nil {
			if ctx.Err() == nil {
				t.Errorf("fake verifier: %v", err)
			}
			return
		}
		for _, c := range due {
			f.mu.Lock()
			st := f.outcomes[c.FileName]
			f.mu.Unlock()
			status, at, sz := 200, time.Now().UnixMilli(), int64(1000+len(c.FileName))
			if st == ledger.VerifyMissing {
				status = 404
				c.Error = "the storage answered 404 Not Found"
			} else {
				c.Error = ""
			}
			c.State, c.HTTPStatus, c.CheckedAt, c.Size, c.NextAt = st, &status, &at, &sz, 0
			c.Attempts++
			if _, err := f.v.SaveVerification(ctx, c); err != nil && ctx.Err() == nil {
				t.Errorf("fake verifier: %v", err)
			}
		}
	}
}

// verifyingAPI serves the query API, storage verification on, over a
// SQLite store holding one recording of two uploaded files, each with a
// check: the first found missing, the second verified. serve does not turn
// verification on yet (the lead wires --verify-storage and the verifier):
// this server and fakeVerifier stand in for it.
func verifyingAPI(t *testing.T) (url string, f *fakeVerifier, files [2]string) {
	t.Helper()
	ctx := context.Background()
	s, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "r.db"), sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	at := time.Now().Add(-time.Hour)
	for i, cb := range ledgertest.Recording(t, "rec-verify", 2, false) {
		if _, err := s.Append(ctx, ledger.Incoming{Callback: cb, ReceivedAt: at.Add(time.Duration(i) * time.Millisecond)}); err != nil {
			t.Fatal(err)
		}
	}
	files = [2]string{"sess_room_u1_rec-verify_1.mp4", "sess_room_u1_rec-verify_2.mp4"}
	f = &fakeVerifier{v: s, outcomes: map[string]ledger.VerificationState{files[0]: ledger.VerifyMissing, files[1]: ledger.VerifyVerified}}
	var checks []ledger.FileCheck
	for _, name := range files {
		checks = append(checks, ledger.FileCheck{RecordID: "rec-verify", FileName: name, AppKey: "app", URLHash: ledger.URLHash("http://oss/" + name),
			Verification: ledger.Verification{State: ledger.VerifyPending}, NextAt: 1})
	}
	if err := s.QueueVerifications(ctx, checks, 1); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); f.run(runCtx, t) }()
	t.Cleanup(func() { stop(); <-done })
	mux := http.NewServeMux()
	api.New(s, api.Options{VerifyStorage: true}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	// The first checks done: each file in the state set for it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := s.FileVerifications(ctx, "rec-verify")
		if err != nil {
			t.Fatal(err)
		}
		if got[files[0]].State == ledger.VerifyMissing && got[files[1]].State == ledger.VerifyVerified {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fake verifier did not check: %v", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return srv.URL, f, files
}

func verifyReport(t *testing.T, args ...string) VerifyReport {
	t.Helper()
	out, stderr, code := runBinary(t, "", append([]string{"files", "verify", "--json"}, args...)...)
	var r VerifyReport
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil {
		t.Fatalf("files verify %v (exit %d): %s%s", args, code, out, stderr)
	}
	return r
}

func states(r VerifyReport) map[string]ledger.VerificationState {
	out := map[string]ledger.VerificationState{}
	for _, f := range r.Files {
		if f.Verification != nil {
			out[f.FileName] = f.Verification.State
		}
	}
	return out
}

// TestFilesVerify runs `recledger files verify` against the query API:
// each selector posts its re-check, waits for the checks to finish and
// prints their outcome; --wait 0 prints them pending; the show commands
// carry the verification.
func TestFilesVerify(t *testing.T) {
	server, f, files := verifyingAPI(t)

	// The storage found the first file since: --recording checks both.
	f.set(files[0], ledger.VerifyVerified)
	f.set(files[1], ledger.VerifyMissing)
	r := verifyReport(t, "--recording", "rec-ver", "--server", server) // the start of the recordId
	want := map[string]ledger.VerificationState{files[0]: ledger.VerifyVerified, files[1]: ledger.VerifyMissing}
	if r.Queued != 2 || r.Pending != 0 || len(r.Files) != 2 || !equalStates(states(r), want) {
		t.Errorf("verify --recording: %+v, want 2 queued, none pending, %v", r, want)
	}

	// --all-missing: only the second, missing, file.
	f.set(files[1], ledger.VerifyVerified)
	r = verifyReport(t, "--all-missing", "--server", server)
	if r.Queued != 1 || r.Pending != 0 || len(r.Files) != 1 || r.Files[0].FileName != files[1] || r.Files[0].Verification.State != ledger.VerifyVerified {
		t.Errorf("verify --all-missing: %+v, want %s queued and verified", r, files[1])
	}

	// By name, as a table.
	f.set(files[0], ledger.VerifyMissing)
	out, stderr, code := runBinary(t, "", "files", "verify", files[0], "--utc", "--server", server)
	row := regexp.MustCompile(regexp.QuoteMeta(files[0]) + `\s+rec-verify\s+missing\s+404\s+\S+ (KiB|B)\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+00:00 \(\d+s ago\)\s+the storage answered 404 Not Found\n`)
	if code != 0 || !strings.HasPrefix(out, "FILE ") || !row.MatchString(out) || !strings.Contains(stderr, "queued 1 checks") {
		t.Errorf("files verify NAME (exit %d):\n%s%s", code, out, stderr)
	}

	// --wait 0: queued, and printed pending, the check not made yet.
	f.pause(true)
	r = verifyReport(t, files[1], "--wait", "0", "--server", server)
	if r.Queued != 1 || r.Pending != 1 || states(r)[files[1]] != ledger.VerifyPending {
		t.Errorf("verify --wait 0: %+v, want it queued and pending", r)
	}
	// A short wait ends with the check still pending, and says so.
	out, stderr, code = runBinary(t, "", "files", "verify", files[1], "--wait", "1s", "--server", server)
	if code != 0 || !strings.Contains(out, "pending") || !strings.Contains(stderr, "1 still pending after 1s") {
		t.Errorf("verify --wait 1s while nothing checks (exit %d):\n%s%s", code, out, stderr)
	}
	f.pause(false)
	r = verifyReport(t, files[1], "--server", server)
	if r.Pending != 0 || states(r)[files[1]] != ledger.VerifyVerified {
		t.Errorf("verify after the pause: %+v", r)
	}

	// recordings show and files show carry it; ls filters by it.
	out, _, code = runBinary(t, "", "recordings", "show", "rec-verify", "--server", server)
	if code != 0 || !regexp.MustCompile(regexp.QuoteMeta(files[0])+`\s+\S+\s+\S+ K?i?B\s+uploaded\s+missing \(404\)\s+\d{4}-`).MatchString(out) ||
		!strings.Contains(out, "STORAGE ERRORS\n"+files[0]+": the storage answered 404 Not Found") {
		t.Errorf("recordings show (exit %d):\n%s", code, out)
	}
	out, _, code = runBinary(t, "", "files", "show", files[0], "--server", server)
	if code != 0 || !regexp.MustCompile(`storage\s+missing\n`).MatchString(out) || !regexp.MustCompile(`storage http\s+404\n`).MatchString(out) ||
		!regexp.MustCompile(`storage checked\s+\d{4}-`).MatchString(out) {
		t.Errorf("files show (exit %d):\n%s", code, out)
	}
	for st, want := range map[string]string{"missing": "rec-verify\n", "verified": "rec-verify\n", "unreachable": ""} {
		out, stderr, code := runBinary(t, "", "recordings", "ls", "--verification", st, "-o", "ids", "--server", server)
		if code != 0 || out != want {
			t.Errorf("recordings ls --verification %s (exit %d): %q%s, want %q", st, code, out, stderr, want)
		}
	}

	// Refusals.
	for _, tt := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{}, 1, "name one of"},
		{[]string{files[0], "--all-missing"}, 1, "name one of"},
		{[]string{"--recording", "rec-verify", "--wait", "-1s"}, 1, "--wait"},
		{[]string{"nope.mp4"}, exitNotFound, "not found"},
		{[]string{"--recording", "nope"}, exitNotFound, "not found"},
	} {
		_, stderr, code := runBinary(t, "", append(append([]string{"files", "verify"}, tt.args...), "--server", server)...)
		if code != tt.code || !strings.Contains(stderr, tt.stderr) {
			t.Errorf("files verify %v: exit %d %s, want %d and %q", tt.args, code, stderr, tt.code, tt.stderr)
		}
	}
	_, stderr, code = runBinary(t, "", "recordings", "ls", "--verification", "lost", "--server", server)
	if code != 1 || !strings.Contains(stderr, "--verification: want missing") {
		t.Errorf("recordings ls --verification lost: exit %d %s", code, stderr)
	}
}

func equalStates(a, b map[string]ledger.VerificationState) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestFilesVerifyWhenOff: a real serve, without storage verification,
// answers the re-check that verification is off, and its reads take the
// verification filter.
func TestFilesVerifyWhenOff(t *testing.T) {
	srv := startServer(t, t.TempDir(), "--app", testApp+"="+testSecret)
	server := "http://" + srv.addr
	srv.postSeeds(t, "type1-start.json", "type3-end.json", "type4-upload.json")
	const id, name = "8329208b99410743dcfeb80548e2c0ec", "lSA2G6CUf9A-6nnoNwXCx8_111_222_1530027865231.mp4"
	for _, args := range [][]string{{name}, {"--recording", id}, {"--all-missing"}} {
		_, stderr, code := runBinary(t, "", append(append([]string{"files", "verify"}, args...), "--server", server)...)
		if code != 1 || !strings.Contains(stderr, "storage verification is off") || !strings.Contains(stderr, "--verify-storage") {
			t.Errorf("files verify %v against a server without verification: exit %d %s", args, code, stderr)
		}
	}
	out, stderr, code := runBinary(t, "", "recordings", "ls", "--verification", "missing", "--json", "--server", server)
	if code != 0 || !strings.Contains(out, `"items": []`) {
		t.Errorf("recordings ls --verification missing (exit %d): %s%s", code, out, stderr)
	}
	out, _, code = runBinary(t, "", "recordings", "show", id, "--server", server)
	if code != 0 || !regexp.MustCompile(regexp.QuoteMeta(name)+`\s+\S+\s+\S+ K?i?B\s+uploaded\s+-\s+-\s+http`).MatchString(out) {
		t.Errorf("recordings show without checks (exit %d):\n%s", code, out)
	}
}

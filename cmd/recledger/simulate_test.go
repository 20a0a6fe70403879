package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/api"
	"github.com/recledger/recledger/internal/simulator"
)

// TestSimulateRunsDoNotCollide runs the README's `simulate --verify` twice
// against one server on each backend: every run makes recordings of its
// own, so both verify clean. Then a seeded run twice: the second is a
// redelivery of the first (the same recordings, byte for byte), and it
// verifies clean too.
func TestSimulateRunsDoNotCollide(t *testing.T) {
	backends := map[string]func(t *testing.T) []string{
		"sqlite":   func(*testing.T) []string { return nil },
		"postgres": func(t *testing.T) []string { return []string{"--db", postgresURL(t)} },
	}
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			srv := startServer(t, t.TempDir(), append(backends[name](t), "--app", testApp+"="+testSecret)...)
			simulate := func(extra ...string) {
				t.Helper()
				args := append([]string{"simulate", "--to", "http://" + srv.addr + "/v1/callbacks/recording", "--app", testApp + "=" + testSecret,
					"--recordings", "25", "--upload-failures", "0.2", "--faults", "all=0.05", "--verify"}, extra...)
				out, stderr, code := runBinary(t, "", args...)
				if code != 0 || !strings.Contains(out, "verify: 25 recordings match") {
					t.Fatalf("simulate %v: exit %d\n%s%s", extra, code, out, stderr)
				}
			}
			simulate()
			simulate()
			simulate("--seed", "5")
			simulate("--seed", "5")
			var list api.RecordingList
			apiGet(t, srv.addr, "", "/v1/recordings?limit=500", &list)
			if len(list.Items) != 75 {
				t.Errorf("after two fresh runs and a seeded run twice, of 25 recordings each: %d recordings, want 75", len(list.Items))
			}
		})
	}
}

// printedCallback is one line of `simulate --print jsonl`.
type printedCallback struct {
	At   time.Time
	Body struct {
		Timestamp int64
		RecordID  string
		Output    struct{ FileName string }
	}
}

func printScenario(t *testing.T, extra ...string) []printedCallback {
	t.Helper()
	args := append([]string{"simulate", "--app", testApp + "=" + testSecret, "--recordings", "20", "--print", "jsonl"}, extra...)
	out, stderr, code := runBinary(t, "", args...)
	if code != 0 {
		t.Fatalf("simulate %v: exit %d\n%s", extra, code, stderr)
	}
	var cbs []printedCallback
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var c printedCallback
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("%v: %s", err, sc.Text())
		}
		cbs = append(cbs, c)
	}
	if len(cbs) < 40 {
		t.Fatalf("simulate %v printed %d callbacks for 20 recordings", extra, len(cbs))
	}
	return cbs
}

// TestSimulateSeedRepeatsARun: without --seed two runs share no recordId;
// with the same --seed they are the same callbacks, timestamps and file
// names included.
func TestSimulateSeedRepeatsARun(t *testing.T) {
	ids := func(cbs []printedCallback) map[string]bool {
		out := map[string]bool{}
		for _, c := range cbs {
			out[c.Body.RecordID] = true
		}
		return out
	}
	first, second := ids(printScenario(t)), ids(printScenario(t))
	for id := range first {
		if second[id] {
			t.Errorf("two runs without --seed both made recording %s", id)
		}
	}
	a, b := printScenario(t, "--seed", "5"), printScenario(t, "--seed", "5")
	if len(a) != len(b) {
		t.Fatalf("--seed 5 printed %d callbacks, then %d", len(a), len(b))
	}
	for i := range a {
		if a[i].Body != b[i].Body || !a[i].At.Equal(b[i].At) {
			t.Fatalf("--seed 5, callback %d: %+v, then %+v", i, a[i], b[i])
		}
	}
}

// TestSimulateNeverInTheFuture: without --speed a run does not wait for
// simulated time, so it must not tell of anything after now: every
// callback's timestamp is at most the time the command finished.
func TestSimulateNeverInTheFuture(t *testing.T) {
	for _, extra := range [][]string{nil, {"--seed", "9"}, {"--faults", "all=0.2"}} {
		cbs := printScenario(t, extra...)
		now := time.Now().UnixMilli()
		latest := int64(0)
		for _, c := range cbs {
			latest = max(latest, c.Body.Timestamp)
		}
		if latest > now {
			t.Errorf("simulate %v: a callback's timestamp is %s, after the run ended at %s", extra,
				time.UnixMilli(latest).UTC(), time.UnixMilli(now).UTC())
		}
	}
}

// TestVerifyOutputIsCapped runs --verify against a receiver that takes
// every callback and then knows none of them: 30 mismatches print as the
// first 20 and a count of the rest by kind.
func TestVerifyOutputIsCapped(t *testing.T) {
	stub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			http.NotFound(w, r)
		}
	}))
	defer stub.Close()
	out, stderr, code := runBinary(t, "", "simulate", "--to", stub.URL+"/v1/callbacks/recording", "--app", testApp+"="+testSecret,
		"--recordings", "30", "--verify")
	if code == 0 {
		t.Fatalf("verify against a receiver that shows nothing passed:\n%s", out)
	}
	if n := strings.Count(out, "MISMATCH "); n != 20 {
		t.Errorf("%d MISMATCH lines, want the first 20:\n%s", n, out)
	}
	if want := "... and 10 more; 30 mismatches in 30 recordings by kind: answer ×30\n"; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	if want := "verify: 30 mismatches in 30 of 30 recordings"; !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
}

// TestPrintMismatches checks the summary's counts by kind, most frequent
// first, under and over the cap.
func TestPrintMismatches(t *testing.T) {
	var ms []simulator.Mismatch
	for i := range 3 {
		ms = append(ms, simulator.Mismatch{RecordID: fmt.Sprintf("r%d", i), Kind: "file not acknowledged", Detail: "file x is shown but was never acknowledged"})
		if i < 1 {
			ms = append(ms, simulator.Mismatch{RecordID: fmt.Sprintf("r%d", i), Kind: "status", Detail: "status is ended, want complete"})
		}
	}
	const (
		line0 = "MISMATCH r0: file x is shown but was never acknowledged\n"
		line1 = "MISMATCH r0: status is ended, want complete\n"
		line2 = "MISMATCH r1: file x is shown but was never acknowledged\n"
		line3 = "MISMATCH r2: file x is shown but was never acknowledged\n"
		kinds = "4 mismatches in 3 recordings by kind: file not acknowledged ×3, status ×1\n"
	)
	for _, tt := range []struct {
		limit int
		want  string
	}{
		{2, line0 + line1 + "... and 2 more; " + kinds},
		{4, line0 + line1 + line2 + line3 + kinds},
		{5, line0 + line1 + line2 + line3 + kinds},
	} {
		var b strings.Builder
		if n := printMismatches(&b, ms, tt.limit); n != 3 {
			t.Errorf("limit %d: %d recordings affected, want 3", tt.limit, n)
		}
		if got := b.String(); got != tt.want {
			t.Errorf("limit %d:\n%s\nwant\n%s", tt.limit, got, tt.want)
		}
	}
}

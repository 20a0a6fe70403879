package simulator

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The golden answers in testdata/oracle are what recledger must answer for
// handScenario with storage verification on, read at goldenDate with a
// MaxOpen of an hour. Their base fields come from Expect; the findings
// and verification states were written by hand from issue 16's rules, the
// verifications' status, size, type and ETag from the storage's answers.
const goldenDir = "testdata/oracle"

// goldenDate is the server's clock in the canned answers: 3 h after the
// recordings were first seen (firstSeenAt 1_800_000_000_000).
var goldenDate = time.UnixMilli(1_800_000_000_000 + 3*3_600_000)

type cannedAPI struct {
	answers  map[string]map[string]any // by recordId
	date     time.Time
	findings bool // takes ?finding=
}

func loadGolden(t *testing.T) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, rec := range handScenario() {
		b, err := os.ReadFile(goldenDir + "/" + rec.RecordID + ".json")
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", rec.RecordID, err)
		}
		out[rec.RecordID] = m
	}
	return out
}

func (c *cannedAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Date", c.date.UTC().Format(http.TimeFormat))
	if r.URL.Path == "/v1/recordings" {
		if !c.findings && r.URL.Query().Has("finding") {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":{"code":"unknown_parameter","message":"unknown query parameter \"finding\""}}`))
			return
		}
		w.Write([]byte(`{"items":[]}`))
		return
	}
	a, ok := c.answers[strings.TrimPrefix(r.URL.Path, "/v1/recordings/")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	json.NewEncoder(w).Encode(a)
}

// verifyCanned runs the oracle over handScenario, every callback
// acknowledged, against the canned answers.
func verifyCanned(t *testing.T, api *cannedAPI) VerifyResult {
	t.Helper()
	srv := httptest.NewServer(api)
	defer srv.Close()
	recs := handScenario()
	acked := map[string][]Callback{}
	for _, rec := range recs {
		acked[rec.RecordID] = rec.Callbacks("app")
	}
	res, err := VerifyWith(context.Background(), VerifyOptions{Server: srv.URL, Storage: NewStorage(recs), MaxOpen: time.Hour}, recs, acked)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestOracleAcceptsTheGoldenAnswers: the answers written from the rules
// match, with the findings and states counted.
func TestOracleAcceptsTheGoldenAnswers(t *testing.T) {
	res := verifyCanned(t, &cannedAPI{answers: loadGolden(t), date: goldenDate, findings: true})
	for _, m := range res.Mismatches {
		t.Errorf("MISMATCH %s (%s)", m, m.Kind)
	}
	if !res.FindingsChecked || res.Pending != 0 || res.Undecided != 0 {
		t.Errorf("checked %v, pending %d, undecided %d", res.FindingsChecked, res.Pending, res.Undecided)
	}
	if want := map[string]int{"segment_gap": 2, "missing_files": 1, "not_ended": 1, "stalled": 1}; !cmp.Equal(res.Findings, want) {
		t.Errorf("findings counted %v, want %v", res.Findings, want)
	}
	if want := map[string]int{"verified": 8, "size_mismatch": 1, "missing": 1}; !cmp.Equal(res.Verifications, want) {
		t.Errorf("verifications counted %v, want %v", res.Verifications, want)
	}
}

// TestOracleWithoutFindings: a server that refuses ?finding= predates
// findings, and none are checked.
func TestOracleWithoutFindings(t *testing.T) {
	answers := loadGolden(t)
	for _, a := range answers {
		delete(a, "findings")
	}
	res := verifyCanned(t, &cannedAPI{answers: answers, date: goldenDate})
	if res.FindingsChecked || len(res.Mismatches) != 0 {
		t.Errorf("checked %v, mismatches %v; want neither", res.FindingsChecked, res.Mismatches)
	}
}

// file returns the i-th file of a canned answer.
func file(a map[string]any, i int) map[string]any { return a["files"].([]any)[i].(map[string]any) }

func findings(a map[string]any) []any {
	f, _ := a["findings"].([]any)
	return f
}

// TestOracleCatchesWrongAnswers breaks one thing in the golden answers at
// a time, each a mistake a server could make, and wants the oracle to
// name it.
func TestOracleCatchesWrongAnswers(t *testing.T) {
	for _, tt := range []struct {
		name    string
		breakIt func(a map[string]map[string]any)
		date    time.Time
		want    []string // the mismatches' kinds, in order
		pending int
	}{
		{"a missing_files not shown", func(a map[string]map[string]any) { a["gap"]["findings"] = findings(a["gap"])[:1] }, goldenDate,
			[]string{"finding not shown"}, 0},
		{"missing_files within the 5 s slack", func(a map[string]map[string]any) {
			a["slack"]["findings"] = append(findings(a["slack"]), map[string]any{"kind": "missing_files", "evidence": map[string]any{"expected": 4, "got": 3}})
		}, goldenDate, []string{"finding not expected"}, 0},
		{"a gap's evidence", func(a map[string]map[string]any) {
			findings(a["gap"])[0].(map[string]any)["evidence"].(map[string]any)["limitMs"] = 3_600_000
		}, goldenDate, []string{"finding evidence"}, 0},
		{"a gap between other files", func(a map[string]map[string]any) {
			findings(a["slack"])[0].(map[string]any)["evidence"].(map[string]any)["after"] = "sessslack_room-slack_1700000000000.mp4"
		}, goldenDate, []string{"finding not expected", "finding not shown"}, 0},
		{"a finding twice", func(a map[string]map[string]any) {
			a["slack"]["findings"] = append(findings(a["slack"]), findings(a["slack"])[0])
		}, goldenDate,
			[]string{"finding twice"}, 0},
		{"findings on a failed recording", func(a map[string]map[string]any) { a["failed"]["findings"] = findings(a["gap"]) }, goldenDate,
			[]string{"finding not expected", "finding not expected"}, 0},
		{"not_ended not shown", func(a map[string]map[string]any) { a["open"]["findings"] = findings(a["open"])[1:] }, goldenDate,
			[]string{"finding not shown"}, 0},
		{"not_ended since the wrong time", func(a map[string]map[string]any) {
			findings(a["open"])[0].(map[string]any)["evidence"].(map[string]any)["since"] = 1_800_000_060_000
		}, goldenDate, []string{"finding evidence"}, 0},
		{"not_ended and stalled too early", func(map[string]map[string]any) {}, goldenDate.Add(-2*time.Hour - time.Minute),
			[]string{"finding not expected", "finding not expected"}, 0},
		{"a wrong-size file verified", func(a map[string]map[string]any) {
			file(a["gap"], 1)["verification"].(map[string]any)["state"] = "verified"
		}, goldenDate,
			[]string{"verification state"}, 0},
		{"an absent file verified", func(a map[string]map[string]any) {
			file(a["gap"], 2)["verification"] = file(a["gap"], 0)["verification"]
		}, goldenDate,
			[]string{"verification state"}, 0},
		{"a good file missing", func(a map[string]map[string]any) {
			file(a["slack"], 1)["verification"] = file(a["gap"], 2)["verification"]
		}, goldenDate,
			[]string{"verification state"}, 0},
		{"unreachable", func(a map[string]map[string]any) {
			file(a["slack"], 0)["verification"] = map[string]any{"state": "unreachable", "error": "storage host not on --storage-hosts"}
		}, goldenDate, []string{"verification state"}, 0},
		{"still pending", func(a map[string]map[string]any) {
			file(a["slack"], 0)["verification"] = map[string]any{"state": "pending"}
			file(a["failed"], 2)["verification"] = map[string]any{"state": "pending"}
		}, goldenDate, []string{"verification pending", "verification pending"}, 2},
		{"an uploaded file without verification", func(a map[string]map[string]any) { delete(file(a["open"], 0), "verification") }, goldenDate,
			[]string{"verification missing"}, 0},
		{"verification of a file never uploaded", func(a map[string]map[string]any) {
			file(a["open"], 1)["verification"] = file(a["open"], 0)["verification"]
		}, goldenDate,
			[]string{"verification not uploaded"}, 0},
		{"another object's ETag and size", func(a map[string]map[string]any) {
			v := file(a["slack"], 2)["verification"].(map[string]any)
			v["etag"], v["size"] = `"0"`, 4001
		}, goldenDate, []string{"verification size", "verification etag"}, 0},
		{"the ranged GET's status", func(a map[string]map[string]any) {
			file(a["failed"], 2)["verification"].(map[string]any)["httpStatus"] = 200
		}, goldenDate,
			[]string{"verification httpStatus"}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			answers := loadGolden(t)
			tt.breakIt(answers)
			res := verifyCanned(t, &cannedAPI{answers: answers, date: tt.date, findings: true})
			var kinds []string
			for _, m := range res.Mismatches {
				kinds = append(kinds, m.Kind)
			}
			if !slices.Equal(kinds, tt.want) || res.Pending != tt.pending {
				t.Errorf("mismatches %v (pending %d), want kinds %v (pending %d)", res.Mismatches, res.Pending, tt.want, tt.pending)
			}
		})
	}
}

// TestOracleClockEdges: near a clock limit the oracle accepts the finding
// shown or not and says it is undecided; a second later it decides.
func TestOracleClockEdges(t *testing.T) {
	// The server's clock (Date, whole seconds) exactly at firstSeenAt +
	// MaxOpen: now may be up to a second later, past the limit.
	edge := time.UnixMilli(1_800_000_000_000 + 3_600_000)
	for _, shownOrNot := range []bool{true, false} {
		answers := loadGolden(t)
		answers["open"]["findings"] = findings(answers["open"])[:0]
		if shownOrNot {
			answers["open"]["findings"] = findings(loadGolden(t)["open"])[:1] // not_ended; stalled is an hour away
		}
		res := verifyCanned(t, &cannedAPI{answers: answers, date: edge, findings: true})
		if len(res.Mismatches) != 0 || res.Undecided != 1 {
			t.Errorf("not_ended shown %v at the edge: mismatches %v, undecided %d; want none and 1", shownOrNot, res.Mismatches, res.Undecided)
		}
		res = verifyCanned(t, &cannedAPI{answers: answers, date: edge.Add(2 * time.Second), findings: true})
		if (len(res.Mismatches) == 0) != shownOrNot || res.Undecided != 0 {
			t.Errorf("not_ended shown %v 2 s past the edge: mismatches %v, undecided %d", shownOrNot, res.Mismatches, res.Undecided)
		}
	}
}

// TestOracleSizeKnownAfterTheCheck: when the upload was acknowledged
// before the callback giving the size, a wrong-size file may have been
// checked without RC's size and show verified; size_mismatch still
// passes, and another state does not.
func TestOracleSizeKnownAfterTheCheck(t *testing.T) {
	recs := handScenario()
	gap := recs[0]
	cbs := gap.Callbacks("app")
	var upload, segment int
	for i, c := range cbs {
		if c.FileName == gap.Files[1].Name {
			if c.Type == 2 {
				segment = i
			} else {
				upload = i
			}
		}
	}
	cbs[upload], cbs[segment] = cbs[segment], cbs[upload]
	st := NewStorage(recs)
	want, err := Expect(cbs)
	if err != nil {
		t.Fatal(err)
	}
	for state, ok := range map[string]bool{"verified": true, "size_mismatch": true, "missing": false} {
		var got shown
		b, _ := json.Marshal(loadGolden(t)["gap"])
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		got.Files[1].Verification.State = state
		ms, _ := compareVerification(st, want, got, cbs, map[string]int{})
		if (len(ms) == 0) != ok {
			t.Errorf("size known after the upload, state %s: mismatches %v", state, ms)
		}
		ms, _ = compareVerification(st, want, got, gap.Callbacks("app"), map[string]int{})
		if (len(ms) == 0) != (state == "size_mismatch") {
			t.Errorf("size known before the upload, state %s: mismatches %v", state, ms)
		}
	}
}

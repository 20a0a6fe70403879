package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/ledger/ledgertest"
)

// userBodies are the callbacks of a recording of user, as RC would send
// them for testApp.
func userBodies(t *testing.T, recordID, user string, segments int) [][]byte {
	t.Helper()
	var out [][]byte
	for _, cb := range ledgertest.UserRecording(t, recordID, user, segments) {
		out = append(out, bytes.ReplaceAll(cb.Raw, []byte(`"appKey":"app"`), []byte(`"appKey":"`+testApp+`"`)))
	}
	return out
}

func postAll(t *testing.T, addr string, bodies [][]byte) {
	t.Helper()
	for _, b := range bodies {
		if status, err := postSigned(addr, b); err != nil || status != 200 {
			t.Fatalf("callback: %d, %v", status, err)
		}
	}
}

// postRefused posts body unsigned: refused 401 and quarantined.
func postRefused(t *testing.T, addr string, body []byte) {
	t.Helper()
	resp, err := testClient.Post("http://"+addr+"/v1/callbacks/recording", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("unsigned callback: %d, want 401", resp.StatusCode)
	}
}

// bearer sends a request with the token and returns the status and body.
func bearer(t *testing.T, method, addr, token, path string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+addr+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// metricValue is the value of the series line that starts with series.
func metricValue(t *testing.T, text, series string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no series %s in /metrics", series)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// feedOf reads the whole feed and checks it is gapless; it returns how
// many tombstones it holds and the recordIds it names.
func feedOf(t *testing.T, addr, token string) (tombstones int, named map[string]bool) {
	t.Helper()
	var page struct{ Items []ledger.Event }
	apiGet(t, addr, token, "/v1/events?limit=1000", &page)
	named = map[string]bool{}
	for i, e := range page.Items {
		if e.Seq != int64(i+1) {
			t.Fatalf("feed: event %d has seq %d: a gap", i, e.Seq)
		}
		if e.Removed {
			tombstones++
			if e.TypeName != "removed" || e.Body != nil && string(e.Body) != "null" {
				t.Errorf("tombstone %d: %+v", e.Seq, e)
			}
		}
		named[e.RecordID] = true
	}
	// A cursor on a tombstone still reads on.
	for _, e := range page.Items {
		if e.Removed {
			var next struct{ Items []ledger.Event }
			apiGet(t, addr, token, "/v1/events?after="+strconv.FormatInt(e.Seq, 10)+"&limit=1", &next)
			if len(next.Items) > 0 && next.Items[0].Seq != e.Seq+1 {
				t.Errorf("after tombstone %d the feed goes on at %d", e.Seq, next.Items[0].Seq)
			}
			break
		}
	}
	return tombstones, named
}

// TestEraseEndToEnd runs the guide's erasure against a real server: the
// person's recordings, files, log bodies and quarantined requests go, the
// other user's stay, the feed keeps its seqs, metrics and the log say
// what happened without the id, and no byte of the id is left in the data
// directory once the server stopped.
func TestEraseEndToEnd(t *testing.T) {
	dir := t.TempDir()
	const token = "erase-test-token-0123456789"
	const gone, kept = "u-erase-5c1e9a", "u-keep-77d0b2"
	srv := startServer(t, dir, "--app", testApp+"="+testSecret, "--api-token", token)
	goneRows := 0
	for i, id := range []string{"er-gone-1", "er-kept-1", "er-gone-2"} {
		user := []string{gone, kept, gone}[i]
		bodies := userBodies(t, id, user, 2)
		postAll(t, srv.addr, bodies)
		if user == gone {
			goneRows += len(bodies)
		}
	}
	postRefused(t, srv.addr, []byte(`{"type":1,"appKey":"`+testApp+`","recordId":"x","userId":"`+gone+`"}`))
	if status, _ := bearer(t, http.MethodDelete, srv.addr, "", "/v1/users/"+gone); status != 401 {
		t.Errorf("DELETE without the token: %d, want 401", status)
	}

	out := runOpsScript(t, "erase-user", dir, 60*time.Second,
		"RECLEDGER_SERVER=http://"+srv.addr, "RECLEDGER_API_TOKEN="+token, "USER_ID="+gone)
	if !strings.Contains(out, "erased: 2 recordings, 4 files, "+strconv.Itoa(goneRows)+" log rows") || !strings.Contains(out, "1 quarantine rows") {
		t.Errorf("erase printed %q", out)
	}
	var list struct{ Items []ledger.Recording }
	apiGet(t, srv.addr, token, "/v1/recordings?userId="+gone, &list)
	if len(list.Items) != 0 {
		t.Errorf("the erased user still has %d recordings", len(list.Items))
	}
	apiGet(t, srv.addr, token, "/v1/recordings?userId="+kept, &list)
	if len(list.Items) != 1 {
		t.Errorf("the kept user has %d recordings, want 1", len(list.Items))
	}
	tombstones, named := feedOf(t, srv.addr, token)
	if tombstones != goneRows || named["er-gone-1"] || named["er-gone-2"] || !named["er-kept-1"] {
		t.Errorf("feed: %d tombstones (want %d), names %v", tombstones, goneRows, named)
	}
	// The tombstones read as such where people look at the feed: the
	// dashboard's latest callbacks and events tail, not as an empty link
	// or a code 0.
	_, page := bearer(t, http.MethodGet, srv.addr, token, "/")
	if !bytes.Contains(page, []byte("removed by retention or erasure")) || bytes.Contains(page, []byte(`href="/recordings/"`)) {
		t.Errorf("the overview's latest callbacks do not show the tombstones as removed:\n%s", page)
	}
	tail, _, code := runCmd(t, "", []string{"RECLEDGER_SERVER=http://" + srv.addr, "RECLEDGER_API_TOKEN=" + token}, "events", "tail", "--utc")
	removedRows := 0
	for _, line := range strings.Split(tail, "\n") {
		if strings.Contains(line, " removed ") {
			removedRows++
			if f := strings.Fields(line); !strings.HasSuffix(line, "removed by retention or erasure") || slices.Contains(f, "0") {
				t.Errorf("events tail shows a tombstone as %q", line)
			}
		}
	}
	if code != 0 || removedRows != goneRows {
		t.Errorf("events tail: exit %d, %d tombstone rows, want %d:\n%s", code, removedRows, goneRows, tail)
	}
	_, q := bearer(t, http.MethodGet, srv.addr, token, "/v1/quarantine")
	if bytes.Contains(q, []byte(gone)) {
		t.Errorf("the quarantine still names the user: %s", q)
	}
	_, m := bearer(t, http.MethodGet, srv.addr, token, "/metrics")
	if got := metricValue(t, string(m), `recledger_removed_recordings_total{reason="erasure"}`); got != 2 {
		t.Errorf("removed recordings by erasure: %v, want 2", got)
	}
	if got := metricValue(t, string(m), `recledger_erasures_total`); got != 1 {
		t.Errorf("erasures: %v, want 1", got)
	}
	again, _, code := runCmd(t, "", []string{"RECLEDGER_SERVER=http://" + srv.addr, "RECLEDGER_API_TOKEN=" + token},
		"erase", "--user", gone, "--json")
	var counts map[string]int64
	if err := json.Unmarshal([]byte(again), &counts); code != 0 || err != nil || counts["recordings"] != 0 || counts["logRows"] != 0 {
		t.Errorf("erasing again: exit %d, %q", code, again)
	}

	srv.stop(t)
	logs := srv.logs.String()
	if !strings.Contains(logs, "erased a user's data") || strings.Contains(logs, gone) {
		t.Errorf("the log should say an erasure happened, without the id:\n%s", logs)
	}
	var all []byte
	files, err := os.ReadDir(filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, "data", f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(gone)) {
			t.Errorf("%s still holds the erased id", f.Name())
		}
		all = append(all, b...)
	}
	if !bytes.Contains(all, []byte(kept)) {
		t.Errorf("the data directory holds the kept id nowhere: the scan finds nothing")
	}
}

// TestRetentionEndToEnd starts the server as the guide does, with the
// limits shortened: an old recording and an old refused request go, the
// callbacks posted meanwhile are all answered 200, the feed keeps its
// seqs and the metrics move.
func TestRetentionEndToEnd(t *testing.T) {
	words := shellWords(t, opsBlock(t, "serve-retention"))
	if len(words) < 2 || words[0] != "recledger" || words[1] != "serve" {
		t.Fatalf("serve-retention is not a recledger serve line: %q", words)
	}
	dir := t.TempDir()
	const token = "retention-test-token-0123456789"
	args := append(words[2:], "--app", testApp+"="+testSecret, "--api-token", token,
		"--retain", "2s", "--quarantine-retain", "2s", "--retain-every", "100ms") // later flags win
	srv := startServer(t, dir, args...)
	old := userBodies(t, "ret-old", "someone", 1)
	postAll(t, srv.addr, old)
	postRefused(t, srv.addr, []byte(`{"type":1}`))
	live := userBodies(t, "ret-live", "someone", 40)
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; ; i++ {
		postAll(t, srv.addr, live[i%len(live):i%len(live)+1]) // ingest keeps answering 200
		status, _ := bearer(t, http.MethodGet, srv.addr, token, "/v1/recordings/ret-old")
		_, q := bearer(t, http.MethodGet, srv.addr, token, "/v1/quarantine")
		if status == 404 && bytes.Contains(q, []byte(`"items":[]`)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("retention did not remove the old recording and request within 60 s (status %d, quarantine %s)\n%s", status, q, srv.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	tombstones, named := feedOf(t, srv.addr, token)
	if tombstones < len(old) || named["ret-old"] {
		t.Errorf("feed: %d tombstones, want at least %d; names ret-old: %v", tombstones, len(old), named["ret-old"])
	}
	_, m := bearer(t, http.MethodGet, srv.addr, token, "/metrics")
	if got := metricValue(t, string(m), `recledger_removed_recordings_total{reason="retention"}`); got < 1 {
		t.Errorf("removed recordings by retention: %v, want at least 1", got)
	}
	if got := metricValue(t, string(m), `recledger_removed_log_rows_total{reason="retention"}`); got < float64(len(old)) {
		t.Errorf("tombstoned log rows by retention: %v, want at least %d", got, len(old))
	}
	if got := metricValue(t, string(m), `recledger_removed_quarantine_rows_total{reason="retention"}`); got < 1 {
		t.Errorf("quarantine rows removed by retention: %v, want at least 1", got)
	}
	if got := metricValue(t, string(m), `recledger_retention_last_run_timestamp_seconds`); got <= 0 {
		t.Errorf("last retention run: %v", got)
	}
	srv.stop(t)
}

// TestParseRetention: days, Go durations, and off.
func TestParseRetention(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90d", 90 * 24 * time.Hour, true}, {"2160h", 2160 * time.Hour, true}, {"1500ms", 1500 * time.Millisecond, true},
		{"0", 0, true}, {"off", 0, true}, {"", 0, true},
		{"-1h", 0, false}, {"1.5d", 0, false}, {"d", 0, false}, {"99999d", 0, false}, {"soon", 0, false}, {"-3d", 0, false},
	} {
		got, err := parseRetention(tt.in)
		if (err == nil) != tt.ok || tt.ok && got != tt.want {
			t.Errorf("parseRetention(%q) = %v, %v; want %v (ok %v)", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

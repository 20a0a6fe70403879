package main

import (
	"encoding/json"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/recledger/recledger/internal/api"
)

// TestFindingsEndToEnd: under --max-recording-length a recording whose
// end never came has the not_ended finding: recordings ls --finding lists
// it, recordings show names it with its evidence, /metrics counts it, and
// the callback lag of the configured app is observed.
func TestFindingsEndToEnd(t *testing.T) {
	srv := startServer(t, t.TempDir(), "--app", testApp+"="+testSecret, "--max-recording-length", "1ms")
	server := "http://" + srv.addr
	srv.postSeeds(t, "type1-start.json")
	const id = "8329208b99410743dcfeb80548e2c0ec"
	// (Each runBinary below starts a process: far more than the 1 ms the
	// setting allows has passed by the time it asks.)

	var list api.RecordingList
	out, stderr, code := runBinary(t, "", "recordings", "ls", "--finding", "not_ended", "--json", "--server", server)
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list.Items) != 1 || list.Items[0].RecordID != id ||
		len(list.Items[0].Findings) == 0 || list.Items[0].Findings[0].Kind != "not_ended" {
		t.Errorf("recordings ls --finding not_ended (exit %d): %s%s", code, out, stderr)
	}
	out, _, code = runBinary(t, "", "recordings", "ls", "--finding", "segment_gap", "-o", "ids", "--server", server)
	if code != 0 || out != "" {
		t.Errorf("recordings ls --finding segment_gap (exit %d): %q, want nothing", code, out)
	}
	_, stderr, code = runBinary(t, "", "recordings", "ls", "--finding", "gap", "--server", server)
	if code != exitError || !strings.Contains(stderr, "--finding") {
		t.Errorf("recordings ls --finding gap: exit %d, %q; want an error naming --finding", code, stderr)
	}
	out, _, code = runBinary(t, "", "recordings", "show", id, "--utc", "--server", server)
	if code != 0 || !regexp.MustCompile(`\nFINDINGS\nKIND +FINDING +EVIDENCE\nnot_ended +no end callback .* \(limit 1ms\) +since \d{4}-\d\d-\d\d .*, limit 1ms\n`).MatchString(out) {
		t.Errorf("recordings show (exit %d):\n%s", code, out)
	}

	scrape(t, server, `recledger_recordings_with_findings{kind="not_ended"} 1`, `recledger_recordings_with_findings{kind="segment_gap"} 0`,
		`recledger_callback_lag_seconds_count{app="`+testApp+`"} 1`, `recledger_upload_lag_seconds_count 0`)

	// The end and the upload come: the finding is gone, the upload lag known.
	srv.postSeeds(t, "type3-end.json", "type4-upload.json")
	out, _, code = runBinary(t, "", "recordings", "ls", "--finding", "any", "-o", "ids", "--server", server)
	if code != 0 || out != "" {
		t.Errorf("recordings ls --finding any after the end (exit %d): %q, want nothing", code, out)
	}
	out, _, code = runBinary(t, "", "recordings", "show", id, "--server", server)
	if code != 0 || strings.Contains(out, "FINDINGS") || !regexp.MustCompile(`\nupload lag +\S+ after the end \(RC's clock\)\n`).MatchString(out) {
		t.Errorf("recordings show after the end (exit %d):\n%s", code, out)
	}
	scrape(t, server, `recledger_recordings_with_findings{kind="not_ended"} 0`, `recledger_callback_lag_seconds_count{app="`+testApp+`"} 3`,
		`recledger_upload_lag_seconds_count 1`)
}

// scrape reads /metrics and checks it holds each of want.
func scrape(t *testing.T, server string, want ...string) {
	t.Helper()
	resp, err := testClient.Get(server + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, w := range want {
		if !strings.Contains(string(b), w) {
			t.Errorf("/metrics lacks %s", w)
		}
	}
}

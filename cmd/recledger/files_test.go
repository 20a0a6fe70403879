package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/recledger/recledger/internal/ledger"
)

// TestFilesLs runs `recledger files ls` against a server holding RC's seed
// recording: its filters reach GET /v1/files, --json prints an empty list
// as [], the table shows times under internal/display's rule, and the
// server's 400 comes back as an error naming the parameter.
func TestFilesLs(t *testing.T) {
	srv := startServer(t, t.TempDir(), "--app", testApp+"="+testSecret)
	server := "http://" + srv.addr
	srv.postSeeds(t, "type1-start.json", "type3-end.json")
	const id, name = "8329208b99410743dcfeb80548e2c0ec", "lSA2G6CUf9A-6nnoNwXCx8_111_222_1530027865231.mp4"

	var list struct {
		Items      []ledger.ListedFile
		NextCursor string
	}
	out, stderr, code := runBinary(t, "", "files", "ls", "--upload-state", "not_uploaded", "--room", "111", "--app-key", "your_appkey", "--since", "87600h", "--json", "--server", server)
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list.Items) != 1 || list.Items[0].RecordID != id ||
		list.Items[0].FileName != name || list.Items[0].RoomID != "111" || list.Items[0].UploadStatus != ledger.UploadStatusPending {
		t.Errorf("files ls --json (exit %d): %s%s", code, out, stderr)
	}
	for _, args := range [][]string{
		{"--upload-state", "uploaded"}, {"--room", "elsewhere"}, {"--app-key", "other"}, {"--until", "1"},
	} {
		out, stderr, code := runBinary(t, "", append(append([]string{"files", "ls"}, args...), "--json", "--server", server)...)
		if code != 0 || !strings.Contains(out, `"items": []`) {
			t.Errorf("files ls %v --json (exit %d): %s%s, want an empty items array", args, code, out, stderr)
		}
	}

	out, _, code = runBinary(t, "", "files", "ls", "--utc", "--server", server)
	row := regexp.MustCompile(regexp.QuoteMeta(name) + `\s+` + id + `\s+111\s+pending\s+333 B\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+00:00\n`)
	if code != 0 || !strings.HasPrefix(out, "FILE ") || !row.MatchString(out) {
		t.Errorf("files ls --utc (exit %d):\n%s", code, out)
	}

	// The list conventions of recordings ls: ids for xargs, rows without
	// the header, the next page's hint on stderr.
	out, _, code = runBinary(t, "", "files", "ls", "-o", "ids", "--server", server)
	if code != 0 || out != name+"\n" {
		t.Errorf("files ls -o ids (exit %d): %q, want the file name alone", code, out)
	}
	out, _, code = runBinary(t, "", "files", "ls", "--no-headers", "--server", server)
	if code != 0 || strings.Contains(out, "FILE ") || !strings.Contains(out, name) {
		t.Errorf("files ls --no-headers (exit %d):\n%s", code, out)
	}
	second := []byte(strings.ReplaceAll(strings.ReplaceAll(string(mustRead(t, "type2-segment.json")), id, "second-recording"), "_1530027865231", "_1530027999999"))
	if status, err := postSigned(srv.addr, second); err != nil || status != 200 {
		t.Fatalf("second recording's segment: %d, %v", status, err)
	}
	out, stderr, code = runBinary(t, "", "files", "ls", "--limit", "1", "--server", server)
	if code != 0 || strings.Contains(out, "more:") || !strings.Contains(stderr, "more: --cursor ") {
		t.Errorf("files ls --limit 1 (exit %d): stdout %q, stderr %q; want the cursor hint on stderr only", code, out, stderr)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--upload-state", "partial"}, "--upload-state"},
		{[]string{"--room", "a\xffb"}, "--room: invalid UTF-8"},
		{[]string{"--app-key", "a\x1b[2Jb"}, "--app-key: control character U+001B"},
		{[]string{"--cursor", "nope"}, "--cursor"},
		{[]string{"--limit", "501"}, "--limit"},
		{[]string{"--since", "yesterday"}, "--since"},
	} {
		_, stderr, code := runBinary(t, "", append(append([]string{"files", "ls"}, tt.args...), "--server", server)...)
		if code != exitError || !strings.Contains(stderr, tt.want) {
			t.Errorf("files ls %q: exit %d, stderr %.300q; want exit %d naming %s", tt.args, code, stderr, exitError, tt.want)
		}
	}
}

func mustRead(t *testing.T, seed string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "rc", "testdata", "seed", seed))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

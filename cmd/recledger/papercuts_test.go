package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCLIRefusalsOffline: what the CLI answers before it reaches a server,
// or when there is none.
func TestCLIRefusalsOffline(t *testing.T) {
	for _, tt := range []struct {
		args []string
		code int
		want string // in stderr
	}{
		{[]string{"recordings", "lss"}, exitError, `unknown command "lss" for "recledger recordings"; did you mean "ls"?`},
		{[]string{"destinations", "shwo", "x"}, exitError, `did you mean "show"?`},
		{[]string{"files", "lss", "--room", "x", "--server", "http://127.0.0.1:1"}, exitError, `unknown command "lss" for "recledger files"; did you mean "ls"?`},
		{[]string{"sevre"}, exitError, "Did you mean this?\n\tserve"},
		{[]string{"recordings", "ls", "--mode", "mixed", "--server", "http://127.0.0.1:1"}, exitError, `--mode: "mixed": want single-audio-video, single-video`},
		{[]string{"recordings", "ls", "--since", "yesterday", "--server", "http://127.0.0.1:1"}, exitError, `--since: "yesterday": want a duration (2h), a date (2026-11-29)`},
		{[]string{"recordings", "ls", "-o", "yaml", "--server", "http://127.0.0.1:1"}, exitError, `--output "yaml": want table, ids or json`},
		{[]string{"recordings", "ls", "--server", "http://127.0.0.1:1"}, exitError, "connection refused: is `recledger serve` running?"},
	} {
		_, stderr, code := runBinary(t, "", tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d and %q", strings.Join(tt.args, " "), code, stderr, tt.code, tt.want)
		}
	}
}

// TestCLIHelp: flag help shows defaults; migrate and replay list only the
// settings they use.
func TestCLIHelp(t *testing.T) {
	for _, tt := range []struct {
		args          []string
		want, wantNot []string
	}{
		{[]string{"serve", "--help"}, []string{`--addr string`, `(default "127.0.0.1:8080")`, `(default "sqlite:./data/recledger.db")`,
			`(default "5m0s")`, `(default "info")`, "SIGHUP"}, nil},
		{[]string{"recordings", "ls", "--help"}, []string{`(default "http://127.0.0.1:8080")`, "--utc", "--no-headers", "-o, --output",
			"overdue    the end came over 25 h ago", "ended      the end was seen"}, nil},
		{[]string{"migrate", "--help"}, []string{"--db", "--config", "--sqlite-synchronous"},
			[]string{"--app ", "--api-token", "--webhook", "--addr", "--max-streams", "--insecure-skip-signature"}},
		{[]string{"replay", "--help"}, []string{"--db", "--config"},
			[]string{"--app ", "--api-token", "--webhook", "--addr", "--trusted-proxies", "--allow-private-destinations"}},
	} {
		out, stderr, code := runBinary(t, "", tt.args...)
		if code != 0 {
			t.Errorf("%v: exit %d: %s", tt.args, code, stderr)
		}
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v lacks %q:\n%s", tt.args, w, out)
			}
		}
		for _, w := range tt.wantNot {
			if strings.Contains(out, w) {
				t.Errorf("%v lists %q, which it does not use:\n%s", tt.args, w, out)
			}
		}
	}
}

// TestDBBarePath: --db takes a file path without sqlite:.
func TestDBBarePath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	out, stderr, code := runBinary(t, "", "migrate", "--db", path)
	if code != 0 || !strings.Contains(out, "schema version") {
		t.Fatalf("migrate --db %s: exit %d: %s%s", path, code, out, stderr)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("no SQLite file at the bare path: %v", err)
	}
}

// TestServePortTakenCreatesNoDatabase: serve listens before it opens the
// store, so a taken port leaves no database behind.
func TestServePortTakenCreatesNoDatabase(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	_, stderr, code := runBinaryEnv(t, []string{"RECLEDGER_CONFIG=", "RECLEDGER_APPS="}, "serve", "--addr", ln.Addr().String(),
		"--db", "sqlite:"+filepath.Join(dir, "data", "recledger.db"))
	if code != exitError || !strings.Contains(stderr, "listen") {
		t.Errorf("serve on a taken port: exit %d, %q; want 1 and a listen error", code, stderr)
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Errorf("serve on a taken port left %v behind", entries)
	}
}

// TestServeLogNamesItsBackendOnly: the start line names SQLite's setting
// only when SQLite is in use.
func TestServeLogNamesItsBackendOnly(t *testing.T) {
	srv := startServer(t, t.TempDir())
	srv.stop(t)
	if !strings.Contains(srv.logs.String(), `"sqlite_synchronous":"full"`) {
		t.Errorf("SQLite's start line lacks sqlite_synchronous:\n%s", srv.logs)
	}
	srv = startServer(t, t.TempDir(), "--db", postgresURL(t))
	srv.stop(t)
	if logs := srv.logs.String(); strings.Contains(logs, "sqlite") {
		t.Errorf("PostgreSQL's start line names SQLite settings:\n%s", logs)
	}
}

// TestCLIQueries: the list and show commands against a server with a token
// and three recordings, two of whose ids start alike.
func TestCLIQueries(t *testing.T) {
	const token = "tok-0123456789abcdef"
	srv := startServer(t, t.TempDir(), "--app", testApp+"="+testSecret, "--api-token", token)
	srv.postSeeds(t, "type1-start.json", "type3-end.json")
	const seedID = "8329208b99410743dcfeb80548e2c0ec"
	twin := "8329" + strings.Repeat("f", 28)
	for _, id := range []string{twin, "abcd" + strings.Repeat("0", 28)} {
		body := fmt.Sprintf(`{"timestamp":%d,"type":1,"appKey":"your_appkey","recordId":%q,"roomId":"r2","sessionId":"s2","userId":"u","mode":3,"code":200}`,
			time.Now().UnixMilli(), id)
		if status, err := postSigned(srv.addr, []byte(body)); err != nil || status != 200 {
			t.Fatalf("post %s: %d %v", id, status, err)
		}
	}
	server := "http://" + srv.addr
	shanghai := []string{"TZ=Asia/Shanghai"}
	for _, tt := range []struct {
		name         string
		env          []string
		args         []string
		code         int
		stdout       []string // each in stdout
		stdoutNot    []string
		stderr       string
		exactStdout  string // when set, stdout is exactly this
		withoutToken bool
	}{
		{name: "unique prefix", args: []string{"recordings", "show", "8329208b"}, stdout: []string{seedID}},
		{name: "ambiguous prefix", args: []string{"recordings", "show", "8329"}, code: exitError, stderr: `"8329" starts 2 recordIds: `},
		{name: "unknown prefix", args: []string{"recordings", "show", "zzzz"}, code: exitNotFound, stderr: "not found"},
		{name: "401 names --api-token", args: []string{"recordings", "ls"}, withoutToken: true, code: exitError, stderr: "--api-token"},
		{name: "bad flag value named", args: []string{"recordings", "ls", "--status", "done"}, code: exitError, stderr: "--status: want recording"},
		{name: "cursor hint on stderr", args: []string{"recordings", "ls", "--limit", "1"}, stdoutNot: []string{"more:"}, stderr: "more: --cursor "},
		{name: "no headers", args: []string{"recordings", "ls", "--no-headers"}, stdout: []string{seedID}, stdoutNot: []string{"RECORD ID"}},
		{name: "ids", args: []string{"recordings", "ls", "-o", "ids", "--mode", "mix-audio-video"},
			exactStdout: "abcd" + strings.Repeat("0", 28) + "\n" + twin + "\n"},
		{name: "mode by name", args: []string{"recordings", "ls", "--mode", "single-video"}, stdout: []string{seedID}, stdoutNot: []string{twin}},
		// RC's seed started at 2018-06-26 15:44:25 UTC.
		{name: "since a UTC time", args: []string{"recordings", "ls", "-o", "ids", "--utc", "--since", "2018-06-26 15:44", "--until", "2018-06-27"},
			exactStdout: seedID + "\n"},
		{name: "since a later UTC time", args: []string{"recordings", "ls", "-o", "ids", "--utc", "--since", "2018-06-26 15:45", "--until", "2018-06-27"},
			exactStdout: ""},
		{name: "since a local time", env: shanghai, args: []string{"recordings", "ls", "-o", "ids", "--since", "2018-06-26 23:44", "--until", "2018-06-27"},
			exactStdout: seedID + "\n"},
		{name: "since a later local time", env: shanghai, args: []string{"recordings", "ls", "-o", "ids", "--since", "2018-06-26 23:45:00", "--until", "2018-06-27"},
			exactStdout: ""},
		{name: "quarantine ids", args: []string{"quarantine", "ls", "-o", "ids"}, exactStdout: ""},
		{name: "events ids", args: []string{"events", "tail", "-o", "ids", "-n", "2"}, exactStdout: "3\n4\n"},
	} {
		args := append(tt.args, "--server", server)
		if !tt.withoutToken {
			args = append(args, "--api-token", token)
		}
		env := append([]string{"RECLEDGER_API_TOKEN="}, tt.env...)
		out, stderr, code := runBinaryEnv(t, env, args...)
		if code != tt.code || !strings.Contains(stderr, tt.stderr) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and %q", tt.name, code, stderr, tt.code, tt.stderr)
		}
		for _, w := range tt.stdout {
			if !strings.Contains(out, w) {
				t.Errorf("%s: stdout lacks %q:\n%s", tt.name, w, out)
			}
		}
		for _, w := range tt.stdoutNot {
			if strings.Contains(out, w) {
				t.Errorf("%s: stdout holds %q:\n%s", tt.name, w, out)
			}
		}
		if tt.exactStdout != "" || strings.Contains(tt.name, "later") || strings.HasSuffix(tt.name, "quarantine ids") {
			if out != tt.exactStdout {
				t.Errorf("%s: stdout %q, want %q", tt.name, out, tt.exactStdout)
			}
		}
	}
}

// TestEventsTailFollowAligned: rows that arrive after the header line up
// under it.
func TestEventsTailFollowAligned(t *testing.T) {
	srv := startServer(t, t.TempDir(), "--app", testApp+"="+testSecret)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), "events", "tail", "-f", "--server", "http://"+srv.addr)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func() string {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("events tail -f ended")
			}
			return l
		case <-ctx.Done():
			t.Fatal("events tail -f printed nothing more")
		}
		return ""
	}
	header := next()
	rows := []string{}
	for i, body := range []string{
		`{"timestamp":1530027865231,"type":1,"appKey":"your_appkey","recordId":"8329208b99410743dcfeb80548e2c0ec","roomId":"111","sessionId":"s","mode":3,"code":200}`,
		`{"timestamp":1530027865232,"type":4,"appKey":"your_appkey","recordId":"8329208b99410743dcfeb80548e2c0ec","roomId":"111","sessionId":"s","mode":3,"code":500,"errorMessage":"storage refused","output":{"fileName":"lSA2G6CUf9A-6nnoNwXCx8_111_1530027865231.mp4"}}`,
	} {
		if status, err := postSigned(srv.addr, []byte(body)); err != nil || status != 200 {
			t.Fatalf("post %d: %d %v", i, status, err)
		}
		rows = append(rows, next())
	}
	var starts []int
	for i := 1; i < len(header); i++ {
		if header[i-1] == ' ' && header[i] != ' ' && (i < 2 || header[i-2] == ' ') {
			starts = append(starts, i)
		}
	}
	if len(starts) != 7 {
		t.Fatalf("header %q: %d column starts, want 7", header, len(starts))
	}
	for _, row := range rows {
		for _, s := range starts[:len(starts)-1] { // NOTE may be empty
			if len(row) <= s || row[s-1] != ' ' || row[s] == ' ' {
				t.Errorf("row not under the header:\n%s\n%s", header, row)
				break
			}
		}
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	cst := time.FixedZone("CST", 8*3600)
	for _, tt := range []struct {
		in   string
		loc  *time.Location
		want time.Time
	}{
		{"2h", time.UTC, now.Add(-2 * time.Hour)},
		{"2026-11-29", time.UTC, time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)},
		{"2026-11-29", cst, time.Date(2026, 11, 29, 0, 0, 0, 0, cst)},
		{"2026-11-29 10:00", cst, time.Date(2026, 11, 29, 10, 0, 0, 0, cst)},
		{"2026-11-29 10:00:30", time.UTC, time.Date(2026, 11, 29, 10, 0, 30, 0, time.UTC)},
		{"2026-11-29T10:00:00+08:00", time.UTC, time.Date(2026, 11, 29, 10, 0, 0, 0, cst)},
		{"1764410400000", cst, time.UnixMilli(1764410400000)},
	} {
		got, err := parseTime(tt.in, now, tt.loc)
		if err != nil || got != tt.want.UnixMilli() {
			t.Errorf("parseTime(%q, %s) = %d, %v; want %d", tt.in, tt.loc, got, err, tt.want.UnixMilli())
		}
	}
	for _, bad := range []string{"", "yesterday", "2026-13-01", "-5"} {
		if _, err := parseTime(bad, now, time.UTC); err == nil {
			t.Errorf("parseTime(%q) = nil error", bad)
		}
	}
}

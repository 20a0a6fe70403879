package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/logbody"
	"github.com/recledger/recledger/internal/sqlitestore"
	"github.com/recledger/recledger/rc"
)

// server is a running `recledger serve` child process.
type server struct {
	cmd  *exec.Cmd
	addr string
	logs *syncBuffer
	done chan error
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

// startServer runs the built binary on 127.0.0.1:0 with its data in dir and
// waits for its "listening" log line.
func startServer(t *testing.T, dir string, args ...string) *server {
	t.Helper()
	args = append([]string{"serve", "--addr", "127.0.0.1:0", "--db", "sqlite:" + filepath.Join(dir, "data", "recledger.db"),
		"--log-format", "json"}, args...)
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(os.Environ(), "RECLEDGER_APPS=", "RECLEDGER_CONFIG=")
	return startProcess(t, cmd)
}

// startProcess starts cmd, a serve logging JSON, and waits for its
// "listening" log line; the process is killed at cleanup if still running.
func startProcess(t *testing.T, cmd *exec.Cmd) *server {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, logs: &syncBuffer{}, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			s.logs.Write([]byte(line + "\n"))
			var entry struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "listening" {
				addr <- entry.Addr
			}
		}
		s.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-s.done
		}
	})
	select {
	case s.addr = <-addr:
	case err := <-s.done:
		t.Fatalf("server exited before listening: %v\n%s", err, s.logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("server did not listen within 30 s:\n%s", s.logs)
	}
	return s
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("server exited with %v after SIGTERM:\n%s", err, s.logs)
		}
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		t.Fatalf("server did not stop within 30 s of SIGTERM:\n%s", s.logs)
	}
}

func (s *server) kill(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

var testClient = &http.Client{Timeout: 10 * time.Second}

// postSigned sends body signed for testApp and returns the status.
func postSigned(addr string, body []byte) (int, error) {
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/callbacks/recording", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	s := rc.Signer{AppKey: testApp, Secret: testSecret}
	s.Apply(req, s.Sign())
	resp, err := testClient.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// postSeeds posts RC's seed examples, signed, and requires a 200 for each.
func (s *server) postSeeds(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		body, err := os.ReadFile(filepath.Join("..", "..", "rc", "testdata", "seed", name))
		if err != nil {
			t.Fatal(err)
		}
		if status, err := postSigned(s.addr, body); err != nil || status != 200 {
			t.Fatalf("%s: %d, %v\n%s", name, status, err, s.logs)
		}
	}
}

func openStoreAt(t *testing.T, dir string) *sqlitestore.Store {
	t.Helper()
	s, err := sqlitestore.Open(context.Background(), filepath.Join(dir, "data", "recledger.db"), sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestServeEndToEnd posts RC's four seed examples, signed, to the real
// server, restarts it, and reads the recording, its file and URL back.
func TestServeEndToEnd(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, "--app", testApp+"="+testSecret)
	srv.postSeeds(t, "type1-start.json", "type2-segment.json", "type3-end.json", "type4-upload.json")
	resp, err := testClient.Get("http://" + srv.addr + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	// Read back through the query API right after the 200s.
	resp, err = testClient.Get("http://" + srv.addr + "/v1/files/lSA2G6CUf9A-6nnoNwXCx8_111_222_1530027865231.mp4")
	if err != nil {
		t.Fatal(err)
	}
	var f ledger.File
	json.NewDecoder(resp.Body).Decode(&f)
	resp.Body.Close()
	if resp.StatusCode != 200 || f.RecordID != "8329208b99410743dcfeb80548e2c0ec" || f.FileURL == nil || *f.FileURL != "http://oss/record/XXXXXXXX.mp4?abc" {
		t.Errorf("GET /v1/files: %d %+v", resp.StatusCode, f)
	}
	resp, err = testClient.Get("http://" + srv.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metricsText, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`recledger_callbacks_total{outcome="stored",type="start"} 1`,
		`recledger_callbacks_total{outcome="stored",type="upload"} 1`,
		`recledger_recordings{status="complete"} 1`,
		`recledger_recording_uploads{state="complete"} 1`,
		`recledger_files_pending_upload 0`,
		`recledger_ingest_seconds_count 4`,
		`recledger_commit_batch_size_count`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(metricsText), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	srv.stop(t)
	if logs := srv.logs.String(); strings.Contains(logs, testSecret) || !strings.Contains(logs, `"msg":"stopped"`) {
		t.Errorf("logs hold the secret or lack the clean stop:\n%s", logs)
	}

	srv = startServer(t, dir, "--app", testApp+"="+testSecret)
	srv.stop(t)
	store := openStoreAt(t, dir)
	defer store.Close()
	st, err := store.Recording(context.Background(), "8329208b99410743dcfeb80548e2c0ec")
	if err != nil {
		t.Fatal(err)
	}
	r := st.View(time.Now())
	const file = "lSA2G6CUf9A-6nnoNwXCx8_111_222_1530027865231.mp4"
	if r.Status != ledger.StatusComplete || r.UploadState != ledger.UploadComplete || r.RoomID != "111" ||
		r.SessionID != "lSA2G6CUf9A-6nnoNwXCx8" || r.UserID != "222" || r.Config == nil || r.Config.SlicesMin != 30 {
		t.Errorf("recording after restart: %+v", r)
	}
	if len(r.Files) != 1 || r.Files[0].FileName != file || r.Files[0].FileURL == nil ||
		*r.Files[0].FileURL != "http://oss/record/XXXXXXXX.mp4?abc" || r.Files[0].FileSize == nil || *r.Files[0].FileSize != 333 ||
		r.Files[0].Kind != ledger.KindFinal {
		t.Errorf("files after restart: %+v", r.Files)
	}
}

func TestServeWithoutAppsSaysHowToAddOne(t *testing.T) {
	srv := startServer(t, t.TempDir())
	srv.stop(t)
	if !strings.Contains(srv.logs.String(), "--app KEY=SECRET") {
		t.Errorf("no hint on adding an app:\n%s", srv.logs)
	}
}

func TestServeInsecureFlagIsLoud(t *testing.T) {
	srv := startServer(t, t.TempDir(), "--insecure-skip-signature")
	body := []byte(`{"type":1,"appKey":"dev","recordId":"r1","timestamp":1530027865231}`)
	resp, err := testClient.Post("http://"+srv.addr+"/v1/callbacks/recording", "application/json", bytes.NewReader(body))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("unsigned callback in insecure mode: %v %v", resp, err)
	}
	resp.Body.Close()
	srv.stop(t)
	logs := srv.logs.String()
	if strings.Count(logs, "INSECURE") < 2 {
		t.Errorf("want an INSECURE warning at start and for the unsigned callback:\n%s", logs)
	}
}

// TestCrashKeepsAcknowledgedCallbacks kills the server with SIGKILL while
// 16 clients send callbacks, five times over, and checks after each crash
// that every callback answered 200 is in the log.
func TestCrashKeepsAcknowledgedCallbacks(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	dir := t.TempDir()
	var acked []string // recordIds whose start callback got a 200
	for round := range 5 {
		srv := startServer(t, dir, "--app", testApp+"="+testSecret)
		var (
			mu   sync.Mutex
			wg   sync.WaitGroup
			stop = make(chan struct{})
		)
		for g := range 16 {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					id := fmt.Sprintf("crash-%d-%d-%d", round, g, i)
					body := fmt.Appendf(nil, `{"timestamp":%d,"type":1,"appKey":%q,"recordId":%q,"roomId":"r","sessionId":"s","userId":"u","mode":0,"code":200}`,
						time.Now().UnixMilli(), testApp, id)
					status, err := postSigned(srv.addr, body)
					if err != nil {
						return // the server is gone
					}
					if status == 200 {
						mu.Lock()
						acked = append(acked, id)
						mu.Unlock()
					}
				}
			})
		}
		time.Sleep(time.Duration(200+100*round) * time.Millisecond)
		srv.kill(t)
		close(stop)
		wg.Wait()
	}
	store := openStoreAt(t, dir)
	defer store.Close()
	stored := map[string]bool{}
	for after := int64(0); ; {
		evs, err := store.Events(context.Background(), after, 10000)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			stored[e.RecordID] = true
		}
		after = evs[len(evs)-1].Seq
	}
	if len(acked) < 100 {
		t.Fatalf("only %d callbacks acknowledged across the rounds; the test proves little", len(acked))
	}
	for _, id := range acked {
		if !stored[id] {
			t.Fatalf("callback %s was answered 200 but is not in the log after a crash", id)
		}
		if _, err := store.Recording(context.Background(), id); err != nil {
			t.Fatalf("callback %s is logged but not projected: %v", id, err)
		}
	}
	t.Logf("%d acknowledged callbacks over 5 crashes, all in the log (%d logged)", len(acked), len(stored))
}

func TestMigrateAndReplayCommands(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "data", "recledger.db")
	logMs, err := sqlitestore.Migrations(sqlitestore.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	ledgerMs, err := sqlitestore.Migrations(sqlitestore.LedgerFile)
	if err != nil {
		t.Fatal(err)
	}
	versions := fmt.Sprintf("schema version: log %d, ledger %d", len(logMs), len(ledgerMs))
	out, stderr, code := runBinary(t, "", "migrate", "--db", db)
	if code != 0 || strings.Count(out, "applied ") != len(logMs)+len(ledgerMs) || !strings.Contains(out, "applied log 0001 init") ||
		!strings.Contains(out, "applied ledger 0002 filters") || !strings.Contains(out, versions) {
		t.Fatalf("first migrate (exit %d): %s%s", code, out, stderr)
	}
	out, _, code = runBinary(t, "", "migrate", "--db", db)
	if code != 0 || strings.Contains(out, "applied") || !strings.Contains(out, versions) {
		t.Errorf("second migrate (exit %d): %s", code, out)
	}

	srv := startServer(t, dir, "--app", testApp+"="+testSecret)
	srv.postSeeds(t, "type1-start.json", "type3-end.json", "type3-end.json", "type4-upload.json")
	if _, stderr, code := runBinary(t, "", "replay", "--db", db); code != 1 || !strings.Contains(stderr, "in use") {
		t.Errorf("replay beside a running server: exit %d, %q; want a refusal", code, stderr)
	}
	srv.stop(t)
	store := openStoreAt(t, dir)
	before, err := store.Recording(context.Background(), "8329208b99410743dcfeb80548e2c0ec")
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, stderr, code = runBinary(t, "", "replay", "--db", db)
	if code != 0 || !strings.Contains(out, "replayed 3 callbacks") {
		t.Fatalf("replay (exit %d): %s%s", code, out, stderr)
	}
	store = openStoreAt(t, dir)
	defer store.Close()
	after, err := store.Recording(context.Background(), "8329208b99410743dcfeb80548e2c0ec")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("replay changed the recording (-before +after):\n%s", diff)
	}
}

// TestReadmeWalkThrough is the README's walk-through: serve, sign + curl
// for RC's seed examples, then `recordings show` shows the file and its URL.
// The other query commands run against the same server.
func TestReadmeWalkThrough(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed; .ci/run installs it")
	}
	srv := startServer(t, t.TempDir(), "--app", testApp+"="+testSecret)
	server := "http://" + srv.addr
	// The README's loop, with this server's port instead of 8080.
	loop := `for f in ../../rc/testdata/seed/type*.json; do
  "$BIN" sign --app-key your_appkey --secret Y1W2MeFwwwRxa0 --body "$f" --url "$URL" | tail -n +5 | sh || exit 1
  echo
done`
	sh := exec.Command("sh", "-c", loop)
	sh.Env = append(os.Environ(), "BIN="+binary(t), "URL="+server+"/v1/callbacks/recording")
	answers, err := sh.CombinedOutput()
	if err != nil || strings.Count(string(answers), `"status":"ok"`) != 4 {
		t.Fatalf("the README's sign | sh loop: %v\n%s", err, answers)
	}
	const id = "8329208b99410743dcfeb80548e2c0ec"
	out, stderr, code := runBinary(t, "", "recordings", "show", id, "--server", server)
	if code != 0 || !strings.Contains(out, "lSA2G6CUf9A-6nnoNwXCx8_111_222_1530027865231.mp4") ||
		!strings.Contains(out, "http://oss/record/XXXXXXXX.mp4?abc") || !strings.Contains(out, "complete") {
		t.Fatalf("recordings show (exit %d):\n%s%s", code, out, stderr)
	}

	// The first command of "Asking questions", as written, after this walk-through.
	first := readmeFirstCommand(t, "Asking questions")
	if len(first) < 2 || first[0] != "recledger" {
		t.Fatalf("the first command of Asking questions: %q", first)
	}
	out, stderr, code = runBinary(t, "", append(first[1:], "--server", server)...)
	if code != 0 || !strings.Contains(out, id) {
		t.Errorf("README's %q after the walk-through (exit %d) lists nothing:\n%s%s", strings.Join(first, " "), code, out, stderr)
	}

	if _, _, code := runBinary(t, "", "recordings", "show", "nope", "--server", server); code != exitNotFound {
		t.Errorf("recordings show of an unknown id: exit %d, want %d", code, exitNotFound)
	}
	out, _, code = runBinary(t, "", "recordings", "ls", "--room", "111", "--json", "--server", server)
	var list struct{ Items []ledger.Recording }
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list.Items) != 1 || list.Items[0].RecordID != id {
		t.Errorf("recordings ls --json (exit %d): %s", code, out)
	}
	out, _, code = runBinary(t, "", "recordings", "ls", "--since", "87600h", "--server", server)
	if code != 0 || !strings.Contains(out, "RECORD ID") || !strings.Contains(out, id) || !strings.Contains(out, "1/1") {
		t.Errorf("recordings ls (exit %d):\n%s", code, out)
	}
	out, _, code = runBinary(t, "", "files", "show", "lSA2G6CUf9A-6nnoNwXCx8_111_222_1530027865231.mp4", "--server", server)
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "333 B") {
		t.Errorf("files show (exit %d):\n%s", code, out)
	}
	out, _, code = runBinary(t, "", "events", "tail", "-n", "2", "--server", server)
	if code != 0 || !strings.Contains(out, "end") || !strings.Contains(out, "upload") || strings.Contains(out, "start") {
		t.Errorf("events tail -n 2 (exit %d):\n%s", code, out)
	}
	postSigned(srv.addr, []byte(`{"appKey":"your_appkey"}`)) // refused: no recordId
	out, _, code = runBinary(t, "", "quarantine", "ls", "--server", server)
	if code != 0 || !strings.Contains(out, "missing_field") || !strings.Contains(out, "your_appkey") {
		t.Errorf("quarantine ls (exit %d), want the reason and the app key claimed:\n%s", code, out)
	}
	if _, stderr, code := runBinary(t, "", "recordings", "ls", "--server", "http://127.0.0.1:1"); code != 1 || stderr == "" {
		t.Errorf("unreachable server: exit %d %q, want 1 and a message", code, stderr)
	}
}

// TestEventsTailFollow follows the stream and sees a callback posted after
// it started.
func TestEventsTailFollow(t *testing.T) {
	srv := startServer(t, t.TempDir(), "--app", testApp+"="+testSecret)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), "events", "tail", "-f", "--json", "--server", "http://"+srv.addr)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	time.Sleep(300 * time.Millisecond) // let it connect
	body := []byte(`{"timestamp":1530027865231,"type":1,"appKey":"your_appkey","recordId":"followed","roomId":"r","sessionId":"s","userId":"u","mode":0,"code":200}`)
	if status, err := postSigned(srv.addr, body); err != nil || status != 200 {
		t.Fatalf("post: %d %v", status, err)
	}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var e ledger.Event
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.RecordID == "followed" {
			return
		}
	}
	t.Fatal("events tail -f did not show the new callback")
}

// TestShutdownEndsEventStreams stops a server with a client following the
// event stream: the stream must end with the shutdown, not hold it until
// the shutdown timeout gives up.
func TestShutdownEndsEventStreams(t *testing.T) {
	srv := startServer(t, t.TempDir(), "--shutdown-timeout", "20s")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+srv.addr+"/v1/events/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ended := make(chan struct{})
	go func() { io.Copy(io.Discard, resp.Body); close(ended) }()
	srv.stop(t)
	<-ended
	if logs := srv.logs.String(); strings.Contains(logs, `"msg":"shutdown"`) {
		t.Errorf("shutdown waited out its timeout for an open stream:\n%s", logs)
	}
}

// TestSimulateAgainstServe runs `recledger simulate` against the real
// server in every mode, with upload failures and failed recordings, and
// checks the summary and the ledger through the query API.
func TestSimulateAgainstServe(t *testing.T) {
	srv := startServer(t, t.TempDir(), "--app", testApp+"="+testSecret)
	out, stderr, code := runBinary(t, "", "simulate", "--to", "http://"+srv.addr+"/v1/callbacks/recording",
		"--app", testApp+"="+testSecret, "--recordings", "40", "--seed", "3", "--upload-failures", "0.3",
		"--never-uploaded", "0.1", "--failed-recordings", "0.1", "--signature-style", "rc-headers", "--json")
	if code != 0 {
		t.Fatalf("simulate (exit %d): %s%s", code, out, stderr)
	}
	var sum struct {
		Recordings, Callbacks, Delivered, Failed int
		Statuses                                 map[string]int
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil || sum.Recordings != 40 || sum.Delivered != sum.Callbacks || sum.Failed != 0 {
		t.Fatalf("summary %s: %+v %v", out, sum, err)
	}
	out, _, code = runBinary(t, "", "recordings", "ls", "--limit", "500", "--json", "--server", "http://"+srv.addr)
	var list struct{ Items []ledger.Recording }
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list.Items) != 40 {
		t.Fatalf("recordings ls after the simulation (exit %d): %d items", code, len(list.Items))
	}
	statuses := map[ledger.Status]int{}
	for _, r := range list.Items {
		statuses[r.Status]++
	}
	if statuses[ledger.StatusRecording] != 0 || statuses[ledger.StatusFailed] == 0 || statuses[ledger.StatusComplete] == 0 {
		t.Errorf("statuses after the simulation: %v", statuses)
	}

	out, stderr, code = runBinary(t, "", "simulate", "--to", "http://"+srv.addr+"/v1/callbacks/recording",
		"--app", testApp+"="+testSecret, "--rate", "400", "--duration", "1s", "--concurrency", "8", "--json")
	var load struct {
		Sent, Delivered int
		Statuses        map[string]int
		P99ms           float64
	}
	if code != 0 || json.Unmarshal([]byte(out), &load) != nil || load.Sent < 100 || load.Delivered != load.Sent || load.P99ms <= 0 {
		t.Errorf("simulate --rate (exit %d): %s%s", code, out, stderr)
	}

	printed, _, code := runBinary(t, "", "simulate", "--app", testApp+"="+testSecret, "--recordings", "2", "--print", "jsonl")
	if code != 0 || strings.Count(printed, "\n") < 6 || !strings.Contains(printed, `"Nonce"`) {
		t.Errorf("simulate --print jsonl (exit %d):\n%s", code, printed)
	}
}

// TestSimulateVerifyWithEveryFault is the end-to-end oracle: 300
// recordings over every mode with every fault on, then --verify compares
// the ledger recledger shows with what it acknowledged; and the same with
// the faults off.
func TestSimulateVerifyWithEveryFault(t *testing.T) {
	for _, faults := range []string{"all=0.1", ""} {
		srv := startServer(t, t.TempDir(), "--app", testApp+"="+testSecret)
		args := []string{"simulate", "--to", "http://" + srv.addr + "/v1/callbacks/recording", "--app", testApp + "=" + testSecret,
			"--recordings", "300", "--seed", "11", "--upload-failures", "0.2", "--never-uploaded", "0.05",
			"--failed-recordings", "0.05", "--verify"}
		if faults != "" {
			args = append(args, "--faults", faults)
		}
		out, stderr, code := runBinary(t, "", args...)
		if code != 0 || !strings.Contains(out, "verify: 300 recordings match") {
			t.Fatalf("faults %q: exit %d\n%s%s", faults, code, out, stderr)
		}
		if faults != "" && (!strings.Contains(out, "faults injected:") || !strings.Contains(out, "answered unexpectedly: 0")) {
			t.Errorf("faults %q: summary lacks the injected faults:\n%s", faults, out)
		}
		t.Logf("faults %q:\n%s", faults, out)
	}
}

// postgresURL returns a URL of the test database with a fresh schema, or
// skips: PostgreSQL tests run where RECLEDGER_TEST_POSTGRES_URL is set.
func postgresURL(t *testing.T) string {
	t.Helper()
	base := os.Getenv("RECLEDGER_TEST_POSTGRES_URL")
	if base == "" {
		t.Skip("set RECLEDGER_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run the PostgreSQL tests")
	}
	schema := fmt.Sprintf("e2e_%d_%d", os.Getpid(), time.Now().UnixNano())
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	t.Cleanup(func() {
		exec.Command("psql", base, "-c", "DROP SCHEMA IF EXISTS "+schema+" CASCADE").Run()
	})
	return base + sep + "search_path=" + schema
}

// TestPostgresTwoInstancesVerify runs two servers on one PostgreSQL schema;
// the simulator, every fault on, sends alternate recordings' callbacks to
// each, and --verify through either instance finds no mismatch.
func TestPostgresTwoInstancesVerify(t *testing.T) {
	db := postgresURL(t)
	one := startServer(t, t.TempDir(), "--db", db, "--app", testApp+"="+testSecret)
	two := startServer(t, t.TempDir(), "--db", db, "--app", testApp+"="+testSecret)
	for i, srv := range []*server{one, two} {
		out, stderr, code := runBinary(t, "", "simulate", "--to", "http://"+srv.addr+"/v1/callbacks/recording",
			"--app", testApp+"="+testSecret, "--recordings", "150", "--seed", strconv.Itoa(20+i), "--faults", "all=0.1",
			"--upload-failures", "0.2", "--verify", "--server", "http://"+[]*server{two, one}[i].addr)
		if code != 0 || !strings.Contains(out, "verify: 150 recordings match") {
			t.Fatalf("instance %d: exit %d\n%s%s", i+1, code, out, stderr)
		}
	}
	out, _, code := runBinary(t, "", "migrate", "--db", db)
	migrations, _ := filepath.Glob(filepath.Join("..", "..", "internal", "pgstore", "migrations", "*.sql"))
	if code != 0 || !strings.Contains(out, fmt.Sprintf("schema version: postgres %d\n", len(migrations))) {
		t.Errorf("migrate on postgres (exit %d): %s", code, out)
	}
}

// cuttableProxy forwards TCP connections to target until cut: then it
// closes every connection and refuses new ones, until restored.
type cuttableProxy struct {
	target string
	ln     net.Listener
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]bool
}

func newCuttableProxy(t *testing.T, target string) *cuttableProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cuttableProxy{target: target, ln: ln, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.setCut(true) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.cut {
				p.mu.Unlock()
				c.Close()
				continue
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				p.mu.Unlock()
				c.Close()
				continue
			}
			p.conns[c], p.conns[up] = true, true
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
	return p
}

func (p *cuttableProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
		p.conns = map[net.Conn]bool{}
	}
}

// TestPostgresOutage cuts recledger off its database during a load: it must
// answer 503 (and /readyz fail) while the database is unreachable, recover
// by itself when it returns, and have lost no callback it answered 200.
func TestPostgresOutage(t *testing.T) {
	db := postgresURL(t)
	u, err := url.Parse(db)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newCuttableProxy(t, u.Host)
	viaProxy := strings.Replace(db, u.Host, proxy.ln.Addr().String(), 1)
	srv := startServer(t, t.TempDir(), "--db", viaProxy, "--app", testApp+"="+testSecret)

	var (
		mu       sync.Mutex
		acked    []string
		statuses = map[int]int{}
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("outage-%d-%d", g, i)
				body := fmt.Appendf(nil, `{"timestamp":%d,"type":1,"appKey":%q,"recordId":%q,"roomId":"r","sessionId":"s","userId":"u","mode":0,"code":200}`,
					time.Now().UnixMilli(), testApp, id)
				status, err := postSigned(srv.addr, body)
				mu.Lock()
				if err == nil {
					statuses[status]++
					if status == 200 {
						acked = append(acked, id)
					}
				}
				mu.Unlock()
				if status != 200 {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	ready := func() int {
		resp, err := testClient.Get("http://" + srv.addr + "/readyz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	time.Sleep(500 * time.Millisecond)
	proxy.setCut(true)
	time.Sleep(1500 * time.Millisecond)
	readyDuring := ready()
	proxy.setCut(false)
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	readyAfter := ready()

	mu.Lock()
	defer mu.Unlock()
	if statuses[503] == 0 || statuses[200] == 0 {
		t.Fatalf("answers %v: want 200s and 503s", statuses)
	}
	if readyDuring != 503 || readyAfter != 200 {
		t.Errorf("/readyz during the outage %d, after %d; want 503, 200", readyDuring, readyAfter)
	}
	// Recovered: the last answers were 200s, checked directly in the database.
	conn, err := pgx.Connect(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	stored := map[string]bool{}
	rows, err := conn.Query(context.Background(), `SELECT body FROM log`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var raw []byte
		rows.Scan(&raw)
		body, err := logbody.Decode(raw) // the log keeps bodies compressed
		if err != nil {
			t.Fatal(err)
		}
		cb, err := rc.Parse(body)
		if err != nil {
			t.Fatal(err)
		}
		stored[cb.RecordID] = true
	}
	rows.Close()
	for _, id := range acked {
		if !stored[id] {
			t.Fatalf("callback %s was answered 200 but is not in the database", id)
		}
	}
	t.Logf("answers %v; %d acknowledged, all stored", statuses, len(acked))
}

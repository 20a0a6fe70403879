package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	natsd "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/delivery/webhook"
	"github.com/recledger/recledger/internal/sqlitestore"
)

// hookReceiver is the customer's webhook endpoint in the end-to-end test:
// it verifies every request with the Standard Webhooks library, checks
// that a recording's event n+1 never comes before n was acknowledged, and
// answers as script says; it can go down and come back on its address.
type hookReceiver struct {
	t      *testing.T
	wh     *standardwebhooks.Webhook
	addr   string
	script func(n int) (int, http.Header)

	mu       sync.Mutex
	srv      *http.Server
	requests int
	acked    map[string][]string // recordId → ids acknowledged, first acknowledgement order
	seen     map[string]bool
	last     map[string]int
}

func newHookReceiver(t *testing.T, secret string) *hookReceiver {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hookReceiver{t: t, wh: wh, addr: ln.Addr().String(), acked: map[string][]string{}, seen: map[string]bool{}, last: map[string]int{}}
	h.serve(ln)
	t.Cleanup(h.down)
	return h
}

func (h *hookReceiver) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(h.handle)}
	h.mu.Lock()
	h.srv = srv
	h.mu.Unlock()
	go srv.Serve(ln)
}

func (h *hookReceiver) down() {
	h.mu.Lock()
	srv := h.srv
	h.srv = nil
	h.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

func (h *hookReceiver) up(t *testing.T) {
	ln, err := net.Listen("tcp", h.addr)
	if err != nil {
		t.Fatalf("the receiver cannot listen on its address again: %v", err)
	}
	h.serve(ln)
}

func (h *hookReceiver) handle(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // the receiver went down in the middle of the request
	}
	if err := h.wh.Verify(body, r.Header); err != nil {
		h.t.Errorf("the Standard Webhooks library refuses a request: %v", err)
		w.WriteHeader(400)
		return
	}
	var ev delivery.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		h.t.Errorf("a request body is not an event: %v", err)
	}
	h.mu.Lock()
	h.requests++
	n := h.requests
	if ev.Sequence > h.last[ev.RecordID]+1 {
		h.t.Errorf("%s: event %d came before %d was acknowledged", ev.RecordID, ev.Sequence, h.last[ev.RecordID]+1)
	}
	h.mu.Unlock()
	status, header := h.script(n)
	h.mu.Lock()
	if status/100 == 2 {
		if !h.seen[ev.ID] {
			h.seen[ev.ID] = true
			h.acked[ev.RecordID] = append(h.acked[ev.RecordID], ev.ID)
		}
		h.last[ev.RecordID] = max(h.last[ev.RecordID], ev.Sequence)
	}
	h.mu.Unlock()
	for k, v := range header {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
}

func (h *hookReceiver) got() map[string][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string][]string{}
	for k, v := range h.acked {
		out[k] = slices.Clone(v)
	}
	return out
}

// natsServer runs an embedded NATS with JetStream that can be restarted
// on its port and store.
type natsServer struct {
	dir  string
	port int
	s    *natsd.Server
}

func (n *natsServer) start(t *testing.T) {
	t.Helper()
	port := n.port
	if port == 0 {
		port = -1
	}
	s, err := natsd.NewServer(&natsd.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: n.dir, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("embedded NATS did not start")
	}
	n.s, n.port = s, s.Addr().(*net.TCPAddr).Port
}

func (n *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

// streamIDs reads every message of a stream and returns, per recording,
// the event ids in stream order, repeats dropped (there should be none:
// JetStream drops a repeated Nats-Msg-Id).
func streamIDs(t *testing.T, url, stream string) (map[string][]string, int) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	total := int(info.NumPending)
	out, seen, n := map[string][]string{}, map[string]bool{}, 0
	for n < total {
		batch, err := cons.Fetch(min(total-n, 500), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for msg := range batch.Messages() {
			n++
			var ev delivery.Event
			if err := json.Unmarshal(msg.Data(), &ev); err != nil {
				t.Fatal(err)
			}
			if msg.Headers().Get(jetstream.MsgIDHeader) != ev.ID {
				t.Errorf("Nats-Msg-Id %q on event %s", msg.Headers().Get(jetstream.MsgIDHeader), ev.ID)
			}
			if !strings.HasSuffix(msg.Subject(), "."+string(ev.Type)) {
				t.Errorf("event %s of type %s on subject %s", ev.ID, ev.Type, msg.Subject())
			}
			if !seen[ev.ID] {
				seen[ev.ID] = true
				out[ev.RecordID] = append(out[ev.RecordID], ev.ID)
			}
		}
		if err := batch.Error(); err != nil {
			t.Fatal(err)
		}
	}
	return out, n
}

// pendingDelivery reads /metrics: the events destinations have not reached
// or hold for a retry.
func pendingDelivery(t *testing.T, base string) int {
	t.Helper()
	resp, err := testClient.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	n, lines := 0, 0
	for line := range strings.SplitSeq(string(body), "\n") {
		if strings.HasPrefix(line, "recledger_delivery_backlog_events{") || strings.HasPrefix(line, "recledger_delivery_held_events{") {
			var v float64
			fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v)
			n += int(v)
			lines++
		}
	}
	if lines == 0 {
		return 1 // not served yet
	}
	return n
}

// TestDeliveryEndToEnd is the proof of outbound delivery: the simulator,
// every fault on, sends to recledger, which delivers to a webhook receiver
// (verifying with the Standard Webhooks library; failing with 500, then
// 429 with Retry-After, then down for a while, then well) and to NATS
// JetStream (restarted in the middle), across a kill -9 of recledger.
// Both end with exactly the outbox's events for every recording, in each
// recording's order.
func TestDeliveryEndToEnd(t *testing.T) {
	dir := t.TempDir()
	secret := webhook.NewSecret().Reveal()
	hook := newHookReceiver(t, secret)
	hook.script = func(n int) (int, http.Header) {
		switch {
		case n <= 40:
			return 500, nil
		case n <= 60:
			return 429, http.Header{"Retry-After": {"1"}}
		}
		return 204, nil
	}
	ns := &natsServer{dir: t.TempDir()}
	ns.start(t)
	t.Cleanup(func() { ns.s.Shutdown() })

	args := []string{"--app", testApp + "=" + testSecret, "--allow-private-destinations", "--settle", "1s",
		"--retry-schedule", "300ms,500ms,1s,1s,2s,2s,3s,3s,5s,5s,5s,5s", "--webhook", "http://" + hook.addr + "/hooks=" + secret}
	srv := startServer(t, dir, args...)
	base := "http://" + srv.addr
	out, stderr, code := runBinary(t, "", "destinations", "add", ns.url(), "--type", "nats", "--stream", "E2E", "--prefix", "e2e",
		"--server", base, "--json")
	if code != 0 {
		t.Fatalf("destinations add (exit %d): %s%s", code, out, stderr)
	}
	realNATS := os.Getenv("RECLEDGER_TEST_NATS_URL")
	realStream := fmt.Sprintf("E2E_%d_%d", os.Getpid(), time.Now().UnixNano())
	if realNATS != "" {
		if out, stderr, code := runBinary(t, "", "destinations", "add", realNATS, "--type", "nats", "--stream", realStream,
			"--prefix", strings.ToLower(realStream), "--server", base); code != 0 {
			t.Fatalf("destinations add, the real NATS (exit %d): %s%s", code, out, stderr)
		}
		t.Cleanup(func() {
			if nc, err := nats.Connect(realNATS); err == nil {
				if js, err := jetstream.New(nc); err == nil {
					js.DeleteStream(context.Background(), realStream)
				}
				nc.Close()
			}
		})
	} else {
		t.Log("set RECLEDGER_TEST_NATS_URL (e.g. nats://127.0.0.1:4222) to deliver to a real NATS server too")
	}

	simulate := func(seed string) {
		t.Helper()
		out, stderr, code := runBinary(t, "", "simulate", "--to", base+"/v1/callbacks/recording", "--app", testApp+"="+testSecret,
			"--recordings", "40", "--seed", seed, "--faults", "all=0.1", "--upload-failures", "0.2", "--failed-recordings", "0.05")
		if code != 0 {
			t.Fatalf("simulate (exit %d): %s%s", code, out, stderr)
		}
	}
	simulate("31")
	// NATS goes down and comes back on its store; recledger is killed
	// while the receiver still fails, and started again.
	ns.s.Shutdown()
	ns.s.WaitForShutdown()
	time.Sleep(time.Second)
	srv.kill(t)
	ns.start(t)
	hook.down()
	srv = startServer(t, dir, args...)
	base = "http://" + srv.addr
	simulate("32")
	time.Sleep(2 * time.Second)
	hook.up(t)

	// Everything delivered: the metrics show no event behind a cursor
	// or held for a retry, three times in a row.
	deadline := time.Now().Add(120 * time.Second)
	for quiet := 0; quiet < 3; {
		if time.Now().After(deadline) {
			t.Fatalf("delivery did not finish in 120 s; %d events pending", pendingDelivery(t, base))
		}
		time.Sleep(time.Second)
		if pendingDelivery(t, base) == 0 {
			quiet++
		} else {
			quiet = 0
		}
	}
	srv.stop(t)

	store, err := sqlitestore.Open(context.Background(), filepath.Join(dir, "data", "recledger.db"), sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	events, err := store.Delivery().Outbox(context.Background(), 0, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	completed := 0
	for _, e := range events {
		want[e.RecordID] = append(want[e.RecordID], e.ID)
		if e.Type == delivery.Completed {
			completed++
		}
	}
	if len(want) < 70 || completed < 20 {
		t.Fatalf("the outbox holds events of %d recordings, %d completed; want about 80, many completed", len(want), completed)
	}
	check := func(name string, got map[string][]string) {
		t.Helper()
		for rec, ids := range want {
			if !slices.Equal(got[rec], ids) {
				t.Errorf("%s, recording %s:\n got %v\nwant %v", name, rec, got[rec], ids)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s got events of %d recordings, the outbox has %d", name, len(got), len(want))
		}
	}
	check("the webhook", hook.got())
	got, n := streamIDs(t, ns.url(), "E2E")
	check("JetStream", got)
	t.Logf("%d outbox events of %d recordings; webhook requests %d; JetStream messages %d", len(events), len(want), hook.requests, n)
	if realNATS != "" {
		got, _ := streamIDs(t, realNATS, realStream)
		check("the real NATS server", got)
	}
}

// TestReadmeDeliveryWalkThrough runs the README's "Get told when a
// recording is ready" block as written, but for the ports: serve with its
// flags, then its destination, receiver and simulation lines through sh;
// the receiver prints a verified recording.completed per recording.
func TestReadmeDeliveryWalkThrough(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "## Get told when a recording is ready")
	_, block, ok2 := strings.Cut(section, "```sh\n")
	block, _, ok3 := strings.Cut(block, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("the README has no walk-through block under \"Get told when a recording is ready\"")
	}
	lines := strings.Split(strings.TrimSpace(block), "\n")
	const run = "go run ./cmd/recledger "
	serveLine, ok := strings.CutPrefix(lines[0], run+"serve ")
	if !ok || !strings.HasSuffix(serveLine, " &") {
		t.Fatalf("the block's first line is not a serve in the background: %q", lines[0])
	}
	srv := startServer(t, t.TempDir(), strings.Fields(strings.TrimSuffix(serveLine, " &"))...)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	receiver := ln.Addr().String()
	ln.Close()
	script := strings.Join(lines[1:], "\n")
	script = strings.ReplaceAll(script, run, `"$BIN" `)
	script = strings.ReplaceAll(script, "127.0.0.1:9000", receiver)
	script = strings.ReplaceAll(script, "http://127.0.0.1:8080", "http://"+srv.addr)
	// The receiver has a moment to listen before the simulation's events
	// come; they would be retried anyway.
	sh := exec.Command("sh", "-c", script+"\nwait")
	sh.Env = append(os.Environ(), "BIN="+binary(t), "RECLEDGER_SERVER=http://"+srv.addr)
	sh.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out syncBuffer
	sh.Stdout, sh.Stderr = &out, &out
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-sh.Process.Pid, syscall.SIGTERM); sh.Wait() })
	deadline := time.Now().Add(60 * time.Second)
	for strings.Count(out.String(), "recording.completed") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the receiver printed no three recording.completed in 60 s:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.Contains(out.String(), "refused") || strings.Count(out.String(), "recording.completed") != 3 {
		t.Errorf("the walk-through's output:\n%s", out.String())
	}
}

// TestPostgresDeliveryInstanceKilled: two instances on one PostgreSQL
// schema deliver to one webhook; the one holding the destination's lease
// is killed with SIGKILL in the middle of delivery; the other takes over
// when the lease runs out: every event arrives, each recording in order.
func TestPostgresDeliveryInstanceKilled(t *testing.T) {
	db := postgresURL(t)
	secret := webhook.NewSecret().Reveal()
	hook := newHookReceiver(t, secret)
	hook.script = func(int) (int, http.Header) {
		time.Sleep(5 * time.Millisecond) // slow enough to be in the middle when the kill comes
		return 200, nil
	}
	args := []string{"--db", db, "--app", testApp + "=" + testSecret, "--allow-private-destinations", "--settle", "1s",
		"--webhook", "http://" + hook.addr + "/hooks=" + secret}
	servers := []*server{startServer(t, t.TempDir(), args...), startServer(t, t.TempDir(), args...)}
	out, stderr, code := runBinary(t, "", "simulate", "--to", "http://"+servers[0].addr+"/v1/callbacks/recording",
		"--app", testApp+"="+testSecret, "--recordings", "60", "--seed", "41", "--faults", "all=0.1")
	if code != 0 {
		t.Fatalf("simulate (exit %d): %s%s", code, out, stderr)
	}
	conn, err := pgx.Connect(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var owner string
	waitUntil := time.Now().Add(30 * time.Second)
	for owner == "" || len(hook.got()) == 0 {
		if time.Now().After(waitUntil) {
			t.Fatal("no instance took the destination's lease in 30 s")
		}
		time.Sleep(20 * time.Millisecond)
		conn.QueryRow(context.Background(), `SELECT lease_owner FROM destinations`).Scan(&owner)
	}
	killed := -1
	for i, s := range servers {
		if strings.Contains(owner, fmt.Sprintf("/%d/", s.cmd.Process.Pid)) {
			killed = i
		}
	}
	if killed < 0 {
		t.Fatalf("the lease owner %q is neither instance", owner)
	}
	servers[killed].kill(t)
	survivor := servers[1-killed]
	out, stderr, code = runBinary(t, "", "simulate", "--to", "http://"+survivor.addr+"/v1/callbacks/recording",
		"--app", testApp+"="+testSecret, "--recordings", "20", "--seed", "42")
	if code != 0 {
		t.Fatalf("simulate on the survivor (exit %d): %s%s", code, out, stderr)
	}
	var want map[string][]string
	deadline := time.Now().Add(120 * time.Second)
	for {
		rows, err := conn.Query(context.Background(), `SELECT record_id, event_id FROM outbound ORDER BY seq`)
		if err != nil {
			t.Fatal(err)
		}
		want = map[string][]string{}
		for rows.Next() {
			var rec, id string
			rows.Scan(&rec, &id)
			want[rec] = append(want[rec], id)
		}
		rows.Close()
		if fmt.Sprint(hook.got()) == fmt.Sprint(want) && pendingDelivery(t, "http://"+survivor.addr) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 120 s the receiver has events of %d recordings, the outbox %d", len(hook.got()), len(want))
		}
		time.Sleep(500 * time.Millisecond)
	}
	if len(want) < 70 {
		t.Errorf("the outbox has events of %d recordings; want about 80", len(want))
	}
}

// TestDestinationsCommands runs each destinations subcommand against a
// server: add, ls, test (a signed test event the receiver verifies with
// the Standard Webhooks library), disable, enable, rotate-secret (two keys
// until the old one expires), redeliver, rm.
func TestDestinationsCommands(t *testing.T) {
	srv := startServer(t, t.TempDir(), "--allow-private-destinations")
	server := "http://" + srv.addr
	secret := webhook.NewSecret().Reveal()
	hook := newHookReceiver(t, secret)
	hook.script = func(int) (int, http.Header) { return 204, nil }
	cli := func(want int, args ...string) string {
		t.Helper()
		out, stderr, code := runBinary(t, "", append(append([]string{"destinations"}, args...), "--server", server)...)
		if code != want {
			t.Fatalf("destinations %v: exit %d, want %d\n%s%s", args, code, want, out, stderr)
		}
		return out
	}
	var made struct{ ID, Secret string }
	if err := json.Unmarshal([]byte(cli(0, "add", "http://"+hook.addr+"/h", "--secret", secret, "--events", "recording.completed", "--json")), &made); err != nil || made.ID == "" || made.Secret != secret {
		t.Fatalf("add --json: %+v %v", made, err)
	}
	if out := cli(0, "ls"); !strings.Contains(out, made.ID) || !strings.Contains(out, "recording.completed") || !strings.Contains(out, " ok") {
		t.Errorf("ls:\n%s", out)
	}
	if out := cli(0, "test", made.ID); !strings.HasPrefix(out, "delivered: status 204") {
		t.Errorf("test:\n%s", out)
	}
	if got := hook.got()[""]; len(got) != 1 || !strings.HasPrefix(got[0], "evt_test_") {
		t.Errorf("the receiver got %v, want one verified test event", got)
	}
	if out := cli(0, "disable", made.ID); !strings.Contains(out, "disabled: disabled by a user") {
		t.Errorf("disable: %s", out)
	}
	if out := cli(0, "ls"); !strings.Contains(out, "disabled") {
		t.Errorf("ls after disable:\n%s", out)
	}
	if out := cli(0, "enable", made.ID); strings.TrimSpace(out) != made.ID+": ok" {
		t.Errorf("enable: %s", out)
	}
	rotated := cli(0, "rotate-secret", made.ID)
	newSecret, _, _ := strings.Cut(strings.TrimPrefix(rotated, "new secret: "), "\n")
	if _, err := webhook.ParseSecret(newSecret); err != nil || newSecret == secret {
		t.Errorf("rotate-secret: %q (%v)", rotated, err)
	}
	if out := cli(0, "show", made.ID); strings.Count(out, "whsec_") != 2 || !strings.Contains(out, "rotating out") ||
		strings.Contains(out, newSecret[6:]) || strings.Contains(out, secret[6:]) {
		t.Errorf("show after a rotation: want two keys as hints, the old one rotating out:\n%s", out)
	}
	if out := cli(0, "redeliver", made.ID); !strings.HasPrefix(out, "0 dead letters") {
		t.Errorf("redeliver: %s", out)
	}
	cli(0, "rm", made.ID)
	cli(exitNotFound, "show", made.ID)
}

package jetstream

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATSURLVar names a NATS server with JetStream for the tests that run
// against a real one (CI sets it: the machine's server on 127.0.0.1:4222);
// the others run an embedded server.
const NATSURLVar = "RECLEDGER_TEST_NATS_URL"

// embedded starts a NATS server with JetStream on 127.0.0.1 in this
// process, storing in dir; port 0 picks one.
func embedded(t *testing.T, dir string, port int) *server.Server {
	t.Helper()
	if port == 0 {
		port = -1
	}
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("embedded NATS did not start")
	}
	return s
}

// servers are the NATS servers the shared tests run against: an embedded
// one, and the real one NATSURLVar names ("" when unset: that subtest
// skips, and CI's skipcheck fails on such a skip).
func servers(t *testing.T) map[string]string {
	s := embedded(t, t.TempDir(), 0)
	t.Cleanup(s.Shutdown)
	return map[string]string{"embedded": s.ClientURL(), "real": os.Getenv(NATSURLVar)}
}

// need skips a subtest that has no server.
func need(t *testing.T, url string) {
	if url == "" {
		t.Skipf("no real NATS server: set %s (e.g. nats://127.0.0.1:4222)", NATSURLVar)
	}
}

// unique gives names no other test run uses: streams may not share subjects.
func unique(t *testing.T, url string) Options {
	b := make([]byte, 4)
	rand.Read(b)
	id := hex.EncodeToString(b)
	o := Options{URL: url, Stream: "RLTEST_" + id, Prefix: "rltest" + id, Timeout: 5 * time.Second}
	t.Cleanup(func() {
		nc, err := nats.Connect(url)
		if err != nil {
			return
		}
		defer nc.Close()
		if js, err := jetstream.New(nc); err == nil {
			js.DeleteStream(context.Background(), o.Stream)
		}
	})
	return o
}

func open(t *testing.T, o Options) *Publisher {
	t.Helper()
	p, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// stored reads every message of the stream.
func stored(t *testing.T, url, stream string) []*nats.Msg {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	var out []*nats.Msg
	for seq := uint64(1); seq <= s.CachedInfo().State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		out = append(out, &nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data})
	}
	return out
}

// TestPublishOnce: an event is stored under <prefix>.<appKey>.<type> with
// its id as Nats-Msg-Id; publishing it again (the dispatcher's retry after
// a lost acknowledgement) is acknowledged as a duplicate and stored once.
func TestPublishOnce(t *testing.T) {
	for name, url := range servers(t) {
		t.Run(name, func(t *testing.T) {
			need(t, url)
			o := unique(t, url)
			p := open(t, o)
			m := Message{ID: "evt_r1_1", AppKey: "app1", Type: "recording.completed", Body: []byte(`{"id":"evt_r1_1"}`)}
			for i, wantDup := range []bool{false, true, true} {
				dup, err := p.Publish(context.Background(), m)
				if err != nil || dup != wantDup {
					t.Fatalf("publish %d: duplicate %v, %v; want %v", i+1, dup, err, wantDup)
				}
			}
			if _, err := p.Publish(context.Background(), Message{ID: "evt_r1_2", AppKey: "app1", Type: "recording.started", Body: []byte(`{}`)}); err != nil {
				t.Fatal(err)
			}
			got := stored(t, url, o.Stream)
			if len(got) != 2 {
				t.Fatalf("%d messages stored, want 2", len(got))
			}
			if got[0].Subject != o.Prefix+".app1.recording.completed" || got[0].Header.Get("Nats-Msg-Id") != m.ID || string(got[0].Data) != string(m.Body) {
				t.Errorf("stored %s %v %q", got[0].Subject, got[0].Header, got[0].Data)
			}
		})
	}
}

// TestStreamSettings: Open creates the stream with the retention and
// duplicates window asked for; a later Open asking for more raises them,
// one asking for less (the defaults, another instance) leaves them; a
// stream of that name without the prefix's subjects is refused, not
// rewritten.
func TestStreamSettings(t *testing.T) {
	for name, url := range servers(t) {
		t.Run(name, func(t *testing.T) {
			need(t, url)
			o := unique(t, url)
			o.MaxAge, o.Duplicates = 72*time.Hour, 30*time.Hour
			open(t, o)
			o.MaxAge, o.Duplicates = 96*time.Hour, 50*time.Hour
			p := open(t, o)
			info, err := p.js.Stream(context.Background(), o.Stream)
			if err != nil {
				t.Fatal(err)
			}
			if c := info.CachedInfo().Config; c.MaxAge != 96*time.Hour || c.Duplicates != 50*time.Hour {
				t.Errorf("stream kept %v and %v, want 96h and 50h", c.MaxAge, c.Duplicates)
			}
			shorter := o
			shorter.MaxAge, shorter.Duplicates = 0, 0 // the defaults: 7 days and 48 hours
			open(t, shorter)
			o.MaxAge = 30 * 24 * time.Hour
			p = open(t, o)
			shorter.MaxAge, shorter.Duplicates = 0, 0
			open(t, shorter)
			info, err = p.js.Stream(context.Background(), o.Stream)
			if err != nil {
				t.Fatal(err)
			}
			if c := info.CachedInfo().Config; c.MaxAge != 30*24*time.Hour || c.Duplicates != 50*time.Hour {
				t.Errorf("after an Open with the defaults the stream keeps %v and %v, want 720h and 50h", c.MaxAge, c.Duplicates)
			}
			other := o
			other.Prefix = o.Prefix + "x"
			if _, err := Open(context.Background(), other); err == nil || !strings.Contains(err.Error(), "without the subjects") {
				t.Errorf("Open over a stream with other subjects: %v", err)
			}
			o.Duplicates = o.MaxAge + time.Hour
			if _, err := Open(context.Background(), o); err == nil {
				t.Error("a duplicates window longer than the stream keeps messages was accepted")
			}
		})
	}
}

// TestHostileAppKeys: an appKey is one escaped token: none adds a token,
// a wildcard or another app's subject.
func TestHostileAppKeys(t *testing.T) {
	seen := map[string]string{}
	for _, app := range []string{"app", "app.x", "app*", "app>", "app x", "app%2E", "", "%", "app\x00", "应用", strings.Repeat("k", 300)} {
		tok := Token(app)
		if !validToken(tok) {
			t.Errorf("Token(%q) = %q, not one subject token", app, tok)
		}
		if prev, ok := seen[tok]; ok {
			t.Errorf("Token(%q) = Token(%q) = %q", app, prev, tok)
		}
		seen[tok] = app
	}
	p := &Publisher{o: Options{Prefix: "recledger"}}
	if got := p.Subject(Message{AppKey: "a.b.*", Type: "recording.ended"}); got != "recledger.a%2Eb%2E%2A.recording.ended" {
		t.Errorf("subject %q", got)
	}
	if _, err := p.Publish(context.Background(), Message{ID: "x", Type: "recording.>"}); err == nil {
		t.Error("a wildcard event type was published")
	}
}

// TestNATSRestart: while NATS is down a publish fails (the dispatcher
// keeps the event and retries); after NATS comes back on the
// same store, the publisher reconnects, the retry is stored, and a repeat
// of an event published before the restart is still a duplicate.
func TestNATSRestart(t *testing.T) {
	dir := t.TempDir()
	s := embedded(t, dir, 0)
	port := s.Addr().(*net.TCPAddr).Port
	o := unique(t, s.ClientURL())
	p := open(t, o)
	before := Message{ID: "evt_a_1", AppKey: "app", Type: "recording.started", Body: []byte(`{}`)}
	if _, err := p.Publish(context.Background(), before); err != nil {
		t.Fatal(err)
	}
	s.Shutdown()
	s.WaitForShutdown()
	after := Message{ID: "evt_a_2", AppKey: "app", Type: "recording.ended", Body: []byte(`{}`)}
	if _, err := p.Publish(context.Background(), after); err == nil {
		t.Fatal("a publish succeeded with NATS down")
	}
	s2 := embedded(t, dir, port)
	defer s2.Shutdown()
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := p.Publish(context.Background(), after)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no publish after the restart: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if dup, err := p.Publish(context.Background(), before); err != nil || !dup {
		t.Errorf("repeat of an event from before the restart: duplicate %v, %v", dup, err)
	}
	if n := len(stored(t, s2.ClientURL(), o.Stream)); n != 2 {
		t.Errorf("%d messages stored, want 2", n)
	}
}

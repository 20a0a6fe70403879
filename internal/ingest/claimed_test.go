package ingest_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/ingest"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// logLines is a captured JSON log, read back line by line.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// with returns the lines whose msg satisfies match.
func (l *logLines) with(t *testing.T, match func(msg string) bool) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(l.buf.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, sc.Text())
		}
		if msg, _ := line["msg"].(string); match(msg) {
			out = append(out, line)
		}
	}
	return out
}

func isRefusal(msg string) bool { return msg == "callback refused" }

func isHeldBack(msg string) bool { return strings.HasSuffix(msg, " refused-request lines held back") }

// clock is a settable clock for the handler.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// wrongSecret signs as key with a secret that is not its own.
func wrongSecret(key string) func(*http.Request) {
	s := rc.Signer{AppKey: key, Secret: "not-" + secret}
	return func(r *http.Request) { s.Apply(r, s.Sign()) }
}

// TestRefusalsNameTheClaimedAppKey refuses requests that claim an app key
// in each place a sender may put one, and some that claim a hostile one:
// the quarantine row and the log line carry the key (bounded and cleaned)
// and the reason, on both stores.
func TestRefusalsNameTheClaimedAppKey(t *testing.T) {
	// Under the 64 KiB of headers the server reads (cmd/recledger/serve.go).
	huge := strings.Repeat("k", 50_000)
	clipped := strings.Repeat("k", ledger.MaxRejectionShort) + "…(50000 bytes)"
	runOnStores(t, func(t *testing.T, store ledger.Store) {
		v, err := rc.NewVerifier(rc.VerifierConfig{Apps: map[string][]string{app: {secret}}, Replay: store})
		if err != nil {
			t.Fatal(err)
		}
		logs := &logLines{}
		clk := &clock{now: time.Now()}
		h, err := ingest.New(store, ingest.Options{Verifier: v, Now: clk.Now, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		base := loopbackServer(t, h)
		start := seed(t, "type1-start.json")
		withBodyKey := func(key string) []byte {
			b, _ := json.Marshal(map[string]any{"type": 1, "recordId": "r", "appKey": key})
			return b
		}
		header := func(name, value string) func(*http.Request) {
			return func(r *http.Request) { r.Header[name] = []string{value} }
		}
		query := func(key string) func(*http.Request) {
			return func(r *http.Request) { r.URL.RawQuery = url.Values{"appKey": {key}}.Encode() }
		}
		for _, tt := range []struct {
			name, reason, want string
			body               []byte
			sign               func(*http.Request)
		}{
			{"wrong secret", "bad_signature", app, start, wrongSecret(app)},
			{"unknown key", "unknown_app", "ghost_key", withBodyKey("ghost_key"), wrongSecret("ghost_key")},
			{"unsigned", "missing_signature", app, start, nil},
			{"header only, body broken", "missing_signature", "from_header", []byte(`{"appKey":`), header("App-Key", "from_header")},
			{"RC- header", "missing_signature", "rc_header", []byte(`[]`), header("Rc-App-Key", "rc_header")},
			{"query only", "missing_signature", "from_query", []byte(`{}`), query("from_query")},
			{"none", "missing_signature", "", []byte(`{}`), nil},
			{"NUL in the body's key", "unknown_app", "badkey", withBodyKey("bad\x00key"), wrongSecret("bad\x00key")},
			{"escape and line break in the body's key", "unknown_app", "k[2Jlevel=ERROR", withBodyKey("k\x1b[2J\nlevel=ERROR"), wrongSecret("x")},
			{"NUL in the query", "missing_signature", "qkey", []byte(`{}`), func(r *http.Request) { r.URL.RawQuery = "appKey=q%00k%00ey" }},
			{"huge key in the body", "unknown_app", clipped, withBodyKey(huge), wrongSecret("x")},
			{"huge header", "missing_signature", clipped, []byte(`{}`), header("Appkey", huge)},
			{"bytes that are not UTF-8 in a header", "missing_signature", "k\uFFFDy", []byte(`{}`), header("Appkey", "k\xff\xfey")},
		} {
			t.Run(tt.name, func(t *testing.T) {
				clk.advance(2 * time.Second) // past the log's rate limit: every refusal here is logged
				a := post(t, base, tt.body, tt.sign, "application/json")
				if a.status/100 != 4 || errorCode(a) != tt.reason {
					t.Fatalf("answered %d %v, want a 4xx %s", a.status, a.body, tt.reason)
				}
				q, err := store.QuarantineList(context.Background(), 0, 1)
				if err != nil || len(q) != 1 {
					t.Fatalf("quarantine: %v, %v", q, err)
				}
				if q[0].AppKey != tt.want || q[0].Reason != tt.reason {
					t.Errorf("quarantined app key %q, reason %s; want %q, %s", ledger.Clip(q[0].AppKey, 100), q[0].Reason, ledger.Clip(tt.want, 100), tt.reason)
				}
				lines := logs.with(t, isRefusal)
				if len(lines) == 0 {
					t.Fatal("no log line for the refusal")
				}
				last := lines[len(lines)-1]
				if last["appKey"] != tt.want || last["reason"] != tt.reason {
					t.Errorf("logged appKey %q, reason %v; want %q, %s", ledger.Clip(last["appKey"].(string), 100), last["reason"], ledger.Clip(tt.want, 100), tt.reason)
				}
			})
		}
	})
}

// TestHeldBackRefusalsAreSummarised sends a burst of refusals within one
// second of the handler's clock: one line is logged, the rest are held
// back, and when the next refusal is logged a line before it says how
// many were held back, by reason and by claimed app key.
func TestHeldBackRefusalsAreSummarised(t *testing.T) {
	store := sqliteStore(t)
	v, err := rc.NewVerifier(rc.VerifierConfig{Apps: map[string][]string{app: {secret}}, Replay: store})
	if err != nil {
		t.Fatal(err)
	}
	logs := &logLines{}
	clk := &clock{now: time.Now()}
	h, err := ingest.New(store, ingest.Options{Verifier: v, Now: clk.Now, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	base := loopbackServer(t, h)
	start := seed(t, "type1-start.json")
	ghost := []byte(`{"type":1,"recordId":"r","appKey":"ghost key"}`)
	send := func(n int, body []byte, sign func(*http.Request)) {
		for range n {
			if a := post(t, base, body, sign, "application/json"); a.status != 401 {
				t.Fatalf("answered %d %v, want 401", a.status, a.body)
			}
		}
	}
	send(1, start, wrongSecret(app)) // logged
	send(30, start, wrongSecret(app))
	send(7, ghost, wrongSecret("ghost key"))
	send(4, []byte(`{}`), nil)
	clk.advance(1500 * time.Millisecond)
	send(1, start, nil) // logged, after the summary

	refusals, held := logs.with(t, isRefusal), logs.with(t, isHeldBack)
	if len(refusals) != 2 {
		t.Fatalf("%d refusal lines, want 2 (the first of the burst and the one after it)", len(refusals))
	}
	// Held lines are summed over every summary: were this burst slower than
	// a real second, the flush timer would have summarised part of it.
	var total float64
	byReason, byAppKey := map[string]int{}, map[string]int{}
	for _, l := range held {
		total += l["held"].(float64)
		for k, n := range parseCounts(t, l["by_reason"].(string)) {
			byReason[k] += n
		}
		for k, n := range parseCounts(t, l["by_appKey"].(string)) {
			byAppKey[k] += n
		}
	}
	if len(held) == 0 || total != 41 {
		t.Fatalf("held-back lines %v, want them to count 41", held)
	}
	if want := map[string]int{"bad_signature": 30, "unknown_app": 7, "missing_signature": 4}; !maps.Equal(byReason, want) {
		t.Errorf("held back by reason %v, want %v", byReason, want)
	}
	if want := map[string]int{app: 30, "ghost key": 7, "(none)": 4}; !maps.Equal(byAppKey, want) {
		t.Errorf("held back by app key %v, want %v", byAppKey, want)
	}
	if len(held) == 1 {
		if want := `your_appkey=30 "ghost key"=7 (none)=4`; held[0]["by_appKey"] != want || held[0]["msg"] != "41 refused-request lines held back" {
			t.Errorf("held-back line %v, want msg \"41 refused-request lines held back\", by_appKey %s", held[0], want)
		}
	}
	logs.mu.Lock()
	text := logs.buf.String()
	logs.mu.Unlock()
	if strings.Index(text, "refused-request lines held back") > strings.LastIndex(text, `"msg":"callback refused"`) {
		t.Errorf("the summary follows the line after the burst; want it before:\n%s", text)
	}
	// The first line is unchanged by the summary: a burst's first refusal
	// shows at once.
	if refusals[0]["reason"] != "bad_signature" || refusals[1]["reason"] != "missing_signature" || refusals[1]["appKey"] != app {
		t.Errorf("refusal lines %v", refusals)
	}
}

// parseCounts reads a held-back line's "a=3 \"b c\"=1" back into a map.
func parseCounts(t *testing.T, s string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for s != "" {
		var name string
		if strings.HasPrefix(s, `"`) {
			q, err := strconv.QuotedPrefix(s)
			if err != nil {
				t.Fatalf("counts %q: %v", s, err)
			}
			name, _ = strconv.Unquote(q)
			s = s[len(q):]
		} else {
			i := strings.IndexByte(s, '=')
			if i < 0 {
				t.Fatalf("counts %q: no '='", s)
			}
			name, s = s[:i], s[i:]
		}
		num, rest, _ := strings.Cut(strings.TrimPrefix(s, "="), " ")
		n, err := strconv.Atoi(num)
		if err != nil {
			t.Fatalf("counts %q: %v", s, err)
		}
		out[name] += n
		s = rest
	}
	return out
}

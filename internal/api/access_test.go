package api_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/access"
	"github.com/recledger/recledger/internal/api"
)

// pacedSite serves the API under rule on a real loopback socket.
func pacedSite(t *testing.T, o access.Options) (*httptest.Server, *access.Rule) {
	t.Helper()
	rule := access.NewRule(o)
	mux := http.NewServeMux()
	api.New(fill(t), api.Options{Access: rule}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, rule
}

type answer struct {
	status     int
	retryAfter string
	body       string
	took       time.Duration
}

func ask(t *testing.T, u, token string, header map[string]string) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return answer{}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header.Get("Retry-After"), string(b), time.Since(start)}
}

// sleeper counts the back-offs the limiter asks for; while held, they wait
// until released (so a test can fill a source's waiting quota without
// timing anything).
type sleeper struct {
	slept   atomic.Int32
	entered chan struct{}
	hold    chan struct{}
}

func newSleeper(held bool) *sleeper {
	s := &sleeper{entered: make(chan struct{}, 100), hold: make(chan struct{})}
	if !held {
		close(s.hold)
	}
	return s
}

func (s *sleeper) sleep(ctx context.Context, _ time.Duration) {
	s.slept.Add(1)
	s.entered <- struct{}{}
	select {
	case <-s.hold:
	case <-ctx.Done():
	}
}

// atOnce is a generous bound for "answered without a back-off": the
// back-offs here are held until released, so a slowed answer never comes
// back within it.
const atOnce = 5 * time.Second

const token = "correct-horse-battery-staple"

func TestWrongTokensAreSlowedTheRightOnePasses(t *testing.T) {
	sl := newSleeper(false)
	srv, _ := pacedSite(t, access.Options{Token: token, Limits: access.Limits{Failures: 3, Delay: time.Millisecond,
		MaxDelay: 10 * time.Millisecond, Sleep: sl.sleep}})
	u := srv.URL + "/v1/recordings"
	for i := range 3 {
		if a := ask(t, u, "guess", nil); a.status != 401 || a.retryAfter != "" || sl.slept.Load() != 0 {
			t.Fatalf("wrong token %d within the budget: %d Retry-After %q, slept %d", i+1, a.status, a.retryAfter, sl.slept.Load())
		}
	}
	a := ask(t, u, "guess", nil)
	if a.status != 401 || a.retryAfter == "" || sl.slept.Load() != 1 {
		t.Errorf("wrong token past the budget: %d Retry-After %q, slept %d; want 401 after a back-off", a.status, a.retryAfter, sl.slept.Load())
	}
	// The holder of the token, from the same address, is not slowed.
	if a := ask(t, u, token, nil); a.status != 200 || a.took > atOnce || sl.slept.Load() != 1 {
		t.Errorf("the right token after wrong ones: %d in %v, slept %d", a.status, a.took, sl.slept.Load())
	}
	if a := ask(t, u, "", nil); a.status != 401 || sl.slept.Load() != 1 {
		t.Errorf("no token at all is not a guess: %d, slept %d", a.status, sl.slept.Load())
	}
}

// TestWaitingQuota: while a source has its quota of wrong tokens waiting
// out their back-off, its further tries get 429 at once, the right token
// among them (else the instant 429 would say "wrong" at full speed); a
// session cookie still passes, and other sources are unaffected.
func TestWaitingQuota(t *testing.T) {
	sl := newSleeper(true)
	srv, rule := pacedSite(t, access.Options{Token: token, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Limits: access.Limits{Failures: 1, MaxWaiting: 2, Delay: time.Millisecond, MaxDelay: 10 * time.Millisecond, Sleep: sl.sleep}})
	u := srv.URL + "/v1/recordings"
	from := func(ip string) map[string]string { return map[string]string{"X-Forwarded-For": ip} }
	ask(t, u, "guess", from("198.51.100.1")) // the budget
	var wg sync.WaitGroup
	waiting := make(chan answer, 2)
	for range 2 {
		wg.Go(func() { waiting <- ask(t, u, "guess", from("198.51.100.1")) })
	}
	for range 2 {
		select {
		case <-sl.entered:
		case <-time.After(10 * time.Second):
			close(sl.hold)
			t.Fatal("wrong tokens past the budget never waited out a back-off")
		}
	}
	a := ask(t, u, "guess", from("198.51.100.1"))
	if a.status != 429 || a.retryAfter == "" || a.took > atOnce || !strings.Contains(a.body, "too_many_attempts") {
		t.Errorf("a wrong token over the waiting quota: %d Retry-After %q in %v: %s", a.status, a.retryAfter, a.took, a.body)
	}
	if a := ask(t, u, token, from("198.51.100.1")); a.status != 429 {
		t.Errorf("the right token from a saturated source: %d, want 429 (it must not tell right from wrong at once)", a.status)
	}
	req := httptest.NewRequest("POST", "/login", nil)
	req.RemoteAddr = "192.0.2.50:1"
	cookie, err := rule.Login(req, token)
	if err != nil {
		t.Fatal(err)
	}
	if a := ask(t, u, "", map[string]string{"X-Forwarded-For": "198.51.100.1", "Cookie": cookie.Name + "=" + cookie.Value}); a.status != 200 {
		t.Errorf("a session from the saturated source: %d, want 200", a.status)
	}
	if a := ask(t, u, token, from("198.51.100.2")); a.status != 200 || a.took > atOnce {
		t.Errorf("the right token from another source: %d in %v", a.status, a.took)
	}
	close(sl.hold)
	wg.Wait()
	close(waiting)
	for a := range waiting {
		if a.status != 401 || a.retryAfter == "" {
			t.Errorf("a waiting wrong token: %d Retry-After %q, want 401 after its back-off", a.status, a.retryAfter)
		}
	}
	if a := ask(t, u, token, from("198.51.100.1")); a.status != 200 {
		t.Errorf("the right token once nothing waits: %d", a.status)
	}
}

func TestSourcesThroughProxies(t *testing.T) {
	limits := func(sl *sleeper) access.Limits {
		return access.Limits{Failures: 2, SharedFailures: 2, Delay: time.Millisecond, MaxDelay: time.Millisecond, Sleep: sl.sleep}
	}
	t.Run("trusted proxy: each client its own budget", func(t *testing.T) {
		sl := newSleeper(false)
		srv, _ := pacedSite(t, access.Options{Token: token, Limits: limits(sl),
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
		u := srv.URL + "/v1/recordings"
		for range 3 {
			ask(t, u, "guess", map[string]string{"X-Forwarded-For": "198.51.100.1"})
		}
		if sl.slept.Load() != 1 {
			t.Fatalf("client one past its budget: slept %d, want 1", sl.slept.Load())
		}
		if a := ask(t, u, "guess", map[string]string{"X-Forwarded-For": "198.51.100.2"}); a.retryAfter != "" || sl.slept.Load() != 1 {
			t.Errorf("client two was slowed by client one's failures: Retry-After %q", a.retryAfter)
		}
		// A client cannot pick its bucket by writing the header itself: the
		// proxy appends the address it saw, the rightmost untrusted hop.
		if a := ask(t, u, "guess", map[string]string{"X-Forwarded-For": "203.0.113.77, 198.51.100.1"}); a.retryAfter == "" {
			t.Errorf("a spoofed left hop escaped client one's back-off")
		}
	})
	t.Run("unknown proxy: one shared budget", func(t *testing.T) {
		sl := newSleeper(false)
		srv, _ := pacedSite(t, access.Options{Token: token, Limits: limits(sl)})
		u := srv.URL + "/v1/recordings"
		ask(t, u, "guess", map[string]string{"X-Forwarded-For": "198.51.100.1"})
		ask(t, u, "guess", map[string]string{"X-Real-Ip": "198.51.100.2"})
		if a := ask(t, u, "guess", map[string]string{"True-Client-IP": "198.51.100.3"}); a.retryAfter == "" || sl.slept.Load() != 1 {
			t.Errorf("forwarded clients do not share the budget: Retry-After %q, slept %d", a.retryAfter, sl.slept.Load())
		}
		if a := ask(t, u, "guess", nil); a.retryAfter != "" {
			t.Errorf("a direct client was slowed by the shared bucket")
		}
		if a := ask(t, u, token, map[string]string{"X-Forwarded-For": "198.51.100.1"}); a.status != 200 {
			t.Errorf("the right token through the unknown proxy: %d", a.status)
		}
	})
}

// TestHostRule: without a token, a loopback client is answered under
// loopback names and configured ones only (DNS rebinding); with a
// forwarding header not at all.
func TestHostRule(t *testing.T) {
	s := fill(t)
	mux := http.NewServeMux()
	api.New(s, api.Options{Access: access.NewRule(access.Options{AllowedHosts: []string{"recledger.test"}})}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	for _, tt := range []struct {
		host, header string
		want         int
	}{
		{"evil.example", "", 403},
		{"evil.example:" + port, "", 403},
		{"localhost:" + port, "", 200},
		{"127.0.0.1:" + port, "", 200},
		{"[::1]:" + port, "", 200},
		{"recledger.test:" + port, "", 200},
		{"localhost:" + port, "X-Client-IP", 403},
		{"localhost:" + port, "True-Client-IP", 403},
		{"localhost:" + port, "CF-Connecting-IP", 403},
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/recordings", nil)
		req.Host = tt.host
		if tt.header != "" {
			req.Header.Set(tt.header, "192.0.2.1")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("Host %s %s: %d, want %d", tt.host, tt.header, resp.StatusCode, tt.want)
		}
		if tt.want == 403 && tt.header == "" && (!strings.Contains(string(b), "--allowed-hosts") || resp.Header.Get("Content-Type") != "application/json") {
			t.Errorf("Host %s: the refusal does not say what to do: %s", tt.host, b)
		}
	}
	if code := get(t, srv.URL+"/healthz", "", nil); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
}

package storagecheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/egress"
)

var testNow = time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)

// newChecker returns a Checker for hosts with a fixed clock and a Sleep
// that records its waits instead of waiting.
func newChecker(t *testing.T, hosts string, mod func(*Options)) (*Checker, *[]time.Duration) {
	t.Helper()
	h, err := ParseHosts(hosts)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var waits []time.Duration
	opts := Options{Hosts: h, Timeout: 5 * time.Second, Now: func() time.Time { return testNow },
		Sleep: func(_ context.Context, d time.Duration) error {
			mu.Lock()
			waits = append(waits, d)
			mu.Unlock()
			return nil
		}}
	if mod != nil {
		mod(&opts)
	}
	return New(opts), &waits
}

func size(n int64) *int64 { return &n }

// secret is in every test URL's query; no error may show it.
const secret = "X-Amz-Signature=SECRETSIG&token=SECRETTOKEN"

func assertNoSecret(t *testing.T, r Result) {
	t.Helper()
	if r.Err != nil && strings.Contains(r.Err.Error(), "SECRET") {
		t.Errorf("the error shows the query: %v", r.Err)
	}
}

func TestCheckAnswers(t *testing.T) {
	for _, tc := range []struct {
		name      string
		head      func(w http.ResponseWriter) // HEAD's answer
		get       func(w http.ResponseWriter) // the ranged GET's answer; nil: no GET expected
		want      *int64
		state     State
		status    int
		size      int64 // -1: nil
		transient bool
		retry     time.Duration
	}{
		{name: "verified", head: answer(200, "Content-Length", "10", "ETag", `"e1"`, "Content-Type", "video/mp4"), want: size(10),
			state: Verified, status: 200, size: 10},
		{name: "verified without fileSize", head: answer(200, "Content-Length", "10"), state: Verified, status: 200, size: 10},
		{name: "size mismatch", head: answer(200, "Content-Length", "10"), want: size(11), state: SizeMismatch, status: 200, size: 10},
		{name: "missing 404", head: answer(404), want: size(10), state: Missing, status: 404, size: -1},
		{name: "missing 410", head: answer(410), state: Missing, status: 410, size: -1},
		{name: "500 transient", head: answer(500), state: Unreachable, status: 500, size: -1, transient: true},
		{name: "503 retry-after", head: answer(503, "Retry-After", "120"), state: Unreachable, status: 503, size: -1, transient: true, retry: 2 * time.Minute},
		{name: "429 retry-after capped", head: answer(429, "Retry-After", "86400"), state: Unreachable, status: 429, size: -1, transient: true, retry: MaxRetryAfter},
		{name: "401 final", head: answer(401), state: Unreachable, status: 401, size: -1},
		{name: "HEAD refused, ranged GET", head: answer(405), get: answer(206, "Content-Range", "bytes 0-0/10", "Content-Length", "1", "ETag", `"e2"`),
			want: size(10), state: Verified, status: 206, size: 10},
		{name: "HEAD 403, ranged GET mismatch", head: answer(403), get: answer(206, "Content-Range", "bytes 0-0/10", "Content-Length", "1"),
			want: size(12), state: SizeMismatch, status: 206, size: 10},
		{name: "HEAD 501, empty object", head: answer(501), get: answer(416, "Content-Range", "bytes */0"), want: size(0), state: Verified, status: 416, size: 0},
		{name: "403 NoSuchKey", head: answer(403), get: body(403, "<Error><Code>NoSuchKey</Code></Error>"), state: Missing, status: 403, size: -1},
		{name: "403 AccessDenied", head: answer(403), get: body(403, "<Error><Code>AccessDenied</Code></Error>"), state: Unreachable, status: 403, size: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var heads, gets atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.Method {
				case http.MethodHead:
					heads.Add(1)
					tc.head(w)
				case http.MethodGet:
					gets.Add(1)
					if r.Header.Get("Range") != "bytes=0-0" {
						t.Errorf("GET with Range %q", r.Header.Get("Range"))
					}
					tc.get(w)
				}
			}))
			defer srv.Close()
			c, _ := newChecker(t, srv.Listener.Addr().String(), nil)
			r := c.Check(context.Background(), srv.URL+"/rec/file.mp4?"+secret, tc.want)
			if r.State != tc.state || r.HTTPStatus != tc.status || r.Transient != tc.transient || r.RetryAfter != tc.retry {
				t.Errorf("got %s %d transient=%v retry=%v (%v), want %s %d transient=%v retry=%v",
					r.State, r.HTTPStatus, r.Transient, r.RetryAfter, r.Err, tc.state, tc.status, tc.transient, tc.retry)
			}
			if tc.size < 0 && r.Size != nil || tc.size >= 0 && (r.Size == nil || *r.Size != tc.size) {
				t.Errorf("size %v, want %d", r.Size, tc.size)
			}
			if (r.State == Verified) != (r.Err == nil) {
				t.Errorf("state %s with error %v", r.State, r.Err)
			}
			if !r.CheckedAt.Equal(testNow) {
				t.Errorf("checkedAt %v", r.CheckedAt)
			}
			if wantGets := tc.get != nil; (gets.Load() == 1) != wantGets || heads.Load() != 1 {
				t.Errorf("%d HEAD, %d GET", heads.Load(), gets.Load())
			}
			if r.State == Verified && r.ETag == "" && tc.name == "verified" {
				t.Errorf("no ETag")
			}
			assertNoSecret(t, r)
		})
	}
}

func answer(status int, headers ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.WriteHeader(status)
	}
}

func body(status int, text string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) { w.WriteHeader(status); fmt.Fprint(w, text) }
}

// A server that ignores Range and sends the whole file must not have it
// downloaded: the answer is closed at once.
func TestCheckIgnoredRangeReadsNothing(t *testing.T) {
	const total = 64 << 20
	srv, written, done := streamingServer(total, func(w http.ResponseWriter) {
		w.Header().Set("Content-Length", fmt.Sprint(total))
	})
	defer srv.Close()
	c, _ := newChecker(t, srv.Listener.Addr().String(), nil)
	r := c.Check(context.Background(), srv.URL+"/big.mp4", size(total))
	if r.State != Verified || r.HTTPStatus != 200 || r.Size == nil || *r.Size != total {
		t.Fatalf("got %s %d %v %v", r.State, r.HTTPStatus, r.Size, r.Err)
	}
	<-done
	// Socket buffers take some; the point is it is far from the whole.
	if n := written.Load(); n >= total/2 {
		t.Errorf("the server sent %d of %d bytes", n, total)
	}
}

// streamingServer refuses HEAD and answers a GET with header's headers
// and then total bytes, as fast as the client takes them: written counts
// what it sent, done closes when it stopped.
func streamingServer(total int64, header func(w http.ResponseWriter)) (srv *httptest.Server, written *atomic.Int64, done chan struct{}) {
	written, done = new(atomic.Int64), make(chan struct{})
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		defer close(done)
		header(w)
		chunk := make([]byte, 32<<10)
		for written.Load() < total {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	return srv, written, done
}

func TestCheckTimeoutIsTransient(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	defer srv.Close()
	c, _ := newChecker(t, srv.Listener.Addr().String(), func(o *Options) { o.Timeout = 200 * time.Millisecond })
	r := c.Check(context.Background(), srv.URL+"/slow.mp4?"+secret, nil)
	if r.State != Unreachable || !r.Transient || !errors.Is(r.Err, context.DeadlineExceeded) {
		t.Errorf("got %s transient=%v %v", r.State, r.Transient, r.Err)
	}
	assertNoSecret(t, r)
}

func TestCheckRedirects(t *testing.T) {
	var other atomic.Int32
	otherSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { other.Add(1) }))
	defer otherSrv.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/moved":
			http.Redirect(w, r, "/file?"+secret, http.StatusFound)
		case "/file":
			w.Header().Set("Content-Length", "10")
		case "/elsewhere":
			http.Redirect(w, r, "http://other.example/file", http.StatusFound)
		case "/other-port":
			http.Redirect(w, r, otherSrv.URL+"/file", http.StatusFound)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		}
	}))
	defer srv.Close()
	c, _ := newChecker(t, srv.Listener.Addr().String(), nil)
	if r := c.Check(context.Background(), srv.URL+"/moved?"+secret, size(10)); r.State != Verified {
		t.Errorf("same-host redirect: %s %v", r.State, r.Err)
	}
	for _, path := range []string{"/elsewhere", "/other-port", "/loop"} {
		r := c.Check(context.Background(), srv.URL+path+"?"+secret, size(10))
		if r.State != Unreachable || r.Transient || !errors.Is(r.Err, ErrRedirect) {
			t.Errorf("%s: got %s transient=%v %v", path, r.State, r.Transient, r.Err)
		}
		assertNoSecret(t, r)
	}
	if other.Load() != 0 {
		t.Errorf("the host not listed got %d requests", other.Load())
	}
}

func TestCheckRefusesUnlisted(t *testing.T) {
	var got atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got.Add(1) }))
	defer srv.Close()
	c, _ := newChecker(t, "127.0.0.1:1,storage.example", nil)
	for _, u := range []string{srv.URL + "/f?" + secret, "ftp://storage.example/f", "http://user:SECRETPW@storage.example/f", "::bad"} {
		r := c.Check(context.Background(), u, nil)
		if r.State != Unreachable || r.Transient || !errors.Is(r.Err, ErrNotAllowed) && !errors.Is(r.Err, ErrNotHTTP) {
			t.Errorf("%s: got %s transient=%v %v", Redact(u), r.State, r.Transient, r.Err)
		}
		assertNoSecret(t, r)
	}
	// Only a host off the list is ErrNotAllowed (the verifier tells the
	// operator to list it); a URL no listing would make checkable is not.
	if r := c.Check(context.Background(), srv.URL+"/f?"+secret, nil); !errors.Is(r.Err, ErrNotAllowed) {
		t.Errorf("a host off the list: %v, want ErrNotAllowed", r.Err)
	}
	for _, u := range []string{"ftp://storage.example/f", "s3://storage.example/f", "http://user:SECRETPW@storage.example/f", "::bad", "https:///f"} {
		if r := c.Check(context.Background(), u, nil); errors.Is(r.Err, ErrNotAllowed) || !errors.Is(r.Err, ErrNotHTTP) {
			t.Errorf("%s: %v, want ErrNotHTTP, not ErrNotAllowed", Redact(u), r.Err)
		}
	}
	if got.Load() != 0 {
		t.Errorf("the server got %d requests", got.Load())
	}
}

// A listed host name that resolves to loopback is refused at dial time
// unless AllowPrivate: the DNS rebinding defence.
func TestCheckPrivateName(t *testing.T) {
	var got atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got.Add(1) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	hosts := "localhost:" + port
	url := "http://" + hosts + "/f?" + secret
	c, _ := newChecker(t, hosts, nil)
	r := c.Check(context.Background(), url, nil)
	if r.State != Unreachable || r.Transient || !errors.Is(r.Err, egress.ErrForbiddenAddress) {
		t.Errorf("got %s transient=%v %v", r.State, r.Transient, r.Err)
	}
	assertNoSecret(t, r)
	if got.Load() != 0 {
		t.Fatalf("the server got %d requests", got.Load())
	}
	c, _ = newChecker(t, hosts, func(o *Options) { o.AllowPrivate = true })
	if r := c.Check(context.Background(), url, nil); r.State != Verified {
		t.Errorf("AllowPrivate: got %s %v", r.State, r.Err)
	}
}

func TestCheckConnectionRefusedIsTransient(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.Listener.Addr().String()
	srv.Close()
	c, _ := newChecker(t, addr, nil)
	r := c.Check(context.Background(), "http://"+addr+"/f?"+secret, nil)
	if r.State != Unreachable || !r.Transient || r.HTTPStatus != 0 {
		t.Errorf("got %s transient=%v %d %v", r.State, r.Transient, r.HTTPStatus, r.Err)
	}
	assertNoSecret(t, r)
}

func TestCheckPerHostConcurrency(t *testing.T) {
	const perHost, checks = 2, 6
	var inFlight, most, arrived atomic.Int32
	proceed := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		arrived.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-proceed
		w.Header().Set("Content-Length", "1")
	}))
	defer srv.Close()
	c, _ := newChecker(t, srv.Listener.Addr().String(), func(o *Options) { o.PerHost = perHost })
	var wg sync.WaitGroup
	results := make([]Result, checks)
	for i := range checks {
		wg.Go(func() { results[i] = c.Check(context.Background(), srv.URL+"/f", size(1)) })
	}
	for deadline := time.Now().Add(30 * time.Second); arrived.Load() < perHost; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			close(proceed)
			t.Fatalf("only %d of %d requests arrived", arrived.Load(), perHost)
		}
	}
	// One more check must wait for a slot and give up when its context
	// ends, the server never seeing it.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	r := c.Check(ctx, srv.URL+"/f", size(1))
	cancel()
	if r.State != Unreachable || !r.Transient || !strings.Contains(r.Err.Error(), "waiting for") {
		t.Errorf("the extra check: %s %v", r.State, r.Err)
	}
	close(proceed)
	wg.Wait()
	for i, r := range results {
		if r.State != Verified {
			t.Errorf("check %d: %s %v", i, r.State, r.Err)
		}
	}
	if most.Load() > perHost || arrived.Load() != checks {
		t.Errorf("%d requests at once (limit %d), %d arrived", most.Load(), perHost, arrived.Load())
	}
}

// Requests to one host are spaced by the rate: with the clock standing
// still, each waits one interval longer than the last.
func TestCheckRatePerHost(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	c, waits := newChecker(t, srv.Listener.Addr().String(), func(o *Options) { o.RatePerHost = 10 })
	for range 3 {
		if r := c.Check(context.Background(), srv.URL+"/f", nil); r.State != Verified {
			t.Fatalf("%s %v", r.State, r.Err)
		}
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}
	if fmt.Sprint(*waits) != fmt.Sprint(want) {
		t.Errorf("waits %v, want %v", *waits, want)
	}
}

func TestNextWait(t *testing.T) {
	waits := []time.Duration{time.Second, time.Minute}
	for _, tc := range []struct {
		n    int
		r    Result
		want time.Duration
		ok   bool
	}{
		{1, Result{Transient: true}, time.Second, true},
		{2, Result{Transient: true}, time.Minute, true},
		{3, Result{Transient: true}, 0, false},
		{1, Result{Transient: false}, 0, false},
		{1, Result{Transient: true, RetryAfter: 10 * time.Second}, 10 * time.Second, true},
		{2, Result{Transient: true, RetryAfter: 10 * time.Second}, time.Minute, true},
		{1, Result{Transient: true, RetryAfter: 48 * time.Hour}, MaxRetryAfter, true},
	} {
		if got, ok := NextWait(waits, tc.n, tc.r); got != tc.want || ok != tc.ok {
			t.Errorf("NextWait(%d, %+v) = %v %v, want %v %v", tc.n, tc.r, got, ok, tc.want, tc.ok)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"https://u:pw@s3.example.com/b/k.mp4?X-Amz-Signature=abc#frag": "https://s3.example.com/b/k.mp4",
		"http://h/k?":  "http://h/k",
		"http://h/%zz": "(an unreadable URL)",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// http to https on the same host is followed when the https port is
// listed; https down to http is not.
func TestCheckSchemeRedirects(t *testing.T) {
	var plainAddr string
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/down" {
			http.Redirect(w, r, "http://"+plainAddr+"/file", http.StatusFound)
			return
		}
		w.Header().Set("Content-Length", "10")
	}))
	defer tlsSrv.Close()
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/up" {
			http.Redirect(w, r, tlsSrv.URL+"/file", http.StatusMovedPermanently)
			return
		}
		w.Header().Set("Content-Length", "10")
	}))
	defer plain.Close()
	plainAddr = plain.Listener.Addr().String()
	hosts := plainAddr + "," + tlsSrv.Listener.Addr().String()
	c, _ := newChecker(t, hosts, func(o *Options) { o.Transport = tlsSrv.Client().Transport.(*http.Transport) })
	if r := c.Check(context.Background(), plain.URL+"/up", size(10)); r.State != Verified {
		t.Errorf("http to https: %s %v", r.State, r.Err)
	}
	if r := c.Check(context.Background(), tlsSrv.URL+"/down", size(10)); r.State != Unreachable || !errors.Is(r.Err, ErrRedirect) {
		t.Errorf("https to http: %s %v", r.State, r.Err)
	}
}

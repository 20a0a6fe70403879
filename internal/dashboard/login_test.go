package dashboard_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/recledger/recledger/internal/access"
	"github.com/recledger/recledger/internal/api"
	"github.com/recledger/recledger/internal/dashboard"
	"github.com/recledger/recledger/internal/sqlitestore"
)

// ruleSite serves the API and the dashboard under rule, on a real
// loopback socket.
func ruleSite(t *testing.T, s *sqlitestore.Store, rule *access.Rule) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	api.New(s, api.Options{Access: rule}).Register(mux)
	d, err := dashboard.New(s, dashboard.Options{Access: rule})
	if err != nil {
		t.Fatal(err)
	}
	d.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func postForm(t *testing.T, u string, form url.Values, cookie *http.Cookie, header map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if cookie != nil {
		req.AddCookie(cookie)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{CheckRedirect: noRedirect}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func getWith(t *testing.T, u string, cookie *http.Cookie) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	if cookie != nil {
		req.AddCookie(cookie)
	}
	resp, err := (&http.Client{CheckRedirect: noRedirect}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

const secret = "tok-9b1e5d7c2a4f6e80"

// TestLoginRedirectStaysOnSite: the open redirect through /login?next=,
// through the real form post and the already-logged-in shortcut.
func TestLoginRedirectStaysOnSite(t *testing.T) {
	srv := ruleSite(t, fill(t, now), access.New(secret, nil))
	var cookie *http.Cookie
	for _, next := range []string{"/\t/evil.example/x", "//evil.example", `/\evil.example`, "\t//evil.example", "https://evil.example", "javascript:alert(1)"} {
		resp := postForm(t, srv.URL+"/login", url.Values{"token": {secret}, "next": {next}}, nil, nil)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
			t.Errorf("next %q: %d Location %q, want /", next, resp.StatusCode, resp.Header.Get("Location"))
		}
		cookie = resp.Cookies()[0]
	}
	resp := postForm(t, srv.URL+"/login", url.Values{"token": {secret}, "next": {"/recordings?status=ended"}}, nil, nil)
	if got := resp.Header.Get("Location"); got != "/recordings?status=ended" {
		t.Errorf("a path on the site: Location %q", got)
	}
	// The form for someone already logged in redirects at once: the issue's
	// own example, the tab percent-encoded in the query.
	for _, q := range []string{"/login?next=/%09/evil.example/x", "/login?next=%2F%2Fevil.example", "/login?next=/%5Cevil.example"} {
		resp := getWith(t, srv.URL+q, cookie)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
			t.Errorf("GET %s logged in: %d Location %q", q, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}

// TestLoginFormIsPaced: the form shares the API's limiter: wrong tokens
// past the budget are answered after a back-off, the right one at once,
// and a source with its quota waiting gets 429.
func TestLoginFormIsPaced(t *testing.T) {
	var slept atomic.Int32
	entered, hold := make(chan struct{}, 10), make(chan struct{})
	held := atomic.Bool{}
	rule := access.NewRule(access.Options{Token: secret, Limits: access.Limits{Failures: 3, MaxWaiting: 1, Delay: time.Millisecond, MaxDelay: time.Millisecond,
		Sleep: func(ctx context.Context, _ time.Duration) {
			slept.Add(1)
			if held.Load() {
				entered <- struct{}{}
				<-hold
			}
		}}})
	srv := ruleSite(t, fill(t, now), rule)
	login := func(tok string) *http.Response {
		return postForm(t, srv.URL+"/login", url.Values{"token": {tok}}, nil, nil)
	}
	// One wrong bearer token on the API and two on the form: one budget.
	req, _ := http.NewRequest("GET", srv.URL+"/v1/recordings", nil)
	req.Header.Set("Authorization", "Bearer nope")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Fatalf("wrong bearer: %v %v", resp, err)
	}
	for i := range 2 {
		if resp := login("guess"); resp.StatusCode != 401 || resp.Header.Get("Retry-After") != "" {
			t.Fatalf("wrong token %d within the budget: %d Retry-After %q", i+1, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	if resp := login("guess"); resp.StatusCode != 401 || resp.Header.Get("Retry-After") == "" || slept.Load() != 1 {
		t.Errorf("wrong token past the budget: %d Retry-After %q slept %d", resp.StatusCode, resp.Header.Get("Retry-After"), slept.Load())
	}
	start := time.Now()
	if resp := login(secret); resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 || slept.Load() != 1 || time.Since(start) > 5*time.Second {
		t.Errorf("the right token after wrong ones: %d, %d cookies, slept %d", resp.StatusCode, len(resp.Cookies()), slept.Load())
	}
	held.Store(true)
	done := make(chan *http.Response)
	go func() { done <- login("guess") }()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		close(hold)
		t.Fatal("a wrong token past the budget never waited out a back-off")
	}
	if resp := login("guess"); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("over the waiting quota: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	close(hold)
	if resp := <-done; resp.StatusCode != 401 {
		t.Errorf("the waiting wrong token: %d", resp.StatusCode)
	}
}

// TestLogoutEndsTheSession: a logged-out cookie no longer opens the API or
// the pages, here at once and on another instance on the same store after
// its refresh; other sessions stay.
func TestLogoutEndsTheSession(t *testing.T) {
	s := fill(t, now)
	one := access.NewRule(access.Options{Token: secret, Revocations: s})
	two := access.NewRule(access.Options{Token: secret, Revocations: s})
	srvOne, srvTwo := ruleSite(t, s, one), ruleSite(t, s, two)
	for _, r := range []*access.Rule{one, two} { // as serve does before it listens
		if err := r.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	login := func() *http.Cookie {
		resp := postForm(t, srvOne.URL+"/login", url.Values{"token": {secret}}, nil, nil)
		if len(resp.Cookies()) != 1 {
			t.Fatalf("login: %d", resp.StatusCode)
		}
		return resp.Cookies()[0]
	}
	session, other := login(), login()
	for _, srv := range []*httptest.Server{srvOne, srvTwo} {
		if resp := getWith(t, srv.URL+"/v1/recordings", session); resp.StatusCode != 200 {
			t.Fatalf("the session before logout: %d", resp.StatusCode)
		}
	}
	resp := postForm(t, srvOne.URL+"/logout", nil, session, nil)
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 || resp.Cookies()[0].MaxAge >= 0 {
		t.Fatalf("logout: %d %v", resp.StatusCode, resp.Cookies())
	}
	if resp := getWith(t, srvOne.URL+"/v1/recordings", session); resp.StatusCode != 401 {
		t.Errorf("the logged-out cookie on the API: %d, want 401", resp.StatusCode)
	}
	if resp := getWith(t, srvOne.URL+"/", session); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the logged-out cookie on the pages: %d, want a redirect to the login", resp.StatusCode)
	}
	if err := two.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if resp := getWith(t, srvTwo.URL+"/v1/recordings", session); resp.StatusCode != 401 {
		t.Errorf("the logged-out cookie on the other instance after its refresh: %d, want 401", resp.StatusCode)
	}
	// A restarted instance reads the list before it serves.
	three := access.NewRule(access.Options{Token: secret, Revocations: s})
	if err := three.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if resp := getWith(t, ruleSite(t, s, three).URL+"/v1/recordings", session); resp.StatusCode != 401 {
		t.Errorf("the logged-out cookie on a new instance: %d", resp.StatusCode)
	}
	for _, srv := range []*httptest.Server{srvOne, srvTwo} {
		if resp := getWith(t, srv.URL+"/v1/recordings", other); resp.StatusCode != 200 {
			t.Errorf("another session after the logout: %d", resp.StatusCode)
		}
	}
}

// Someone not let in sees no navigation, search or "Log out": they would
// only lead back to the login. Someone let in sees all three.
func TestOutsidePagesOfferNoNavigation(t *testing.T) {
	locked := newSite(t, fill(t, now), "tok-outside", now)
	open := newSite(t, fill(t, now), "", now)
	chrome := func(doc *html.Node) []string {
		var got []string
		if len(find(doc, tag("nav"))) > 0 {
			got = append(got, "navigation")
		}
		if len(find(doc, hasAttr("role", "search"))) > 0 {
			got = append(got, "search")
		}
		if len(find(doc, hasAttr("action", "/logout"))) > 0 {
			got = append(got, "log out")
		}
		return got
	}
	rebound, _ := http.NewRequest("GET", open.URL+"/recordings", nil)
	rebound.Host = "evil.example"
	login := postForm(t, locked.URL+"/login", url.Values{"token": {"tok-outside"}}, nil, nil)
	if len(login.Cookies()) != 1 {
		t.Fatalf("login: %d, cookies %v", login.StatusCode, login.Cookies())
	}
	session := mustRequest(t, locked.URL+"/recordings")
	session.AddCookie(login.Cookies()[0])
	for _, tt := range []struct {
		name string
		req  *http.Request
		want string
	}{
		{"login form", mustRequest(t, locked.URL+"/login?next=%2Frecordings"), ""},
		{"wrong token", func() *http.Request {
			r, _ := http.NewRequest("POST", locked.URL+"/login", strings.NewReader("token=wrong"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}(), ""},
		{"refused host name", rebound, ""},
		{"let in (no token, loopback)", mustRequest(t, open.URL+"/recordings"), "navigation search"},
		{"logged in", session, "navigation search log out"},
	} {
		resp, err := http.DefaultTransport.RoundTrip(tt.req)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := html.Parse(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(chrome(doc), " "); got != tt.want {
			t.Errorf("%s (%d): shows %q, want %q", tt.name, resp.StatusCode, got, tt.want)
		}
	}
}

func mustRequest(t *testing.T, u string) *http.Request {
	t.Helper()
	r, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

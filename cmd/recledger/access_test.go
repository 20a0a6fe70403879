package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

var noFollow = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func sendWith(t *testing.T, method, u string, cookie *http.Cookie, form url.Values) *http.Response {
	t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req, _ := http.NewRequest(method, u, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	resp.Body.Close()
	return resp
}

func loginCookie(t *testing.T, srv *server, token string) *http.Cookie {
	t.Helper()
	resp := sendWith(t, "POST", "http://"+srv.addr+"/login", nil, url.Values{"token": {token}})
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
		t.Fatalf("login: %d %v", resp.StatusCode, resp.Cookies())
	}
	return resp.Cookies()[0]
}

const e2eToken = "e2e-token-5d0c8f3a9b7e1246"

// TestLogoutEndsTheSessionEndToEnd: login, the cookie opens the API,
// logout, the same cookie is refused; also after a restart.
func TestLogoutEndsTheSessionEndToEnd(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, "--api-token", e2eToken)
	cookie := loginCookie(t, srv, e2eToken)
	if resp := sendWith(t, "GET", "http://"+srv.addr+"/v1/recordings", cookie, nil); resp.StatusCode != 200 {
		t.Fatalf("the session on the API: %d", resp.StatusCode)
	}
	if resp := sendWith(t, "POST", "http://"+srv.addr+"/logout", cookie, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d\n%s", resp.StatusCode, srv.logs)
	}
	if resp := sendWith(t, "GET", "http://"+srv.addr+"/v1/recordings", cookie, nil); resp.StatusCode != 401 {
		t.Errorf("the logged-out cookie: %d, want 401", resp.StatusCode)
	}
	srv.stop(t)
	srv = startServer(t, dir, "--api-token", e2eToken)
	if resp := sendWith(t, "GET", "http://"+srv.addr+"/v1/recordings", cookie, nil); resp.StatusCode != 401 {
		t.Errorf("the logged-out cookie after a restart: %d, want 401", resp.StatusCode)
	}
	if strings.Contains(srv.logs.String(), "WEAK TOKEN") {
		t.Errorf("a long token was called weak:\n%s", srv.logs)
	}
}

// TestPostgresLogoutEverywhere: a logout on one instance ends the session
// on another on the same database within its refresh interval.
func TestPostgresLogoutEverywhere(t *testing.T) {
	db := postgresURL(t)
	one := startServer(t, t.TempDir(), "--db", db, "--api-token", e2eToken, "--session-refresh", "100ms")
	two := startServer(t, t.TempDir(), "--db", db, "--api-token", e2eToken, "--session-refresh", "100ms")
	cookie := loginCookie(t, one, e2eToken)
	if resp := sendWith(t, "GET", "http://"+two.addr+"/v1/recordings", cookie, nil); resp.StatusCode != 200 {
		t.Fatalf("the session on the other instance: %d", resp.StatusCode)
	}
	if resp := sendWith(t, "POST", "http://"+one.addr+"/logout", cookie, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if resp := sendWith(t, "GET", "http://"+one.addr+"/v1/recordings", cookie, nil); resp.StatusCode != 401 {
		t.Errorf("the logged-out cookie where it logged out: %d, want 401", resp.StatusCode)
	}
	// A bound, not a speed claim: a few refresh intervals on a busy machine.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp := sendWith(t, "GET", "http://"+two.addr+"/v1/recordings", cookie, nil)
		if resp.StatusCode == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the other instance still answers the logged-out cookie with %d after 10 s", resp.StatusCode)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServeAccessRules: without a token a rebound host name is refused;
// a short token is called weak in the log.
func TestServeAccessRules(t *testing.T) {
	srv := startServer(t, t.TempDir(), "--allowed-hosts", "recledger.test")
	_, port, _ := strings.Cut(srv.addr, ":")
	for host, want := range map[string]int{"evil.example:" + port: 403, "localhost:" + port: 200, "recledger.test": 200} {
		req, _ := http.NewRequest("GET", "http://"+srv.addr+"/v1/recordings", nil)
		req.Host = host
		resp, err := testClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
	weak := startServer(t, t.TempDir(), "--api-token", "short")
	weak.stop(t)
	if !strings.Contains(weak.logs.String(), "WEAK TOKEN") {
		t.Errorf("a 5-character token started without a warning:\n%s", weak.logs)
	}
}

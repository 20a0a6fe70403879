package access_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/access"
)

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func request(remote string, header map[string]string, cookie *http.Cookie) *http.Request {
	r := httptest.NewRequest("GET", "/v1/recordings", nil)
	r.RemoteAddr = remote
	for k, v := range header {
		r.Header.Set(k, v)
	}
	if cookie != nil {
		r.AddCookie(cookie)
	}
	return r
}

func TestCheck(t *testing.T) {
	now := t0
	clock := func() time.Time { return now }
	withToken := access.New("s3cret", clock)
	session, ok := withToken.Login("s3cret")
	if !ok {
		t.Fatal("login with the token refused")
	}
	other, _ := access.New("other", clock).Login("other")
	tampered := *session
	tampered.Value = strings.Replace(session.Value, "v1.", "v1.9", 1) // a later expiry, same signature
	noToken := access.New("", clock)

	for _, tt := range []struct {
		name    string
		rule    *access.Rule
		req     *http.Request
		later   time.Duration
		wantErr error
	}{
		{"bearer", withToken, request("203.0.113.5:1", map[string]string{"Authorization": "Bearer s3cret"}, nil), 0, nil},
		{"bearer scheme in any case", withToken, request("203.0.113.5:1", map[string]string{"Authorization": "bearer s3cret"}, nil), 0, nil},
		{"wrong bearer", withToken, request("127.0.0.1:1", map[string]string{"Authorization": "Bearer s3cre"}, nil), 0, access.ErrUnauthorized},
		{"basic scheme", withToken, request("127.0.0.1:1", map[string]string{"Authorization": "Basic s3cret"}, nil), 0, access.ErrUnauthorized},
		{"loopback is not enough with a token", withToken, request("127.0.0.1:1", nil, nil), 0, access.ErrUnauthorized},
		{"session cookie", withToken, request("203.0.113.5:1", nil, session), 0, nil},
		{"session cookie near its end", withToken, request("203.0.113.5:1", nil, session), access.SessionLifetime - time.Second, nil},
		{"expired session", withToken, request("203.0.113.5:1", nil, session), access.SessionLifetime, access.ErrUnauthorized},
		{"session of another token", withToken, request("203.0.113.5:1", nil, other), 0, access.ErrUnauthorized},
		{"tampered session", withToken, request("203.0.113.5:1", nil, &tampered), 0, access.ErrUnauthorized},
		{"the token as the cookie", withToken, request("203.0.113.5:1", nil, &http.Cookie{Name: access.CookieName, Value: "s3cret"}), 0, access.ErrUnauthorized},
		{"loopback v4", noToken, request("127.0.0.1:5000", nil, nil), 0, nil},
		{"loopback v6", noToken, request("[::1]:5000", nil, nil), 0, nil},
		{"remote", noToken, request("192.0.2.1:5000", nil, nil), 0, access.ErrForbidden},
		{"forwarded by a local proxy", noToken, request("127.0.0.1:5000", map[string]string{"X-Forwarded-For": "192.0.2.1"}, nil), 0, access.ErrForbidden},
		{"Forwarded header", noToken, request("127.0.0.1:5000", map[string]string{"Forwarded": "for=192.0.2.1"}, nil), 0, access.ErrForbidden},
		{"X-Real-IP", noToken, request("127.0.0.1:5000", map[string]string{"X-Real-IP": "192.0.2.1"}, nil), 0, access.ErrForbidden},
		{"unparseable remote", noToken, request("pipe", nil, nil), 0, access.ErrForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			now = t0.Add(tt.later)
			defer func() { now = t0 }()
			if err := tt.rule.Check(tt.req); !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Errorf("Check = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestLogin(t *testing.T) {
	r := access.New("s3cret", func() time.Time { return t0 })
	if _, ok := r.Login("wrong"); ok {
		t.Error("a wrong token logged in")
	}
	if _, ok := r.Login(""); ok {
		t.Error("an empty token logged in")
	}
	if _, ok := access.New("", nil).Login(""); ok {
		t.Error("logged in where no token is configured")
	}
	c, ok := r.Login("s3cret")
	if !ok {
		t.Fatal("the token did not log in")
	}
	if strings.Contains(c.Value, "s3cret") {
		t.Errorf("the cookie holds the token: %q", c.Value)
	}
	if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" {
		t.Errorf("cookie attributes: %+v", c)
	}
	if !c.Expires.Equal(t0.Add(access.SessionLifetime)) {
		t.Errorf("expires %v", c.Expires)
	}
	out := access.Logout()
	if out.Name != access.CookieName || out.MaxAge >= 0 {
		t.Errorf("logout cookie: %+v", out)
	}
}

// FuzzSessionCookie: no cookie value but one the rule signed opens the
// door, and none crashes the check.
func FuzzSessionCookie(f *testing.F) {
	r := access.New("s3cret", func() time.Time { return t0 })
	good, _ := r.Login("s3cret")
	for _, seed := range []string{good.Value, "", ".", "v1.", "v1.1.x", "v1.99999999999." + strings.Repeat("A", 43), "s3cret", good.Value + "x"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		req := request("203.0.113.5:1", nil, nil)
		req.Header.Set("Cookie", access.CookieName+"="+value)
		err := r.Check(req)
		if err == nil {
			c, err := req.Cookie(access.CookieName)
			if err != nil || c.Value != good.Value {
				t.Fatalf("accepted cookie %q", value)
			}
		}
	})
}

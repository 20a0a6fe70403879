package access_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/access"
)

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func request(remote string, header map[string]string, cookie *http.Cookie) *http.Request {
	r := httptest.NewRequest("GET", "/v1/recordings", nil)
	r.RemoteAddr = remote
	r.Host = "127.0.0.1:8080"
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
	session, err := withToken.Login(request("203.0.113.5:1", nil, nil), "s3cret")
	if err != nil {
		t.Fatalf("login with the token refused: %v", err)
	}
	other, _ := access.New("other", clock).Login(request("203.0.113.5:1", nil, nil), "other")
	tampered := *session
	tampered.Value = strings.Replace(session.Value, "v2.", "v2.9", 1) // a later expiry, same signature
	oldFormat := &http.Cookie{Name: access.CookieName, Value: v1Cookie("s3cret", t0.Add(time.Hour))}
	noToken := access.New("", clock)
	named := access.NewRule(access.Options{Now: clock, AllowedHosts: []string{"Recledger.Internal", "box:9000"}})
	host := func(h string, r *http.Request) *http.Request { r.Host = h; return r }

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
		{"a v1 cookie signed the old way", withToken, request("203.0.113.5:1", nil, oldFormat), 0, access.ErrUnauthorized},
		{"the token as the cookie", withToken, request("203.0.113.5:1", nil, &http.Cookie{Name: access.CookieName, Value: "s3cret"}), 0, access.ErrUnauthorized},
		{"loopback v4", noToken, request("127.0.0.1:5000", nil, nil), 0, nil},
		{"loopback v6", noToken, request("[::1]:5000", nil, nil), 0, nil},
		{"remote", noToken, request("192.0.2.1:5000", nil, nil), 0, access.ErrForbidden},
		{"forwarded by a local proxy", noToken, request("127.0.0.1:5000", map[string]string{"X-Forwarded-For": "192.0.2.1"}, nil), 0, access.ErrForbidden},
		{"Forwarded header", noToken, request("127.0.0.1:5000", map[string]string{"Forwarded": "for=192.0.2.1"}, nil), 0, access.ErrForbidden},
		{"X-Real-IP", noToken, request("127.0.0.1:5000", map[string]string{"X-Real-IP": "192.0.2.1"}, nil), 0, access.ErrForbidden},
		{"X-Client-IP", noToken, request("127.0.0.1:5000", map[string]string{"X-Client-IP": "192.0.2.1"}, nil), 0, access.ErrForbidden},
		{"True-Client-IP", noToken, request("127.0.0.1:5000", map[string]string{"True-Client-IP": "192.0.2.1"}, nil), 0, access.ErrForbidden},
		{"CF-Connecting-IP", noToken, request("127.0.0.1:5000", map[string]string{"CF-Connecting-IP": "192.0.2.1"}, nil), 0, access.ErrForbidden},
		{"an empty forwarding header", noToken, request("127.0.0.1:5000", map[string]string{"X-Forwarded-For": ""}, nil), 0, access.ErrForbidden},
		{"unparseable remote", noToken, request("pipe", nil, nil), 0, access.ErrForbidden},
		{"rebound name", noToken, host("evil.example:8080", request("127.0.0.1:5000", nil, nil)), 0, access.ErrHost},
		{"rebound name without a port", noToken, host("evil.example", request("127.0.0.1:5000", nil, nil)), 0, access.ErrHost},
		{"no Host", noToken, host("", request("127.0.0.1:5000", nil, nil)), 0, access.ErrHost},
		{"localhost", noToken, host("localhost:8080", request("127.0.0.1:5000", nil, nil)), 0, nil},
		{"LOCALHOST.", noToken, host("LOCALHOST.:8080", request("127.0.0.1:5000", nil, nil)), 0, nil},
		{"a .localhost name", noToken, host("app.localhost:8080", request("127.0.0.1:5000", nil, nil)), 0, nil},
		{"localhost as a suffix of another name", noToken, host("evillocalhost:8080", request("127.0.0.1:5000", nil, nil)), 0, access.ErrHost},
		{"127.0.0.2", noToken, host("127.0.0.2:8080", request("127.0.0.1:5000", nil, nil)), 0, nil},
		{"[::1]", noToken, host("[::1]:8080", request("[::1]:5000", nil, nil)), 0, nil},
		{"mapped loopback", noToken, host("[::ffff:127.0.0.1]:8080", request("127.0.0.1:5000", nil, nil)), 0, nil},
		{"a private address", noToken, host("10.0.0.1:8080", request("127.0.0.1:5000", nil, nil)), 0, access.ErrHost},
		{"configured name", named, host("recledger.internal:8080", request("127.0.0.1:5000", nil, nil)), 0, nil},
		{"configured name given with a port", named, host("box", request("127.0.0.1:5000", nil, nil)), 0, nil},
		{"configured name, remote client", named, host("recledger.internal", request("192.0.2.1:5000", nil, nil)), 0, access.ErrForbidden},
		{"unconfigured name beside a configured one", named, host("other.internal", request("127.0.0.1:5000", nil, nil)), 0, access.ErrHost},
		{"any name with a token", withToken, host("evil.example", request("203.0.113.5:1", map[string]string{"Authorization": "Bearer s3cret"}, nil)), 0, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			now = t0.Add(tt.later)
			defer func() { now = t0 }()
			if err := tt.rule.Check(tt.req); !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) ||
				(tt.wantErr == access.ErrForbidden && errors.Is(err, access.ErrHost)) {
				t.Errorf("Check = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestLogin(t *testing.T) {
	r := access.New("s3cret", func() time.Time { return t0 })
	req := func() *http.Request { return request("203.0.113.5:1", nil, nil) }
	if _, err := r.Login(req(), "wrong"); !errors.Is(err, access.ErrUnauthorized) {
		t.Errorf("a wrong token: %v", err)
	}
	if _, err := r.Login(req(), ""); err == nil {
		t.Error("an empty token logged in")
	}
	if _, err := access.New("", nil).Login(req(), ""); err == nil {
		t.Error("logged in where no token is configured")
	}
	c, err := r.Login(req(), "s3cret")
	if err != nil {
		t.Fatalf("the token did not log in: %v", err)
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
	if parts := strings.Split(c.Value, "."); len(parts) != 4 || parts[0] != "v2" {
		t.Errorf("cookie %q: want v2.EXPIRY.ID.MAC", c.Value)
	}
	c2, _ := r.Login(req(), "s3cret")
	if c2.Value == c.Value {
		t.Error("two logins got the same session")
	}
	out, err := r.Logout(req())
	if err != nil || out.Name != access.CookieName || out.MaxAge >= 0 {
		t.Errorf("logout cookie: %+v %v", out, err)
	}
}

// v1Cookie is a session cookie as the previous release made it.
func v1Cookie(token string, exp time.Time) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("recledger dashboard session v1"))
	key := m.Sum(nil)
	payload := "v1." + strconv.FormatInt(exp.Unix(), 10)
	m = hmac.New(sha256.New, key)
	m.Write([]byte(payload))
	return payload + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// signedV2 reports whether value carries a v2 signature by the key of
// token, worked out here apart from the rule: the fuzzer's workers are
// other processes, whose rule signed other session ids than the seed's, so
// "signed" and not "equal to this process's cookie" is the property.
func signedV2(token, value string) bool {
	i := strings.LastIndexByte(value, '.')
	if i < 0 || !strings.HasPrefix(value, "v2.") {
		return false
	}
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("recledger dashboard session v2"))
	m = hmac.New(sha256.New, m.Sum(nil))
	m.Write([]byte(value[:i]))
	return value[i+1:] == base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// FuzzSessionCookie: no cookie value but one the rule signed opens the
// door, and none crashes the check.
func FuzzSessionCookie(f *testing.F) {
	r := access.New("s3cret", func() time.Time { return t0 })
	good, _ := r.Login(request("203.0.113.5:1", nil, nil), "s3cret")
	for _, seed := range []string{good.Value, "", ".", "v1.", "v1.1.x", "v1.99999999999." + strings.Repeat("A", 43), "s3cret", good.Value + "x",
		"v2.99999999999.AAAAAAAAAAAAAAAAAAAAAA." + strings.Repeat("A", 43), v1Cookie("s3cret", t0.Add(time.Hour))} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		req := request("203.0.113.5:1", nil, nil)
		req.Header.Set("Cookie", access.CookieName+"="+value)
		err := r.Check(req)
		if err == nil {
			c, err := req.Cookie(access.CookieName)
			if err != nil || !signedV2("s3cret", c.Value) {
				t.Fatalf("accepted cookie %q", value)
			}
		}
	})
}

// FuzzCheck: hostile headers (NUL bytes, huge forwarding chains, odd
// hosts) never crash the rule, never open it without the token, and
// without a token never answer a Host that is not loopback.
func FuzzCheck(f *testing.F) {
	f.Add("Bearer s3cret", "127.0.0.1:1", "localhost:8080", "")
	f.Add("Bearer s3cre\x00t", "[::1]:1", "evil.example", "1.2.3.4, 5.6.7.8")
	f.Add("bearer "+strings.Repeat("A", 70_000), "10.0.0.1:1", "[::ffff:127.0.0.1]", strings.Repeat("198.51.100.1, ", 5000))
	f.Add("", "pipe", "\x00localhost", "not-an-ip,,::1")
	f.Add("Bearer s3cret", "10.0.0.1:1", "127.0.0.1.evil.example", "[2001:db8::1]:443")
	withToken := access.NewRule(access.Options{Token: "s3cret", Now: func() time.Time { return t0 },
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		Limits:         access.Limits{Sleep: func(context.Context, time.Duration) {}}})
	noToken := access.NewRule(access.Options{Now: func() time.Time { return t0 }})
	f.Fuzz(func(t *testing.T, authorization, remote, host, xff string) {
		req := request(remote, nil, nil)
		req.Host = host
		req.Header["Authorization"] = []string{authorization}
		if xff != "" {
			req.Header["X-Forwarded-For"] = []string{xff}
		}
		if err := withToken.Check(req); err == nil {
			scheme, tok, _ := strings.Cut(authorization, " ")
			if !strings.EqualFold(scheme, "bearer") || tok != "s3cret" {
				t.Fatalf("Authorization %q opened the door", authorization)
			}
		}
		// The client logs and the quarantine show: the peer as given, or
		// an address a trusted proxy named that is not itself trusted.
		if c := withToken.Client(req); !c.Forwarded && c.String() != remote {
			t.Fatalf("remote %q, X-Forwarded-For %q: client %q, want the peer", remote, xff, c.String())
		} else if c.Forwarded {
			ip, err := netip.ParseAddr(c.String())
			if err != nil || netip.MustParsePrefix("10.0.0.0/8").Contains(ip) || len(c.String()) > 64 {
				t.Fatalf("remote %q, X-Forwarded-For %q: client %q", remote, xff, c.String())
			}
		}
		if err := noToken.Check(req); err == nil {
			h := strings.ToLower(host)
			if xff != "" || !(strings.HasPrefix(h, "localhost") || strings.Contains(h, ".localhost") || strings.HasPrefix(h, "127.") ||
				strings.HasPrefix(h, "[::1]") || strings.HasPrefix(h, "::1") || strings.Contains(h, "127.0.0.1")) {
				t.Fatalf("no token: Host %q, remote %q, X-Forwarded-For %q answered", host, remote, xff)
			}
		}
	})
}

// TestSetToken: a reloaded token is in force at once; the old token and the
// sessions it signed are refused, and "" goes back to loopback only.
func TestSetToken(t *testing.T) {
	r := access.New("old-token", func() time.Time { return t0 })
	oldSession, err := r.Login(request("203.0.113.5:1", nil, nil), "old-token")
	if err != nil {
		t.Fatal(err)
	}
	r.SetToken("new-token")
	bearer := func(tok string) *http.Request {
		return request("203.0.113.5:1", map[string]string{"Authorization": "Bearer " + tok}, nil)
	}
	for _, tt := range []struct {
		name    string
		req     *http.Request
		wantErr error
	}{
		{"new token", bearer("new-token"), nil},
		{"old token", bearer("old-token"), access.ErrUnauthorized},
		{"old session", request("203.0.113.5:1", nil, oldSession), access.ErrUnauthorized},
	} {
		if err := r.Check(tt.req); !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: Check = %v, want %v", tt.name, err, tt.wantErr)
		}
	}
	if !r.TokenRequired() {
		t.Error("TokenRequired = false after SetToken(new-token)")
	}
	r.SetToken("")
	if err := r.Check(request("127.0.0.1:1", nil, nil)); err != nil || r.TokenRequired() {
		t.Errorf("after SetToken(\"\"): loopback Check = %v, TokenRequired = %v; want nil, false", err, r.TokenRequired())
	}
}

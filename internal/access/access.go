// Package access decides who may read recledger's API and dashboard: with
// an API token, a client that presents it (as a bearer token, or as the
// dashboard's session cookie, which the token signs); without one, loopback
// clients only, and not through a proxy.
package access

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Errors of Check; callers answer 401 and 403.
var (
	ErrUnauthorized = errors.New("a valid bearer token is required")
	ErrForbidden    = errors.New("without an API token only loopback clients are answered (not through a proxy); set --api-token")
)

// CookieName is the dashboard's session cookie.
const CookieName = "recledger_session"

// SessionLifetime is how long a dashboard login lasts.
const SessionLifetime = 12 * time.Hour

// Rule is the access rule for one API token ("" for loopback only).
type Rule struct {
	token string
	key   []byte // signs session cookies; derived from the token
	now   func() time.Time
}

// New returns the rule for token; now is the clock (time.Now when nil).
func New(token string, now func() time.Time) *Rule {
	if now == nil {
		now = time.Now
	}
	r := &Rule{token: token, now: now}
	if token != "" {
		// Derived from the token, so every instance behind a load balancer
		// accepts the others' sessions, and changing the token ends them all.
		m := hmac.New(sha256.New, []byte(token))
		m.Write([]byte("recledger dashboard session v1"))
		r.key = m.Sum(nil)
	}
	return r
}

// TokenRequired reports whether a token is configured.
func (r *Rule) TokenRequired() bool { return r.token != "" }

// Check returns nil if req may read, else ErrUnauthorized or ErrForbidden.
func (r *Rule) Check(req *http.Request) error {
	if r.token != "" {
		if r.tokenMatches(bearer(req)) || r.validSession(req) {
			return nil
		}
		return ErrUnauthorized
	}
	// A reverse proxy on the same host makes every client look local; a
	// request it forwarded is not a loopback client's.
	for _, h := range []string{"Forwarded", "X-Forwarded-For", "X-Real-Ip"} {
		if req.Header.Get(h) != "" {
			return ErrForbidden
		}
	}
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return ErrForbidden
	}
	return nil
}

func bearer(req *http.Request) string {
	scheme, got, ok := strings.Cut(req.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return got
}

func (r *Rule) tokenMatches(got string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(r.token)) == 1
}

// Login returns the session cookie for a client that typed token, or
// false if token is not the API token. The cookie holds an expiry and its
// signature, never the token.
func (r *Rule) Login(token string) (*http.Cookie, bool) {
	if r.token == "" || !r.tokenMatches(token) {
		return nil, false
	}
	exp := r.now().Add(SessionLifetime)
	payload := "v1." + strconv.FormatInt(exp.Unix(), 10)
	return &http.Cookie{
		Name:     CookieName,
		Value:    payload + "." + r.sign(payload),
		Path:     "/",
		Expires:  exp,
		MaxAge:   int(SessionLifetime.Seconds()),
		Secure:   true, // browsers keep it on https and on http://localhost
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	}, true
}

// Logout returns the cookie that ends a session.
func Logout() *http.Cookie {
	return &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode}
}

func (r *Rule) sign(payload string) string {
	m := hmac.New(sha256.New, r.key)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (r *Rule) validSession(req *http.Request) bool {
	c, err := req.Cookie(CookieName)
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(c.Value, '.')
	if i < 0 {
		return false
	}
	payload, mac := c.Value[:i], c.Value[i+1:]
	if !hmac.Equal([]byte(mac), []byte(r.sign(payload))) {
		return false
	}
	expText, ok := strings.CutPrefix(payload, "v1.")
	if !ok {
		return false
	}
	exp, err := strconv.ParseInt(expText, 10, 64)
	return err == nil && r.now().Unix() < exp
}

package access

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// CookieName is the dashboard's session cookie.
const CookieName = "recledger_session"

// SessionLifetime is how long a dashboard login lasts.
const SessionLifetime = 12 * time.Hour

// Revocations keeps ended sessions where every instance sees them (the
// store). Ids are the cookies' random session ids; until is when the
// session would have expired anyway, after which the entry can go.
type Revocations interface {
	RevokeSession(ctx context.Context, id string, until time.Time) error
	// RevokedSessions returns the sessions revoked whose until is after now.
	RevokedSessions(ctx context.Context, now time.Time) (map[string]time.Time, error)
}

// sessionIDBytes of randomness name a session: unguessable, and a
// collision between two logins never happens in practice.
const sessionIDBytes = 16

var sessionIDLen = base64.RawURLEncoding.EncodedLen(sessionIDBytes)

func sessionKey(token string) []byte {
	// Derived from the token, so every instance behind a load balancer
	// accepts the others' sessions, and changing the token ends them all.
	// The label changed with the cookie's format: v1 cookies are refused.
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("recledger dashboard session v2"))
	return m.Sum(nil)
}

// tokenMatches compares digests, so neither the token's bytes nor its
// length show in the time it takes.
func (r *Rule) tokenMatches(got string) bool {
	token := r.token()
	if got == "" || token == "" {
		return false
	}
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// Login returns the session cookie for a client that typed token into the
// form req carries. A wrong token is counted against req's source like a
// wrong bearer token (and may wait out its back-off); the error is then
// ErrUnauthorized or ErrTooManyAttempts, wrapped in a *RetryError when it
// comes with a wait. The cookie holds an expiry, a random session id and
// their signature, never the token.
func (r *Rule) Login(req *http.Request, token string) (*http.Cookie, error) {
	if r.token() == "" {
		return nil, ErrUnauthorized
	}
	src := r.source(req)
	if wait := r.limiter.saturated(src); wait > 0 {
		return nil, &RetryError{ErrTooManyAttempts, wait}
	}
	if !r.tokenMatches(token) {
		return nil, r.limiter.fail(req.Context(), src)
	}
	var raw [sessionIDBytes]byte
	rand.Read(raw[:]) // never fails (crypto/rand panics instead)
	exp := r.opts.Now().Add(SessionLifetime)
	payload := "v2." + strconv.FormatInt(exp.Unix(), 10) + "." + base64.RawURLEncoding.EncodeToString(raw[:])
	return &http.Cookie{
		Name:     CookieName,
		Value:    payload + "." + r.sign(payload),
		Path:     "/",
		Expires:  exp,
		MaxAge:   int(SessionLifetime.Seconds()),
		Secure:   true, // browsers keep it on https and on http://localhost
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	}, nil
}

// Logout ends the session req's cookie holds, here at once and on every
// instance sharing the Revocations within their refresh, and returns the
// cookie that clears it from the browser. The error says the revocation
// could not be stored: it still holds on this instance.
func (r *Rule) Logout(req *http.Request) (*http.Cookie, error) {
	clear := &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode}
	s, ok := r.session(req)
	if !ok {
		return clear, nil // nothing valid to end
	}
	r.revoked.add(s.id, s.expires, true)
	if r.opts.Revocations == nil {
		return clear, nil
	}
	if err := r.opts.Revocations.RevokeSession(req.Context(), s.id, s.expires); err != nil {
		return clear, fmt.Errorf("store the logout: %w", err)
	}
	return clear, nil
}

func (r *Rule) sign(payload string) string {
	m := hmac.New(sha256.New, r.cred.Load().key)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

type session struct {
	id      string
	expires time.Time
}

// session returns the signed, unexpired session req's cookie holds.
func (r *Rule) session(req *http.Request) (session, bool) {
	if r.cred.Load().key == nil {
		return session{}, false
	}
	c, err := req.Cookie(CookieName)
	if err != nil {
		return session{}, false
	}
	i := strings.LastIndexByte(c.Value, '.')
	if i < 0 {
		return session{}, false
	}
	payload, mac := c.Value[:i], c.Value[i+1:]
	if !hmac.Equal([]byte(mac), []byte(r.sign(payload))) {
		return session{}, false
	}
	parts := strings.Split(payload, ".")
	if len(parts) != 3 || parts[0] != "v2" || len(parts[2]) != sessionIDLen {
		return session{}, false
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || r.opts.Now().Unix() >= exp {
		return session{}, false
	}
	return session{id: parts[2], expires: time.Unix(exp, 0)}, true
}

// validSession: a signed, unexpired session not revoked. The common path
// is the HMAC and one map lookup.
func (r *Rule) validSession(req *http.Request) bool {
	s, ok := r.session(req)
	return ok && !r.revoked.has(s.id)
}

// revokedSet is the revoked sessions this instance knows: the store's, as
// of the last refresh, and its own logouts (kept even when the store could
// not take them).
type revokedSet struct {
	mu    sync.RWMutex
	all   map[string]time.Time
	local map[string]time.Time
}

func (s *revokedSet) has(id string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.all[id]
	return ok
}

func (s *revokedSet) add(id string, until time.Time, local bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.all == nil {
		s.all = map[string]time.Time{}
	}
	if s.local == nil {
		s.local = map[string]time.Time{}
	}
	s.all[id] = until
	if local {
		s.local[id] = until
	}
}

// replace sets the store's list, keeps this instance's own logouts, and
// forgets what expired.
func (s *revokedSet) replace(stored map[string]time.Time, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, until := range s.local {
		if !now.Before(until) {
			delete(s.local, id)
			continue
		}
		if stored == nil {
			stored = map[string]time.Time{}
		}
		stored[id] = until
	}
	for id, until := range stored {
		if !now.Before(until) {
			delete(stored, id)
		}
	}
	s.all = stored
}

// Refresh rereads the revoked sessions from the store.
func (r *Rule) Refresh(ctx context.Context) error {
	if r.opts.Revocations == nil {
		return nil
	}
	now := r.opts.Now()
	stored, err := r.opts.Revocations.RevokedSessions(ctx, now)
	if err != nil {
		return fmt.Errorf("read revoked sessions: %w", err)
	}
	r.revoked.replace(stored, now)
	return nil
}

// Run refreshes the revoked sessions every RevocationRefresh until ctx
// ends; a failed refresh is logged and the last list kept.
func (r *Rule) Run(ctx context.Context) error {
	if r.opts.Revocations == nil {
		return nil
	}
	tick := time.NewTicker(r.opts.RevocationRefresh)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if r.token() == "" {
				continue // no sessions to revoke; a reload may set a token
			}
			if err := r.Refresh(ctx); err != nil && ctx.Err() == nil {
				r.opts.Logger.Warn("keeping the last list of logged-out sessions", "err", err)
			}
		}
	}
}

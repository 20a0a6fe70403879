// Package access decides who may read recledger's API and dashboard: with
// an API token, a client that presents it (as a bearer token, or as the
// dashboard's session cookie, which the token signs); without one, loopback
// clients only, not through a proxy, and only under a loopback or
// configured host name (so a rebound DNS name cannot reach it).
//
// Wrong tokens are paced per source (limit.go); sessions carry an id that
// logout revokes on every instance sharing the store (session.go).
package access

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"
)

// Errors of Check and Login; callers answer 401, 403 and 429. A wrong token
// comes wrapped in a *RetryError that says when to try again.
var (
	ErrUnauthorized = errors.New("a valid bearer token is required")
	ErrForbidden    = errors.New("without an API token only loopback clients are answered (not through a proxy); set --api-token")
	// ErrHost is an ErrForbidden: a loopback client asked under a host name
	// that is neither loopback nor configured, as a page on a rebound DNS
	// name would.
	ErrHost = &hostError{}
	// ErrTooManyAttempts: the source has as many wrong tokens waiting as
	// it may; answered at once.
	ErrTooManyAttempts = errors.New("too many wrong tokens from your address; retry later")
)

type hostError struct{}

func (*hostError) Error() string {
	return "without an API token only loopback host names are answered (localhost, 127.0.0.1, [::1]): " +
		"open it under one of those, or set --allowed-hosts NAME or --api-token"
}

func (*hostError) Is(target error) bool { return target == ErrForbidden }

// RetryError is a refusal that comes with a time to wait (Retry-After).
type RetryError struct {
	Err   error // ErrUnauthorized or ErrTooManyAttempts
	After time.Duration
}

func (e *RetryError) Error() string { return e.Err.Error() }
func (e *RetryError) Unwrap() error { return e.Err }

// RetryAfter returns how long err asks the client to wait, or 0.
func RetryAfter(err error) time.Duration {
	var re *RetryError
	if errors.As(err, &re) {
		return re.After
	}
	return 0
}

// forwardingHeaders mark a request a proxy passed on.
var forwardingHeaders = []string{"Forwarded", "X-Forwarded-For", "X-Real-Ip", "X-Client-Ip", "True-Client-Ip", "Cf-Connecting-Ip"}

func forwarded(req *http.Request) bool {
	for _, h := range forwardingHeaders {
		if len(req.Header.Values(h)) > 0 {
			return true
		}
	}
	return false
}

// Options configure a Rule; the zero value answers loopback clients only.
type Options struct {
	Token string // the API token; "" for loopback clients only
	Now   func() time.Time
	// TrustedProxies are the proxies whose X-Forwarded-For names the
	// client (see Proxies.Client): a wrong token is counted against it,
	// and Client gives it to logs.
	TrustedProxies Proxies
	// AllowedHosts are host names answered without a token besides the
	// loopback ones (ports ignored).
	AllowedHosts []string
	// Revocations, when set, is where logouts are kept for every instance;
	// without it a logout holds on this instance only.
	Revocations Revocations
	// RevocationRefresh is how often Run rereads the revocations (5 s).
	RevocationRefresh time.Duration
	Limits            Limits
	Logger            *slog.Logger
}

// Rule is the access rule for one API token ("" for loopback only).
type Rule struct {
	opts    Options // opts.Token is the first token only; cred is the one in force
	cred    atomic.Pointer[credential]
	hosts   map[string]bool
	limiter *limiter
	revoked revokedSet
}

// New returns the rule for token; now is the clock (time.Now when nil).
func New(token string, now func() time.Time) *Rule {
	return NewRule(Options{Token: token, Now: now})
}

// NewRule returns the rule o describes.
func NewRule(o Options) *Rule {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.RevocationRefresh <= 0 {
		o.RevocationRefresh = 5 * time.Second
	}
	r := &Rule{opts: o, hosts: map[string]bool{}, limiter: newLimiter(o.Limits, o.Now)}
	for _, h := range o.AllowedHosts {
		if h = hostName(h); h != "" {
			r.hosts[h] = true
		}
	}
	r.SetToken(o.Token)
	return r
}

// credential is the token in force and the session key derived from it,
// swapped as one so a request never sees one without the other.
type credential struct {
	token string
	key   []byte // signs session cookies; nil without a token
}

// SetToken puts token ("" for loopback clients only) in force from the next
// request on, as a server's configuration reload does. Sessions signed under
// another token end with it.
func (r *Rule) SetToken(token string) {
	c := &credential{token: token}
	if token != "" {
		c.key = sessionKey(token)
	}
	r.cred.Store(c)
}

func (r *Rule) token() string { return r.cred.Load().token }

// Client is req's client under the rule's trusted proxies.
func (r *Rule) Client(req *http.Request) Client { return r.opts.TrustedProxies.Client(req) }

// TokenRequired reports whether a token is configured.
func (r *Rule) TokenRequired() bool { return r.token() != "" }

// Check returns nil if req may read, else ErrUnauthorized, ErrForbidden
// (ErrHost among them) or ErrTooManyAttempts. A valid session cookie or
// the right bearer token passes at once; a wrong bearer token is counted
// against req's source and, past its budget, answered only after the
// source's back-off (Check sleeps).
func (r *Rule) Check(req *http.Request) error {
	if r.token() != "" {
		if r.validSession(req) {
			return nil
		}
		got := bearer(req)
		if got == "" {
			return ErrUnauthorized // nothing guessed: not counted
		}
		src := r.source(req)
		// A source with its quota of wrong tokens already waiting is
		// answered before its token is looked at: answering a wrong one at
		// once and a right one with 200 would tell it which is which at
		// full speed.
		if wait := r.limiter.saturated(src); wait > 0 {
			return &RetryError{ErrTooManyAttempts, wait}
		}
		if r.tokenMatches(got) {
			return nil
		}
		return r.limiter.fail(req.Context(), src)
	}
	return r.checkLoopback(req)
}

// Recheck returns nil if req, let in by Check when it began, would still be
// let in now, else ErrUnauthorized or ErrForbidden: for an answer that
// outlives a token changed by a reload, or a logout (an event stream). It
// counts nothing against the source and never waits: the credential was
// right when req began.
func (r *Rule) Recheck(req *http.Request) error {
	if r.token() != "" {
		if r.validSession(req) {
			return nil
		}
		if got := bearer(req); got != "" && r.tokenMatches(got) {
			return nil
		}
		return ErrUnauthorized
	}
	return r.checkLoopback(req)
}

// checkLoopback is the rule without a token: loopback clients, not through
// a proxy, under an allowed host name.
func (r *Rule) checkLoopback(req *http.Request) error {
	// A reverse proxy on the same host makes every client look local; a
	// request it forwarded is not a loopback client's.
	if forwarded(req) {
		return ErrForbidden
	}
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return ErrForbidden
	}
	// A page the operator opens may point its own name at 127.0.0.1 (DNS
	// rebinding) and read what loopback clients may: the browser sends that
	// name as Host.
	if !r.hostAllowed(req.Host) {
		return ErrHost
	}
	return nil
}

// hostAllowed reports whether host (a Host header) is a loopback name or
// address, or a configured name.
func (r *Rule) hostAllowed(host string) bool {
	h := hostName(host)
	if h == "" {
		return false
	}
	if h == "localhost" || strings.HasSuffix(h, ".localhost") || r.hosts[h] {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.Unmap().IsLoopback()
}

// hostName is host without its port and brackets, lowercased, without a
// trailing dot; "" when it is not a plausible host.
func hostName(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if strings.ContainsAny(host, "/\\@ \t\r\n") {
		return ""
	}
	return host
}

func bearer(req *http.Request) string {
	scheme, got, ok := strings.Cut(req.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return got
}

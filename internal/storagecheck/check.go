package storagecheck

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/recledger/recledger/internal/egress"
)

// State is a file's verification state, as CONTRACT.md names it.
type State string

// The states. Pending is the caller's: a file not yet checked, or whose
// last check was transient and will be retried.
const (
	Pending      State = "pending"
	Verified     State = "verified"
	Missing      State = "missing"
	SizeMismatch State = "size_mismatch"
	Unreachable  State = "unreachable"
)

// ErrNotAllowed is the error of a URL whose host is not on the list; no
// request was made.
var ErrNotAllowed = errors.New("storage host not on the allow-list")

// ErrNotHTTP is the error of a file URL that is not an http or https URL
// with a host (or that carries user info): no request was made, and
// listing a host would not change that.
var ErrNotHTTP = errors.New("not an http or https URL without user info")

// ErrRedirect is the error of a redirect Check would not follow.
var ErrRedirect = errors.New("redirect not followed")

// MaxRedirects is how many redirects one check follows.
const MaxRedirects = 3

// maxHeaderBytes bounds the headers of an answer Check reads: an object
// store's are a few hundred bytes, user metadata included.
const maxHeaderBytes = 64 << 10

// maxErrorBody bounds the error body of a refused ranged GET that Check
// reads, looking for S3's NoSuchKey.
const maxErrorBody = 1024

// Result is what one check found.
type Result struct {
	State       State
	HTTPStatus  int    // the last answer's status; 0 when none came
	Size        *int64 // the object's size as the storage reported it; nil when unknown
	ContentType string
	ETag        string
	CheckedAt   time.Time
	// Transient says the failure may pass (network error, timeout, 5xx,
	// 408, 429): the caller retries later (NextWait) and keeps the file
	// pending meanwhile; State is then Unreachable.
	Transient bool
	// RetryAfter is the wait the storage asked for with a 429 or 503, cut
	// to MaxRetryAfter; 0 when none.
	RetryAfter time.Duration
	// Err says why the state is not Verified; it never holds the URL's
	// query string or user info.
	Err error
}

// Options configure a Checker; zero fields take the defaults.
type Options struct {
	Hosts        Hosts
	AllowPrivate bool          // dial listed host names to non-public addresses too
	Timeout      time.Duration // per request (default 5 s)
	PerHost      int           // requests at once per host (default 4)
	RatePerHost  float64       // requests per second per host (default 10)
	Now          func() time.Time
	// Sleep waits d or until ctx ends (default a timer); tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
	// Transport is the base transport (default a fresh one dialling with
	// the address rules); tests may not replace the dial rules through it.
	Transport *http.Transport
}

// Checker checks uploaded files' URLs. It is safe for concurrent use.
type Checker struct {
	opts   Options
	client *http.Client
	limits *limits
}

// New returns a Checker with opts, defaults filled in.
func New(opts Options) *Checker {
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.PerHost <= 0 {
		opts.PerHost = 4
	}
	if opts.RatePerHost <= 0 {
		opts.RatePerHost = 10
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Sleep == nil {
		opts.Sleep = sleep
	}
	tr := opts.Transport
	if tr == nil {
		tr = &http.Transport{MaxIdleConnsPerHost: opts.PerHost, IdleConnTimeout: 30 * time.Second,
			TLSHandshakeTimeout: opts.Timeout, ResponseHeaderTimeout: opts.Timeout, ForceAttemptHTTP2: true}
	} else {
		tr = tr.Clone()
	}
	if tr.MaxResponseHeaderBytes <= 0 || tr.MaxResponseHeaderBytes > maxHeaderBytes {
		tr.MaxResponseHeaderBytes = maxHeaderBytes // Go's default is 10 MB per answer
	}
	tr.Proxy = nil // a proxy would dial for us, past the address rules
	tr.DisableCompression = true
	tr.DialContext = dialer(opts.Hosts, opts.AllowPrivate, opts.Timeout)
	c := &Checker{opts: opts, limits: newLimits(opts.PerHost, opts.RatePerHost, opts.Now, opts.Sleep)}
	c.client = &http.Client{Transport: tr, CheckRedirect: c.checkRedirect}
	return c
}

// dialer connects only as the address rules allow: a host listed as an
// IP address is dialled whatever the address; a name is resolved and
// dialled only to public addresses unless allowPrivate, the check made
// on the address connected to (egress.DialControl), so a listed name
// re-pointed at a private address is refused.
func dialer(hosts Hosts, allowPrivate bool, timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	literal := &net.Dialer{Timeout: timeout}
	named := &net.Dialer{Timeout: timeout, Control: egress.DialControl(allowPrivate, "--storage-allow-private")}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if _, err := netip.ParseAddr(host); err == nil {
			if !hosts.allowsAddr(addr) {
				return nil, fmt.Errorf("%w: %s", ErrNotAllowed, addr)
			}
			return literal.DialContext(ctx, network, addr)
		}
		return named.DialContext(ctx, network, addr)
	}
}

// checkRedirect follows at most MaxRedirects redirects, each to the same
// host name as the first request, on the list, and not down from https.
func (c *Checker) checkRedirect(req *http.Request, via []*http.Request) error {
	first, prev := via[0].URL, via[len(via)-1].URL
	switch {
	case len(via) > MaxRedirects:
		return fmt.Errorf("%w: more than %d redirects", ErrRedirect, MaxRedirects)
	case !strings.EqualFold(req.URL.Hostname(), first.Hostname()):
		return fmt.Errorf("%w: to another host, %s", ErrRedirect, req.URL.Hostname())
	case prev.Scheme == "https" && req.URL.Scheme != "https":
		return fmt.Errorf("%w: from https to %s", ErrRedirect, req.URL.Scheme)
	case !c.opts.Hosts.Allows(req.URL):
		return fmt.Errorf("%w: to %s, not on the allow-list", ErrRedirect, req.URL.Host)
	}
	return nil
}

// Check checks one file's URL. wantSize is RC's fileSize, nil when RC
// gave none. It never returns without a State.
func (c *Checker) Check(ctx context.Context, fileURL string, wantSize *int64) Result {
	u, err := url.Parse(fileURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return c.final(Result{}, fmt.Errorf("%s: %w", Redact(fileURL), ErrNotHTTP))
	}
	if !c.opts.Hosts.Allows(u) {
		return c.final(Result{}, fmt.Errorf("%w: %s", ErrNotAllowed, Redact(fileURL)))
	}
	hostKey, _ := key(u)
	release, err := c.limits.acquire(ctx, hostKey)
	if err != nil {
		return c.transient(Result{}, fmt.Errorf("waiting for %s: %w", u.Host, err))
	}
	defer release()

	resp, err := c.do(ctx, http.MethodHead, u)
	if err != nil {
		return c.failed(err, u)
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusForbidden, http.StatusMethodNotAllowed, http.StatusNotImplemented:
		// Presigned GET URLs refuse HEAD: ask for one byte instead.
		if err := c.limits.wait(ctx, hostKey); err != nil {
			return c.transient(Result{}, fmt.Errorf("waiting for %s: %w", u.Host, err))
		}
		resp, err = c.do(ctx, http.MethodGet, u)
		if err != nil {
			return c.failed(err, u)
		}
		defer resp.Body.Close()
		return c.judge(resp, ranged(resp), wantSize, u)
	}
	return c.judge(resp, resp.ContentLength, wantSize, u)
}

// do sends one request within the timeout. A GET asks for the first byte
// only; identity encoding keeps Content-Length the object's size.
func (c *Checker) do(ctx context.Context, method string, u *url.URL) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Accept-Encoding", "identity")
	req.Header.Set("User-Agent", "recledger-storagecheck")
	if method == http.MethodGet {
		req.Header.Set("Range", "bytes=0-0")
	}
	resp, err := c.client.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = cancelOnClose{resp.Body, cancel}
	return resp, nil
}

// cancelOnClose ends a request's timeout when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b cancelOnClose) Close() error { err := b.ReadCloser.Close(); b.cancel(); return err }

// ranged reads the size out of a ranged GET's answer, reading at most one
// byte of a 206 and none of a 200 (a server that ignored Range would send
// the whole file); -1 when unknown.
func ranged(resp *http.Response) int64 {
	switch resp.StatusCode {
	case http.StatusPartialContent:
		_, _ = io.CopyN(io.Discard, resp.Body, 1)
		if total, ok := parseContentRange(resp.Header.Get("Content-Range")); ok {
			return total
		}
		return -1
	case http.StatusRequestedRangeNotSatisfiable: // an empty object: "bytes */0"
		if total, ok := parseContentRange(resp.Header.Get("Content-Range")); ok {
			return total
		}
		return -1
	}
	return resp.ContentLength
}

// judge sorts an answer into a state.
func (c *Checker) judge(resp *http.Response, size int64, wantSize *int64, u *url.URL) Result {
	r := Result{HTTPStatus: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), ETag: resp.Header.Get("ETag")}
	code := resp.StatusCode
	ok := code >= 200 && code < 300 || code == http.StatusRequestedRangeNotSatisfiable && size >= 0
	if ok {
		if size >= 0 {
			r.Size = &size
		}
		r.CheckedAt = c.opts.Now()
		switch {
		case wantSize != nil && size >= 0 && size != *wantSize:
			r.State = SizeMismatch
			r.Err = fmt.Errorf("%s: the storage holds %d bytes, RC said %d", Redact(u.String()), size, *wantSize)
		default:
			r.State = Verified
		}
		return r
	}
	r.ContentType, r.ETag = "", ""
	switch {
	case code == http.StatusNotFound || code == http.StatusGone:
		r.State, r.CheckedAt = Missing, c.opts.Now()
		r.Err = fmt.Errorf("%s: HTTP %d", Redact(u.String()), code)
		return r
	case code == http.StatusForbidden && resp.Request.Method == http.MethodGet && noSuchKey(resp.Body):
		// S3 answers 403 for a missing key when the signer may not list
		// the bucket; only its body tells the two apart.
		r.State, r.CheckedAt = Missing, c.opts.Now()
		r.Err = fmt.Errorf("%s: HTTP 403 NoSuchKey", Redact(u.String()))
		return r
	case code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout:
		if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
			if wait, ok := egress.ParseRetryAfter(resp.Header.Get("Retry-After"), c.opts.Now(), MaxRetryAfter); ok {
				r.RetryAfter = min(wait, MaxRetryAfter)
			}
		}
		return c.transient(r, fmt.Errorf("%s: HTTP %d", Redact(u.String()), code))
	case code >= 300 && code < 400:
		return c.final(r, fmt.Errorf("%w: %s: HTTP %d", ErrRedirect, Redact(u.String()), code))
	}
	// 401, 403 without NoSuchKey, other 4xx: the storage refuses us; the
	// file may well be there, so it is not called missing.
	return c.final(r, fmt.Errorf("%s: HTTP %d", Redact(u.String()), code))
}

// noSuchKey reads at most maxErrorBody bytes of an S3 error body and
// reports whether it names NoSuchKey.
func noSuchKey(body io.Reader) bool {
	b, _ := io.ReadAll(io.LimitReader(body, maxErrorBody))
	return strings.Contains(string(b), "<Code>NoSuchKey</Code>")
}

// failed turns a request error into a result: a refused redirect or
// address is final, anything else (network, timeout) transient.
func (c *Checker) failed(err error, u *url.URL) Result {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // it holds the whole URL
	}
	err = fmt.Errorf("%s: %w", Redact(u.String()), describe(err))
	if errors.Is(err, ErrRedirect) || errors.Is(err, egress.ErrForbiddenAddress) || errors.Is(err, ErrNotAllowed) {
		return c.final(Result{}, err)
	}
	return c.transient(Result{}, err)
}

// errUnreadable stands for a transport error about the storage's answer
// itself: Go's words for those quote what the storage sent (a Location
// header that does not parse, a malformed header line), and a storage's
// redirect carries the presigned query on to its Location.
var errUnreadable = errors.New("the storage's answer could not be read (malformed, oversized or cut short)")

// describe keeps a request error's words where they cannot hold what the
// storage sent (the checker's own refusals, timeouts, dial and name
// errors: addresses and host names), and replaces the rest by
// errUnreadable.
func describe(err error) error {
	var (
		dnsErr  *net.DNSError
		opErr   *net.OpError
		certErr *tls.CertificateVerificationError
		tlsErr  tls.RecordHeaderError
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return fmt.Errorf("timed out or cancelled: %w", context.DeadlineExceeded)
	case errors.Is(err, ErrRedirect) || errors.Is(err, egress.ErrForbiddenAddress) || errors.Is(err, ErrNotAllowed):
		return err
	case errors.As(err, &dnsErr):
		return dnsErr
	case errors.As(err, &certErr): // the certificate's names, not the URL's
		return certErr
	case errors.As(err, &tlsErr):
		return errors.New("tls: the storage did not answer the TLS handshake with TLS")
	case errors.As(err, &opErr): // addresses and a system error
		return opErr
	}
	return errUnreadable
}

func (c *Checker) final(r Result, err error) Result {
	r.State, r.Err, r.CheckedAt = Unreachable, err, c.opts.Now()
	return r
}

func (c *Checker) transient(r Result, err error) Result {
	r = c.final(r, err)
	r.Transient = true
	return r
}

// parseContentRange reads the complete length out of a Content-Range
// header ("bytes 0-0/1234", "bytes */1234"); ok is false when it is
// missing, unknown ("/*") or malformed.
func parseContentRange(v string) (int64, bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !found {
		return 0, false
	}
	span, total, found := strings.Cut(rest, "/")
	if !found || total == "" || total[0] < '0' || total[0] > '9' {
		return 0, false
	}
	n, err := strconv.ParseInt(total, 10, 64)
	if err != nil {
		return 0, false
	}
	if span == "*" {
		return n, true
	}
	first, last, found := strings.Cut(span, "-")
	a, errA := strconv.ParseUint(first, 10, 63)
	b, errB := strconv.ParseUint(last, 10, 63)
	if !found || errA != nil || errB != nil || a > b || int64(b) >= n {
		return 0, false
	}
	return n, true
}

// Redact renders a URL for logs and errors: scheme, host and path only,
// no query (a presigned URL's query carries credentials), no user info,
// no fragment.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(an unreadable URL)"
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String()
}

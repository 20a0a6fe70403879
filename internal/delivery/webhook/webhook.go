// Package webhook makes one delivery attempt of an outbound event to an
// HTTP endpoint, the way Standard Webhooks v1 describes it
// (https://www.standardwebhooks.com): the webhook-id, webhook-timestamp
// and webhook-signature headers, signed with a shared secret (v1,
// HMAC-SHA256) and, where a destination asks for it, with an ed25519 key
// whose public half receivers can fetch (v1a, which the specification
// prefers: a receiver holding only the public key cannot forge messages).
//
// It knows how to sign an attempt, where an attempt may go (never to
// loopback, private or link-local addresses unless allowed, checked on
// the address actually dialled, so a name that resolves somewhere else
// later gains nothing), and what the answer means for the next attempt
// (Schedule). When to attempt, and in what order, is the dispatcher's
// business (internal/delivery).
package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/recledger/recledger/internal/egress"
)

// Outcome is what an attempt's answer means.
type Outcome int

// The outcomes.
const (
	// Failed: no answer, a timeout, or an answer other than 2xx; the
	// schedule decides whether and when to try again.
	Failed Outcome = iota
	// Delivered: a 2xx within the timeout.
	Delivered
	// Gone: 410 Gone, the receiver's way of saying "stop sending": the
	// destination is disabled.
	Gone
)

func (o Outcome) String() string {
	switch o {
	case Delivered:
		return "delivered"
	case Gone:
		return "gone"
	}
	return "failed"
}

// Attempt is the result of one delivery attempt.
type Attempt struct {
	Outcome Outcome
	Status  int           // the answer's status code; 0 when there was no answer
	Latency time.Duration // from sending to the end of the answer (or the failure)
	// RetryAfter is the wait a 429 or 503 answer asked for in its
	// Retry-After header; 0 when it asked for none.
	RetryAfter time.Duration
	// Response is the start of the answer's body (at most ExcerptBytes),
	// for the attempt log.
	Response []byte
	Err      error // why there was no usable answer; nil when there was one
}

// ErrNoKey is an attempt's error when its Signer has no secret and no
// key: a message is never sent unsigned.
var ErrNoKey = errors.New("webhook: nothing to sign with")

// ExcerptBytes is how much of an answer's body an Attempt keeps.
const ExcerptBytes = 1024

// Options configure a Client; the zero value is the documented default.
type Options struct {
	// AllowPrivate lets attempts reach loopback, private, link-local and
	// other non-public addresses (tests, development; the
	// --allow-private-destinations setting).
	AllowPrivate bool
	// Timeout bounds an attempt, the answer's body included (default 15 s:
	// a 2xx later than that is a failure).
	Timeout time.Duration
	// MaxResponseBytes is the most of an answer's body read (default 64
	// KiB); a longer answer is cut there, and its connection not reused.
	MaxResponseBytes int64
	UserAgent        string // default "recledger"
}

// Client makes attempts; it is safe for concurrent use.
type Client struct {
	http *http.Client
	o    Options
}

// New returns a Client.
func New(o Options) *Client {
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = 64 << 10
	}
	if o.UserAgent == "" {
		o.UserAgent = "recledger"
	}
	dialer := &net.Dialer{Timeout: o.Timeout, Control: DialControl(o.AllowPrivate)}
	transport := &http.Transport{
		Proxy:                  nil, // a proxy would dial on our behalf, past the address check
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConnsPerHost:    8,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    o.Timeout,
		ResponseHeaderTimeout:  o.Timeout,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &Client{o: o, http: &http.Client{
		Transport: transport,
		// A redirect is an answer, not a new destination: following it
		// would send the event (and its signature) to an address nobody
		// configured, past the address check of the URL.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Send makes one attempt: it POSTs body to url with the Standard Webhooks
// headers of message id at time at, signed by s.
func (c *Client) Send(ctx context.Context, url string, s Signer, id string, at time.Time, body []byte) Attempt {
	if len(s.Secrets) == 0 && s.Key == nil {
		// Receivers refuse it, so every retry would fail too.
		return Attempt{Err: ErrNoKey}
	}
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return Attempt{Err: fmt.Errorf("webhook request: %w", redact(err))}
	}
	for k, v := range s.Headers(id, at, body) {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", c.o.UserAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		return Attempt{Latency: time.Since(start), Err: fmt.Errorf("webhook attempt: %w", redact(err))}
	}
	defer resp.Body.Close()
	a := Attempt{Status: resp.StatusCode}
	excerpt, err := readAnswer(resp.Body, c.o.MaxResponseBytes)
	a.Latency, a.Response = time.Since(start), excerpt
	if err != nil {
		// The status came, the body did not finish within the timeout:
		// a 2xx that does not finish in time is not a delivery.
		a.Err = fmt.Errorf("webhook answer: %w", redact(err))
		return a
	}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		a.Outcome = Delivered
	case resp.StatusCode == http.StatusGone:
		a.Outcome = Gone
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		a.RetryAfter, _ = egress.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now(), MaxRetryAfter)
	}
	return a
}

// readAnswer reads at most limit bytes of an answer and keeps the first
// ExcerptBytes.
func readAnswer(r io.Reader, limit int64) ([]byte, error) {
	buf := make([]byte, 0, 512)
	lr := io.LimitReader(r, limit)
	chunk := make([]byte, 4096)
	for {
		n, err := lr.Read(chunk)
		if room := ExcerptBytes - len(buf); room > 0 {
			buf = append(buf, chunk[:min(n, room)]...)
		}
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// redact drops the URL from a net/http error: a destination's URL may
// carry a token in its query, and attempt errors are logged and shown.
func redact(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	if ue.Timeout() {
		return fmt.Errorf("timed out: %w", context.DeadlineExceeded)
	}
	return ue.Err
}

package dispatch

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"time"

	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/delivery/jetstream"
	"github.com/recledger/recledger/internal/delivery/webhook"
	"github.com/recledger/recledger/internal/egress"
)

// MinMaxAge is the shortest retention a nats destination may ask for: the
// shortest duplicates window (DuplicatesWindow).
const MinMaxAge = 48 * time.Hour

// ErrBadDestination wraps what Check finds wrong with a destination.
var ErrBadDestination = errors.New("bad destination")

// Check validates a destination before it is stored: its kind, its URL
// (no non-public address unless allowPrivate, no credentials), its keys
// and its filter.
func Check(d *delivery.Destination, allowPrivate bool) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadDestination, fmt.Sprintf(format, args...))
	}
	switch d.Kind {
	case delivery.Webhook:
		if _, err := webhook.CheckURL(d.URL, allowPrivate); err != nil {
			return fmt.Errorf("%w: %w", ErrBadDestination, err)
		}
		if len(d.Keys) == 0 {
			return bad("a webhook needs a secret (whsec_...) or a signing key (whsk_...)")
		}
		if _, err := Signer(d.Keys, time.Now()); err != nil {
			return fmt.Errorf("%w: %w", ErrBadDestination, err)
		}
		if d.Stream != "" || d.Prefix != "" {
			return bad("stream and prefix are for nats destinations")
		}
	case delivery.NATS:
		u, err := url.Parse(d.URL)
		switch {
		case err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Hostname() == "":
			return bad("want a nats:// or tls:// URL with a host")
		case u.User != nil:
			return bad("credentials in the URL would be shown with it")
		case len(d.Keys) > 0:
			return bad("nats destinations are not signed; give no secret")
		case d.MaxAge != 0 && d.MaxAge < MinMaxAge:
			return bad("a stream must keep messages at least %v (its duplicates window covers the retries)", MinMaxAge)
		}
		if ip, err := netip.ParseAddr(u.Hostname()); err == nil && !allowPrivate && !egress.Public(ip) {
			return bad("%s is not a public address (--allow-private-destinations allows it)", ip)
		}
		if err := (jetstream.Options{URL: d.URL, Stream: d.Stream, Prefix: d.Prefix}).Validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrBadDestination, err)
		}
	default:
		return bad("type %q: want webhook or nats", d.Kind)
	}
	if d.Kind != delivery.NATS && d.MaxAge != 0 {
		return bad("maxAge is for nats destinations")
	}
	if err := d.Filter.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadDestination, err)
	}
	return nil
}

// RedactURL shows a destination URL without its query's values, which may
// carry a token, and without credentials.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(an unreadable URL)"
	}
	u.User = nil
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{"REDACTED"}
		}
		u.RawQuery = q.Encode()
	}
	return u.String()
}

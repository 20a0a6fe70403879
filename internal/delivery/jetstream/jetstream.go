// Package jetstream publishes recledger's outbound events to a NATS
// JetStream stream: each event to <prefix>.<appKey>.<event type>, with the
// event's id as Nats-Msg-Id, so that a publish the dispatcher repeats
// (after a crash, a lost acknowledgement, a NATS restart) is stored once:
// the stream's Duplicates window is kept at least as long as the retries
// that could repeat one. A publish counts only once JetStream acknowledges
// it; until then the dispatcher keeps the event.
package jetstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Options configure a Publisher; the zero value is the documented default
// but for URL.
type Options struct {
	URL    string // e.g. nats://127.0.0.1:4222
	Stream string // the stream's name (default RECLEDGER)
	Prefix string // the subjects' first token (default recledger)
	// MaxAge is how long the stream keeps a message (default 7 days).
	MaxAge time.Duration
	// Duplicates is how long JetStream remembers a message id to drop a
	// repeat (default 48 hours: longer than the default retry schedule,
	// about 28 hours). At most MaxAge.
	Duplicates time.Duration
	// Timeout bounds connecting, and each publish until its
	// acknowledgement (default 10 s).
	Timeout time.Duration
	Name    string // the connection's name, shown by NATS (default recledger)
	// Dialer, when set, makes the connections (the dispatcher's refuses
	// non-public addresses unless they are allowed).
	Dialer *net.Dialer
}

func (o *Options) defaults() error {
	if o.URL == "" {
		return errors.New("jetstream: a URL is required")
	}
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&o.Stream, "RECLEDGER")
	def(&o.Prefix, "recledger")
	def(&o.Name, "recledger")
	if o.MaxAge <= 0 {
		o.MaxAge = 7 * 24 * time.Hour
	}
	if o.Duplicates <= 0 {
		o.Duplicates = min(48*time.Hour, o.MaxAge)
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	switch {
	case o.Duplicates > o.MaxAge:
		return fmt.Errorf("jetstream: the duplicates window (%v) is longer than the stream keeps messages (%v)", o.Duplicates, o.MaxAge)
	case !validToken(o.Prefix):
		return fmt.Errorf("jetstream: subject prefix %q: want one token without '.', '*', '>' or spaces", o.Prefix)
	case strings.ContainsAny(o.Stream, ". *>\t\r\n/\\"):
		return fmt.Errorf("jetstream: stream name %q: no '.', '*', '>', '/', '\\' or spaces", o.Stream)
	}
	return nil
}

// Validate reports options Open would refuse, without connecting.
func (o Options) Validate() error { return o.defaults() }

// Publisher publishes to one stream; it is safe for concurrent use.
type Publisher struct {
	nc *nats.Conn
	js jetstream.JetStream
	o  Options
}

// Open connects and makes sure the stream exists and takes the prefix's
// subjects, keeping messages at least MaxAge and ids at least Duplicates.
// An existing stream of that name keeps its other subjects and settings,
// and longer ones (they are raised, never lowered); one that does not take
// the prefix's subjects is an error rather than something to rewrite.
func Open(ctx context.Context, o Options) (*Publisher, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.Timeout(o.Timeout),
		nats.MaxReconnects(-1), // a NATS restart is waited out, not fatal
		nats.ReconnectWait(time.Second),
		// No buffering while disconnected: a publish then fails at once and
		// the dispatcher retries it later, instead of waiting in a buffer
		// for an acknowledgement until the timeout.
		nats.ReconnectBufSize(-1),
	}
	if o.Dialer != nil {
		opts = append(opts, nats.SetCustomDialer(o.Dialer))
	}
	nc, err := nats.Connect(o.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	p := &Publisher{nc: nc, js: js, o: o}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if err := p.ensure(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	return p, nil
}

func (p *Publisher) ensure(ctx context.Context) error {
	want := p.o.Prefix + ".>"
	s, err := p.js.Stream(ctx, p.o.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = p.js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        p.o.Stream,
			Description: "recledger's outbound events",
			Subjects:    []string{want},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      p.o.MaxAge,
			Duplicates:  p.o.Duplicates,
		})
		if err != nil {
			return fmt.Errorf("create stream %s: %w", p.o.Stream, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("stream %s: %w", p.o.Stream, err)
	}
	cfg := s.CachedInfo().Config
	if !slices.Contains(cfg.Subjects, want) && !slices.Contains(cfg.Subjects, ">") {
		return fmt.Errorf("stream %s exists without the subjects %s (it has %s): name another stream, or add them",
			p.o.Stream, want, strings.Join(cfg.Subjects, ", "))
	}
	// Raise, never lower: an operator may keep the stream's messages
	// longer (MaxAge 0 keeps them for ever), and another instance may run
	// with longer settings; shortening them would delete messages.
	changed := false
	if cfg.MaxAge != 0 && cfg.MaxAge < p.o.MaxAge {
		cfg.MaxAge, changed = p.o.MaxAge, true
	}
	if cfg.Duplicates < p.o.Duplicates {
		cfg.Duplicates, changed = p.o.Duplicates, true
	}
	if !changed {
		return nil
	}
	if _, err := p.js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("update stream %s: %w", p.o.Stream, err)
	}
	return nil
}

// Message is one event to publish.
type Message struct {
	ID     string // the event's id: Nats-Msg-Id
	AppKey string
	Type   string // the event's type, e.g. recording.completed
	Body   []byte
}

// Subject is where m is published: <prefix>.<appKey>.<type>, the appKey
// escaped (Token) so that no appKey adds a token or a wildcard.
func (p *Publisher) Subject(m Message) string {
	return p.o.Prefix + "." + Token(m.AppKey) + "." + m.Type
}

// Publish publishes m and waits for JetStream's acknowledgement.
// duplicate is true when JetStream already held a message of m's id
// (within the Duplicates window): m is stored once either way.
func (p *Publisher) Publish(ctx context.Context, m Message) (duplicate bool, err error) {
	if m.ID == "" {
		return false, errors.New("jetstream: a message needs an id")
	}
	for t := range strings.SplitSeq(m.Type, ".") {
		if !validToken(t) {
			return false, fmt.Errorf("jetstream: event type %q is not a subject", m.Type)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, p.o.Timeout)
	defer cancel()
	ack, err := p.js.PublishMsg(ctx, &nats.Msg{
		Subject: p.Subject(m),
		Header:  nats.Header{jetstream.MsgIDHeader: []string{m.ID}},
		Data:    m.Body,
	}, jetstream.WithExpectStream(p.o.Stream))
	if err != nil {
		return false, fmt.Errorf("publish %s: %w", m.ID, err)
	}
	return ack.Duplicate, nil
}

// Close closes the connection.
func (p *Publisher) Close() { p.nc.Close() }

// Token escapes s as one subject token: bytes outside printable ASCII,
// and '.', '*', '>', '%', as %XX; an empty s as "%" (which no escaped
// text is, every % in one being followed by two hex digits).
func Token(s string) string {
	if s == "" {
		return "%"
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '.' || c == '*' || c == '>' || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func validToken(t string) bool {
	return t != "" && !strings.ContainsAny(t, ".*> \t\r\n") && strings.IndexFunc(t, func(r rune) bool { return r < ' ' || r >= 0x7f }) < 0
}

package dispatch

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/delivery/jetstream"
	"github.com/recledger/recledger/internal/delivery/webhook"
)

// Sender makes one attempt to hand an event to one destination.
type Sender interface {
	Send(ctx context.Context, e *delivery.Stored) webhook.Attempt
	Close()
}

// Senders opens the sender of a destination.
type Senders func(d *delivery.Destination) (Sender, error)

// DefaultSenders sends webhooks with one shared client and publishes to
// NATS with a connection per destination, both refusing non-public
// addresses unless allowPrivate; the retry schedule is the default one.
func DefaultSenders(allowPrivate bool, now func() time.Time) Senders {
	return SendersFor(allowPrivate, now, webhook.Schedule{})
}

// SendersFor is DefaultSenders for a retry schedule: a NATS stream
// remembers message ids (Duplicates) for at least as long as the schedule
// retries, an hour more, so a retry of a message that was stored after all
// (its acknowledgement lost) is still dropped; and keeps messages at least
// that long.
func SendersFor(allowPrivate bool, now func() time.Time, schedule webhook.Schedule) Senders {
	client := webhook.New(webhook.Options{AllowPrivate: allowPrivate})
	dup := DuplicatesWindow(schedule)
	return func(d *delivery.Destination) (Sender, error) {
		switch d.Kind {
		case delivery.Webhook:
			signer, err := Signer(d.Keys, now())
			if err != nil {
				return nil, err
			}
			return &webhookSender{client: client, url: d.URL, signer: signer, now: now}, nil
		case delivery.NATS:
			maxAge := d.MaxAge
			if maxAge == 0 {
				maxAge = 7 * 24 * time.Hour
			}
			return &natsSender{o: jetstream.Options{URL: d.URL, Stream: d.Stream, Prefix: d.Prefix, Duplicates: dup, MaxAge: max(dup, maxAge),
				Dialer: &net.Dialer{Timeout: 10 * time.Second, Control: webhook.DialControl(allowPrivate)}}}, nil
		}
		return nil, fmt.Errorf("destination kind %q", d.Kind)
	}
}

// DuplicatesWindow is how long a NATS stream must remember message ids for
// schedule: all its waits, jitter included, and an hour, but at least
// MinMaxAge. NATS sends no Retry-After, so the schedule is all.
func DuplicatesWindow(schedule webhook.Schedule) time.Duration {
	return max(MinMaxAge, schedule.Longest()+time.Hour)
}

// Signer is the webhook signer of a destination's keys at now: the
// current ones and those rotated out less than their expiry ago.
func Signer(keys []delivery.Key, now time.Time) (webhook.Signer, error) {
	var s webhook.Signer
	for _, k := range keys {
		if k.Expires != 0 && k.Expires <= now.UnixMilli() {
			continue
		}
		switch {
		case strings.HasPrefix(k.Secret, webhook.SecretPrefix):
			sec, err := webhook.ParseSecret(k.Secret)
			if err != nil {
				return s, err
			}
			s.Secrets = append(s.Secrets, sec)
		case strings.HasPrefix(k.Secret, webhook.PrivateKeyPrefix):
			kp, err := webhook.ParseKeyPair(k.Secret)
			if err != nil {
				return s, err
			}
			if s.Key == nil { // the newest (first) key signs
				s.Key = &kp
			}
		default:
			return s, fmt.Errorf("a key that is neither %s nor %s", webhook.SecretPrefix, webhook.PrivateKeyPrefix)
		}
	}
	return s, nil
}

type webhookSender struct {
	client *webhook.Client
	url    string
	signer webhook.Signer
	now    func() time.Time
}

func (w *webhookSender) Send(ctx context.Context, e *delivery.Stored) webhook.Attempt {
	return w.client.Send(ctx, w.url, w.signer, e.ID, w.now(), e.Payload)
}

func (w *webhookSender) Close() {}

// natsSender connects on first use, and again after a failed connection
// (a NATS server that is down when recledger starts, or restarted).
type natsSender struct {
	o  jetstream.Options
	mu sync.Mutex
	p  *jetstream.Publisher
}

func (n *natsSender) publisher(ctx context.Context) (*jetstream.Publisher, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.p != nil {
		return n.p, nil
	}
	p, err := jetstream.Open(ctx, n.o)
	if err != nil {
		return nil, err
	}
	n.p = p
	return p, nil
}

func (n *natsSender) Send(ctx context.Context, e *delivery.Stored) webhook.Attempt {
	start := time.Now()
	p, err := n.publisher(ctx)
	if err != nil {
		return webhook.Attempt{Latency: time.Since(start), Err: err}
	}
	if _, err := p.Publish(ctx, jetstream.Message{ID: e.ID, AppKey: e.AppKey, Type: string(e.Type), Body: e.Payload}); err != nil {
		return webhook.Attempt{Latency: time.Since(start), Err: err}
	}
	return webhook.Attempt{Outcome: webhook.Delivered, Latency: time.Since(start)}
}

func (n *natsSender) Close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.p != nil {
		n.p.Close()
		n.p = nil
	}
}

package delivery

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"
)

// Kind is a destination's kind.
type Kind string

// The destination kinds.
const (
	Webhook Kind = "webhook" // Standard Webhooks over HTTPS
	NATS    Kind = "nats"    // a NATS JetStream stream
)

// Destination is where events go, and how far they have gone.
type Destination struct {
	ID          string `json:"id"`
	Kind        Kind   `json:"type"`
	URL         string `json:"url"`
	Description string `json:"description,omitempty"`
	Filter
	// Stream and Prefix: a nats destination's stream and subject prefix
	// (jetstream's defaults when empty).
	Stream string `json:"stream,omitempty"`
	Prefix string `json:"prefix,omitempty"`
	// MaxAge is how long a nats destination's stream keeps messages (at
	// least what the retry schedule needs, and 7 days when 0).
	MaxAge time.Duration `json:"maxAge,omitempty"`
	// Keys sign a webhook destination's messages: whsec_ secrets (v1) and
	// at most one whsk_ key (v1a), as their revealed text. A key being
	// rotated out has Expires (Unix ms): it signs beside the new one
	// until then.
	Keys []Key `json:"keys,omitempty"`

	Enabled        bool   `json:"enabled"`
	DisabledReason string `json:"disabledReason,omitempty"`
	// FailingSince is when its attempts began to fail without a success
	// since (Unix ms; 0 when its last attempt succeeded).
	FailingSince int64 `json:"failingSince,omitempty"`
	CreatedAt    int64 `json:"createdAt"`
	// Cursor is the outbox seq up to which every event was delivered,
	// left out by the filter, held for a retry, or dead.
	Cursor int64 `json:"cursor"`
}

// Key is a signing key of a webhook destination.
type Key struct {
	Secret  string `json:"secret"`            // whsec_... or whsk_...
	Expires int64  `json:"expires,omitempty"` // Unix ms; 0 while current
}

// RotationOverlap is how long a replaced key keeps signing beside the new
// one, so receivers can switch without refusing a message.
const RotationOverlap = 24 * time.Hour

// Rotate returns keys with secret first and the keys of old that still
// sign after now behind it, each current one now expiring RotationOverlap
// from now (a copy of secret among them is dropped).
func Rotate(old []Key, secret string, now time.Time) []Key {
	keys := []Key{{Secret: secret}}
	for _, k := range old {
		if k.Expires == 0 {
			k.Expires = now.Add(RotationOverlap).UnixMilli()
		}
		if k.Expires > now.UnixMilli() && k.Secret != secret {
			keys = append(keys, k)
		}
	}
	return keys
}

// Stored is an event in the outbox.
type Stored struct {
	Seq         int64
	ID          string
	Type        Type
	RecordID    string
	AppKey      string
	RoomID      string
	At          int64 // when it was derived (Unix ms)
	CommittedAt int64 // when its projection step committed (Unix ms; the server clock)
	Payload     []byte
}

// Held is an event a destination holds back for one recording: the first
// of them failed and waits for a retry (NextAt), the others wait behind it
// (NextAt 0), so a recording's events arrive in order.
type Held struct {
	Seq        int64  `json:"seq"`
	RecordID   string `json:"recordId"`
	Attempts   int    `json:"attempts"`
	NextAt     int64  `json:"nextAt,omitempty"` // Unix ms; 0 while waiting behind another
	LastStatus int    `json:"lastStatus,omitempty"`
	LastError  string `json:"lastError,omitempty"`
}

// DeadLetter is an event a destination gave up on.
type DeadLetter struct {
	Seq        int64  `json:"seq"`
	EventID    string `json:"eventId"`
	Type       Type   `json:"type"`
	RecordID   string `json:"recordId"`
	Attempts   int    `json:"attempts"`
	LastStatus int    `json:"lastStatus,omitempty"`
	LastError  string `json:"lastError,omitempty"`
	DeadAt     int64  `json:"deadAt"`
}

// AttemptRecord is one attempt as the attempt log keeps it.
type AttemptRecord struct {
	At        int64  `json:"at"` // Unix ms
	Seq       int64  `json:"seq"`
	EventID   string `json:"eventId"`
	Type      Type   `json:"type"`
	Outcome   string `json:"outcome"` // delivered, failed, gone
	Status    int    `json:"status,omitempty"`
	LatencyMs int64  `json:"latencyMs"`
	Error     string `json:"error,omitempty"`
}

// Progress is what a dispatcher commits after a round of attempts, in one
// transaction, only while it holds the destination's lease.
type Progress struct {
	Destination string
	Owner       string // the lease holder
	Cursor      int64  // the new cursor; 0 leaves it
	Hold        []Held // held events, new or with a new attempt count
	Release     []int64
	Dead        []DeadLetter // taken from the held ones
	Attempts    []AttemptRecord
	// FailingSince, when not nil, sets Destination.FailingSince.
	FailingSince *int64
	// Disable, when not empty, disables the destination for this reason,
	// and Announce (its DestinationDisabled event) is added to the outbox
	// for the other destinations.
	Disable  string
	Announce *Stored
}

// Store keeps destinations and their progress beside the outbox the
// projection engine writes.
type Store interface {
	// AddDestination stores d, its cursor at the outbox's current end: a
	// destination receives what happens after it was added.
	AddDestination(ctx context.Context, d *Destination) error
	Destinations(ctx context.Context) ([]Destination, error)
	// Destination returns one, or ErrNoDestination.
	Destination(ctx context.Context, id string) (Destination, error)
	// UpdateDestination stores what a user may change (everything but the
	// id, the creation time and the cursor); re-enabling clears the
	// failure state.
	UpdateDestination(ctx context.Context, d *Destination) error
	// RemoveDestination removes it with its held events, dead letters and
	// attempts.
	RemoveDestination(ctx context.Context, id string) error

	// Lease makes owner the destination's dispatcher until until (Unix ms)
	// if nobody else holds it past now; it reports whether owner holds it.
	Lease(ctx context.Context, id, owner string, now, until int64) (bool, error)
	// Outbox returns up to limit events after seq after, in order.
	Outbox(ctx context.Context, after int64, limit int) ([]Stored, error)
	// OutboxEnd returns the newest event's seq (0 when none was stored).
	OutboxEnd(ctx context.Context) (int64, error)
	// OutboxEvents returns the events of the seqs given (those still kept).
	OutboxEvents(ctx context.Context, seqs []int64) (map[int64]Stored, error)
	// Commit stores a round's progress, or fails with ErrLeaseLost.
	Commit(ctx context.Context, p *Progress) error
	Held(ctx context.Context, id string) ([]Held, error)
	DeadLetters(ctx context.Context, id string, limit int) ([]DeadLetter, error)
	// Redeliver moves dead letters (all when seqs is empty) back to be
	// held, due now, and returns how many it moved.
	Redeliver(ctx context.Context, id string, seqs []int64, now int64) (int, error)
	// Attempts returns the newest attempts first.
	Attempts(ctx context.Context, id string, limit int) ([]AttemptRecord, error)
	// PruneOutbox removes events committed before before that no
	// destination holds or keeps as a dead letter, and returns how many.
	PruneOutbox(ctx context.Context, before int64) (int64, error)
}

// ValidID reports whether id could be a destination's: short, UTF-8, no
// control characters. Callers answer "not found" for any other without
// asking a store (PostgreSQL refuses NUL bytes in a query).
func ValidID(id string) bool { return len(id) <= 256 && PlainText(id) }

// PlainText reports whether s is UTF-8 without control characters: what a
// destination's ids and settings may hold.
func PlainText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// ErrNoDestination is returned for a destination id not stored.
var ErrNoDestination = errors.New("no such destination")

// ErrLeaseLost is returned by Store.Commit when the owner no longer holds
// the destination's lease: another instance serves it now.
var ErrLeaseLost = errors.New("the destination's lease is held by another instance")

// Source is a store that keeps an outbox.
type Source interface {
	Delivery() Store
	// Announce turns the outbox on (some destination exists) or off.
	Announce(on bool)
	// Announced receives after a projection step committed events.
	Announced() <-chan struct{}
}

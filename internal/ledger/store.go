package ledger

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/recledger/recledger/rc"
)

// ErrNotFound is returned by a Store for an unknown recording.
var ErrNotFound = errors.New("not found")

// Incoming is one verified, parsed callback to append to the log.
type Incoming struct {
	Callback   rc.Callback
	ReceivedAt time.Time
}

// Appended is what the log made of an Incoming. Whether it is a duplicate
// is decided after the acknowledgement, as it is projected (Event.Duplicate).
type Appended struct {
	Seq int64 // its feed seq, where the log numbers rows as it commits them; else 0
}

// Rejection is a refused request kept for inspection.
type Rejection struct {
	ID     int64  `json:"id"`
	At     int64  `json:"at"`     // server clock, Unix ms
	Status int    `json:"status"` // the HTTP status answered
	Reason string `json:"reason"` // the error code answered, e.g. "bad_signature"
	// AppKey is the app key the request claimed (rc.ClaimedAppKey), ""
	// when it named none: which app a wrong secret or an unknown key is
	// about. The sender chose it; see Printable.
	AppKey   string      `json:"appKey"`
	Message  string      `json:"message"`
	Remote   string      `json:"remote"`
	Method   string      `json:"method"`
	Path     string      `json:"path"`
	Header   http.Header `json:"header"`   // signature values masked
	Body     []byte      `json:"body"`     // at most MaxQuarantineBody bytes of it
	BodySize int64       `json:"bodySize"` // the body's full size as read
}

// MaxQuarantineBody bounds how much of a refused body is kept.
const MaxQuarantineBody = 64 << 10

// Store keeps the raw callback log, the projections derived from it
// through Apply, the verifier's replay memory and the quarantine. Every
// backend passes ledgertest.ExerciseStore.
type Store interface {
	// Append stores the callback durably: when it returns nil the callback
	// survives a crash or power loss (as the backend's durability setting
	// promises), and every read issued afterwards includes it. A callback
	// whose rc.Key is already in the log is stored, marked duplicate when
	// projected, and changes nothing else.
	Append(ctx context.Context, in Incoming) (Appended, error)

	// ReplayMemory remembers verified signatures durably, so the check
	// holds across restarts (and, on a shared database, across instances).
	rc.ReplayMemory

	// Quarantine keeps a refused request, within the store's caps (the
	// oldest go first).
	Quarantine(ctx context.Context, r Rejection) error

	// Recording returns the state of one recording, or ErrNotFound.
	Recording(ctx context.Context, recordID string) (State, error)
	// ListRecordings returns a page of the recordings f selects. Pages are
	// stable under concurrent inserts: following Next from the first page
	// never repeats or skips a recording that existed when it was read.
	ListRecordings(ctx context.Context, f RecordingFilter) (RecordingPage, error)
	// ListFiles returns a page of the files f selects across recordings
	// (see FilePage for the order). Like ListRecordings' pages, following
	// Next never repeats or skips a file that existed when the first page
	// was read.
	ListFiles(ctx context.Context, f FileFilter) (FilePage, error)
	// CountRecordings counts the recordings f selects on all its pages
	// (f's Cursor and Limit are ignored), stopping at upTo: the answer
	// upTo means upTo or more. The bound keeps a broad filter cheap on
	// millions of recordings.
	CountRecordings(ctx context.Context, f RecordingFilter, upTo int) (int64, error)
	// FileRecordings returns the recordings holding a file of that name,
	// newest first (RC's names are unique in practice; empty when unknown).
	FileRecordings(ctx context.Context, fileName string) ([]State, error)
	// RecordingEvents returns a recording's callbacks, duplicates included,
	// in arrival order.
	RecordingEvents(ctx context.Context, recordID string) ([]Event, error)
	// Events returns up to limit events with Seq > after, in arrival order.
	Events(ctx context.Context, after int64, limit int) ([]Event, error)
	// LatestEvents returns the newest n events, in arrival order.
	LatestEvents(ctx context.Context, n int) ([]Event, error)
	// QuarantineList returns up to limit rejections with ID < before
	// (0: the newest), newest first.
	QuarantineList(ctx context.Context, before int64, limit int) ([]Rejection, error)

	// Stats counts what the metrics show, at the server time now.
	Stats(ctx context.Context, now time.Time) (Stats, error)
	// Activity returns the minutes from since (Unix ms) on in which
	// anything arrived, oldest first; minutes older than ActivityKept may
	// be gone.
	Activity(ctx context.Context, since int64) ([]Minute, error)

	// Rebuild discards every projection and derives them again from the
	// raw log; it returns how many events it applied.
	Rebuild(ctx context.Context) (int64, error)

	// Ping reports whether the store can be written.
	Ping(ctx context.Context) error
	// Close stops accepting work, finishes what was accepted and releases
	// the store.
	Close() error
}

// Errors of ListRecordings' arguments.
var (
	ErrBadCursor = errors.New("invalid cursor") // a cursor the store did not issue
	ErrBadLimit  = errors.New("invalid limit")  // outside 1 to MaxPage
)

// RecordingFilter selects recordings; zero fields match every recording.
type RecordingFilter struct {
	AppKey    string
	RoomID    string
	SessionID string
	UserID    string
	// RecordIDPrefix selects the recordIds that start so (the CLI's short
	// ids): all of them, however many recordings the ledger holds.
	RecordIDPrefix string
	Status         Status
	// UploadState selects by the recordings' upload state at Now (the
	// server clock; time.Now when zero), overdue included.
	UploadState UploadState
	// Verification selects the recordings with at least one file whose
	// storage check is in that state.
	Verification VerificationState
	// Finding selects the recordings with a completeness finding of that
	// kind at Now (FindingAny: of any kind).
	Finding FindingKind
	// FindingRules are the limits Finding is judged by (the server's
	// --max-recording-length); not part of what a cursor pins.
	FindingRules FindingRules
	Now          time.Time
	Mode         *rc.Mode
	Since        *int64 // Unix ms, on startedAt, or firstSeenAt before a start arrived
	Until        *int64 // inclusive
	Limit        int    // 1 to MaxPage; DefaultPage when 0
	Cursor       string // from the previous page's Next
}

// Page sizes of ListRecordings.
const (
	DefaultPage = 50
	MaxPage     = 500
)

// RecordingPage is one page of recordings, newest (most recently first
// seen) first. Next is empty on the last page.
type RecordingPage struct {
	Items []State
	Next  string
}

// Stats are the ledger's totals for monitoring.
type Stats struct {
	RecordingsByStatus map[Status]int64
	RecordingsByUpload map[UploadState]int64 // overdue at the time Stats was given
	FilesPending       int64                 // known files not uploaded yet
	FilesOverdue       int64                 // of those, in recordings that ended over OverdueAfter ago
	QuarantineCount    int64
	QuarantineBytes    int64
	LoggedSeq          int64 // newest event in the log
	ProjectedSeq       int64 // newest event in the projections
}

// Minute counts what arrived in one minute of the server's clock.
type Minute struct {
	Start      int64 `json:"start"`      // Unix ms, a multiple of 60,000
	Callbacks  int64 `json:"callbacks"`  // stored and answered 200, duplicates included
	Duplicates int64 `json:"duplicates"` // of those, redeliveries
	Rejected   int64 `json:"rejected"`   // refused and quarantined
}

// ActivityKept is how long stores keep the per-minute counts.
const ActivityKept = 7 * 24 * time.Hour

// MinuteOf returns the start of the minute holding the Unix ms t.
func MinuteOf(t int64) int64 { return t - t%60_000 }

// MinuteCounter adds up a batch's arrivals per minute, for a store to add
// to its counts in the batch's transaction. The zero value is empty.
type MinuteCounter struct {
	minutes []Minute // a batch spans one minute, rarely two: a slice is enough
}

// Stored counts a callback stored at receivedAt (Unix ms).
func (c *MinuteCounter) Stored(receivedAt int64, duplicate bool) {
	m := c.at(receivedAt)
	m.Callbacks++
	if duplicate {
		m.Duplicates++
	}
}

// Rejected counts a request refused at (Unix ms).
func (c *MinuteCounter) Rejected(at int64) { c.at(at).Rejected++ }

func (c *MinuteCounter) at(t int64) *Minute {
	start := MinuteOf(t)
	for i := range c.minutes {
		if c.minutes[i].Start == start {
			return &c.minutes[i]
		}
	}
	c.minutes = append(c.minutes, Minute{Start: start})
	return &c.minutes[len(c.minutes)-1]
}

// Minutes returns the counts, oldest first.
func (c *MinuteCounter) Minutes() []Minute {
	slices.SortFunc(c.minutes, func(a, b Minute) int { return cmp.Compare(a.Start, b.Start) })
	return c.minutes
}

// TotalKey is one cell of the ledger's totals: recordings by status and by
// upload state without overdue (which depends on the clock, so stores work
// it out when they read).
type TotalKey struct {
	Status Status
	Upload UploadState
}

// Total is what a cell holds.
type Total struct {
	Recordings   int64
	PendingFiles int64 // known files not uploaded
}

// TotalsChange is how a batch of projections moves the totals, for a store
// to add to its counts in the same transaction: the totals then never
// need a pass over every recording.
type TotalsChange map[TotalKey]Total

// Move records that a recording went from before to after; a before with
// no RecordID is a recording that did not exist.
func (c TotalsChange) Move(before, after State) {
	if before.RecordID != "" {
		c.add(before, -1)
	}
	if after.RecordID != "" {
		c.add(after, 1)
	}
}

func (c TotalsChange) add(s State, sign int64) {
	k := TotalKey{Status: s.Status(), Upload: s.BaseUploadState()}
	t := c[k]
	t.Recordings += sign
	t.PendingFiles += sign * int64(len(s.Files)-s.UploadedCount())
	c[k] = t
}

// Cells returns the cells that changed, in a fixed order (stores lock rows
// in it), without the ones whose changes cancelled out.
func (c TotalsChange) Cells() []TotalKey {
	keys := make([]TotalKey, 0, len(c))
	for k, t := range c {
		if t != (Total{}) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b TotalKey) int {
		if n := cmp.Compare(a.Status, b.Status); n != 0 {
			return n
		}
		return cmp.Compare(a.Upload, b.Upload)
	})
	return keys
}

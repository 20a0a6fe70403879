// Package engine is the projection engine both stores drive. The
// acknowledged commit only appends a callback's bytes to the log; the
// engine then tails the log in commit order from a durable watermark and
// does, once for every backend: duplicate marking, the fold (ledger.Apply),
// totals, per-minute activity counts, each recording's event index, feed
// positions, and the rebuild from the log. Stores are drivers behind the
// narrow Driver interface: they read log rows, load and save records, and
// keep the watermark, each in its own SQL dialect.
package engine

import (
	"context"
	"errors"

	"github.com/recledger/recledger/internal/ledger"
)

// LogPos is a row's place in the log's commit order. SQLite has one
// writer, so its rowid alone orders the log (Tx is 0). PostgreSQL orders
// rows by the id of the transaction that wrote them, then by row id, and
// shows a reader only rows of transactions older than every transaction
// still running, so no row can later appear behind a position read.
type LogPos struct {
	Tx uint64
	ID int64
}

// Less reports whether p comes before q in the log.
func (p LogPos) Less(q LogPos) bool {
	if p.Tx != q.Tx {
		return p.Tx < q.Tx
	}
	return p.ID < q.ID
}

// Position is how far the projections have come: the last log row applied
// and the feed seq it was given.
type Position struct {
	Seq int64
	Log LogPos
}

// Row is one logged callback as the log gives it back.
type Row struct {
	Log LogPos
	// Seq is the row's feed seq when the log itself numbers rows gaplessly
	// in commit order (SQLite: the rowid); 0 when the engine numbers them
	// as it projects (PostgreSQL).
	Seq        int64
	ReceivedAt int64  // server clock, Unix ms
	Body       []byte // as the log stores it (logbody.Encode)
}

// Logged is a log row's entry in the feed, as the engine saw it.
type Logged struct {
	Seq        int64
	Log        LogPos
	RecordID   string // empty when the body no longer parses
	Duplicate  bool
	ReceivedAt int64
}

// Saved is one recording to write: its record, the record's encoding, and
// the file rows that change.
type Saved struct {
	Record *Record
	Blob   []byte // EncodeRecord(Record)
	New    bool   // not stored before this batch
	// Before is the state as stored (zero when New): a driver writes only
	// the columns that changed, so indexes on the others are left alone.
	Before ledger.State
	// NewFiles are the names of the files the recording did not have
	// before, for the stores' lookup of a recording by file name, and the
	// UserKeys of the users those names may name (for erasure).
	NewFiles []string
	// DueAt is when the recording may next announce an event by time
	// alone (delivery.Rules.Due; Unix ms, 0 for never), and DueBefore what
	// it was as stored: stores index it for Driver.DueRecords.
	DueAt, DueBefore int64
	// Findings are the recording's completeness findings that do not
	// depend on the clock (ledger.StateFindingMask), which stores keep in
	// a column to list by; FindingsChanged says they differ from what is
	// stored (a new record: that they are not 0), and only then is
	// Findings set.
	Findings        ledger.FindingMask
	FindingsChanged bool
	// Completed: this save made the recording complete (ended and every
	// file uploaded), for the upload lag (Options.Completed).
	Completed bool
}

// Outbound is an event a step announced (delivery.Event), committed with
// the step: the store's outbox, which destinations read.
type Outbound struct {
	ID, Type, RecordID, AppKey, RoomID string
	At                                 int64  // when it was derived, Unix ms: a callback's arrival, or the time it fell due
	Payload                            []byte // the event as destinations receive it (JSON)
}

// Batch is what one projection step writes, in one transaction.
type Batch struct {
	// From is the watermark the batch was computed on; Save fails with
	// ErrMoved when the stored one is not From (another projector moved
	// it), so two projectors never both apply a row.
	From, To Position
	Events   []Logged // every row projected, in feed order
	Records  []Saved  // in the order first touched
	Totals   ledger.TotalsChange
	Minutes  []ledger.Minute // callbacks and duplicates per minute of arrival
	// Outbound are the events the step announced, in order; none while
	// no destination wants them (Engine.SetOutbound).
	Outbound []Outbound
}

// ErrMoved is returned by Driver.Save when the stored watermark is not the
// batch's From.
var ErrMoved = errors.New("the projection watermark moved")

// ErrRemoved is returned by Driver.Save when recordings were removed
// (ledger.Remover) since the engine last read the watermark, on a store
// where another instance may remove them (PostgreSQL): records the engine
// cached may be gone. The engine drops its cache and steps again.
var ErrRemoved = errors.New("recordings were removed meanwhile")

// ErrNotLeader is returned by Driver.ReadLog when another instance holds
// the right to project; the engine then follows the stored watermark.
var ErrNotLeader = errors.New("another instance is projecting")

// Driver is what a store gives the engine.
type Driver interface {
	// ReadLog returns up to limit rows after pos, in log order, only rows
	// that no later commit can precede.
	ReadLog(ctx context.Context, after LogPos, limit int) ([]Row, error)
	// LoadRecords returns the stored encodings of the recordings named
	// (absent from the map when not stored).
	LoadRecords(ctx context.Context, ids []string) (map[string][]byte, error)
	// Save writes a batch in one transaction with its watermark (b.To),
	// or fails with ErrMoved.
	Save(ctx context.Context, b *Batch) error
	// Watermark returns the stored projection position.
	Watermark(ctx context.Context) (Position, error)
	// DueRecords returns up to limit recordings whose DueAt is at or
	// before now (Unix ms), the earliest first.
	DueRecords(ctx context.Context, now int64, limit int) ([]string, error)
	// Reset empties the projections and sets the watermark to zero, in
	// one transaction, for a rebuild.
	Reset(ctx context.Context) error
}

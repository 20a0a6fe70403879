package storesql

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/recledger/recledger/internal/groupcommit"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/logbody"
)

// Op is one write for a backend's group-committing writer: a callback to
// append or a rejection to quarantine.
type Op struct {
	In   *ledger.Incoming
	Body []byte     // In's body as the log stores it (logbody.Encode)
	Sig  *Signature // In's signature, to log with it (Intake.Sign); nil when unsigned
	Rej  *ledger.StoredRejection
	// Queued is when the op was submitted: a backend that bounds how long
	// a sender waits for its answer counts from here, the wait for earlier
	// batches included.
	Queued time.Time
}

// Result is an op's outcome in a commit that succeeded: appended, or, when
// Err is set, refused alone while the rest of its batch committed (a
// signature another instance logged with another body: rc.ErrReplayed).
type Result struct {
	ledger.Appended
	Err error
}

// Intake is the write side both SQL stores give ledger.Store: callbacks
// and rejections go to the backend's group commit and return when it is
// committed. Rejections share the callbacks' commits, so a flood of
// refused requests costs no commit of its own.
type Intake struct {
	Batcher *groupcommit.Batcher[Op, Result]
	// Sign, when set, gives the signature to log beside a callback (see
	// Op.Sig), in the sender's goroutine rather than the writer's.
	Sign func(in *ledger.Incoming) *Signature
}

// Append implements ledger.Store.Append. A callback outside
// ledger.CheckStorable never reaches the batch; one the database refuses
// alone (the group commit isolates it) is ledger.ErrUnstorable too, so the
// sender is told 4xx instead of being asked to retry forever.
func (i Intake) Append(ctx context.Context, in ledger.Incoming) (ledger.Appended, error) {
	id := ledger.Clip(in.Callback.RecordID, 64) // errors are logged: an id may be long
	if err := ledger.CheckStorable(&in.Callback); err != nil {
		return ledger.Appended{}, fmt.Errorf("append callback %s: %w", id, err)
	}
	// Compressed here, in the sender's goroutine, not in the single writer's.
	op := Op{In: &in, Body: logbody.Encode(in.Callback.Raw), Queued: time.Now()}
	if i.Sign != nil {
		op.Sig = i.Sign(&in)
	}
	r, err := i.Batcher.Submit(ctx, op)
	if ie, ok := errors.AsType[*groupcommit.ItemError](err); ok {
		return ledger.Appended{}, fmt.Errorf("append callback %s: %w", id, &ledger.RefusedError{Err: ie.Err})
	}
	if err == nil {
		err = r.Err
	}
	if err != nil {
		return ledger.Appended{}, fmt.Errorf("append callback %s: %w", id, err)
	}
	return r.Appended, nil
}

// Quarantine implements ledger.Store.Quarantine, bounding r with
// ledger.PrepareRejection.
func (i Intake) Quarantine(ctx context.Context, r ledger.Rejection) error {
	sr := ledger.PrepareRejection(r)
	if _, err := i.Batcher.Submit(ctx, Op{Rej: &sr, Queued: time.Now()}); err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	return nil
}

// ReportCommit returns what a backend's commit defers to tell onCommit
// (may be nil) about a batch: callbacks committed, rejections, time taken,
// error. A callback refused alone (Result.Err: a signature another
// instance logged with another body) is not counted: it was not logged.
func ReportCommit(onCommit func(callbacks, rejections int, took time.Duration, err error), ops []Op) func(results []Result, err error) {
	if onCommit == nil {
		return func([]Result, error) {}
	}
	start := time.Now()
	return func(results []Result, err error) {
		callbacks, rejections := 0, 0
		for i, o := range ops {
			switch {
			case o.Rej != nil:
				rejections++
			case err == nil && i < len(results) && results[i].Err != nil:
				// refused alone: not logged
			default:
				callbacks++
			}
		}
		onCommit(callbacks, rejections, time.Since(start), err)
	}
}

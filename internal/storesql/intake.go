package storesql

import (
	"context"
	"fmt"
	"time"

	"github.com/recledger/recledger/internal/groupcommit"
	"github.com/recledger/recledger/internal/ledger"
)

// Op is one write for a backend's group-committing writer: a callback to
// append or a rejection to quarantine.
type Op struct {
	In  *ledger.Incoming
	Rej *ledger.Rejection
	// Queued is when the op was submitted: a backend that bounds how long
	// a sender waits for its answer counts from here, the wait for earlier
	// batches included.
	Queued time.Time
}

// Intake is the write side both SQL stores give ledger.Store: callbacks
// and rejections go to the backend's group commit and return when it is
// committed. Rejections share the callbacks' commits, so a flood of
// refused requests costs no commit of its own.
type Intake struct {
	Batcher *groupcommit.Batcher[Op, ledger.Appended]
}

// Append implements ledger.Store.Append.
func (i Intake) Append(ctx context.Context, in ledger.Incoming) (ledger.Appended, error) {
	a, err := i.Batcher.Submit(ctx, Op{In: &in, Queued: time.Now()})
	if err != nil {
		return ledger.Appended{}, fmt.Errorf("append callback %s: %w", in.Callback.RecordID, err)
	}
	return a, nil
}

// Quarantine implements ledger.Store.Quarantine, keeping at most
// ledger.MaxQuarantineBody bytes of the body.
func (i Intake) Quarantine(ctx context.Context, r ledger.Rejection) error {
	if len(r.Body) > ledger.MaxQuarantineBody {
		r.Body = r.Body[:ledger.MaxQuarantineBody]
	}
	if _, err := i.Batcher.Submit(ctx, Op{Rej: &r, Queued: time.Now()}); err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	return nil
}

// ReportCommit returns what a backend's commit defers to tell onCommit
// (may be nil) about a batch: callbacks, rejections, time taken, error.
func ReportCommit(onCommit func(callbacks, rejections int, took time.Duration, err error), ops []Op) func(err error) {
	if onCommit == nil {
		return func(error) {}
	}
	start := time.Now()
	return func(err error) {
		rejections := 0
		for _, o := range ops {
			if o.Rej != nil {
				rejections++
			}
		}
		onCommit(len(ops)-rejections, rejections, time.Since(start), err)
	}
}

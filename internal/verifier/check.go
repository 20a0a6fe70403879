package verifier

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/storagecheck"
)

// notListed is the error of a URL whose host is not on --storage-hosts:
// the operator sees the list is short.
const notListed = "storage host not on --storage-hosts"

// checkDue makes one batch of the checks due, a few at once; it reports
// whether the batch was full (more may be due).
func (v *Verifier) checkDue(ctx context.Context) (bool, error) {
	limit := dueBatch * v.o.Workers
	due, err := v.o.Store.DueVerifications(ctx, v.o.Now().UnixMilli(), limit)
	if err != nil {
		return false, err
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan ledger.FileCheck)
	)
	for range min(v.o.Workers, len(due)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range next {
				if err := v.check(ctx, c); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, c := range due {
		if ctx.Err() != nil {
			break
		}
		next <- c
	}
	close(next)
	wg.Wait()
	return len(due) == limit, first
}

// check makes one check and stores its outcome.
func (v *Verifier) check(ctx context.Context, c ledger.FileCheck) error {
	st, err := v.o.Store.Recording(ctx, c.RecordID)
	if err != nil && !errors.Is(err, ledger.ErrNotFound) {
		return fmt.Errorf("read recording %s: %w", c.RecordID, err)
	}
	f, ok := st.Files[c.FileName]
	if err != nil || !ok || f.URL == "" {
		// Removed since it was queued: nothing to check or announce, and
		// nothing of it to keep. Forget deleted the recording's checks,
		// but a queue that read the recording just before Forget
		// committed stored this one after it.
		if err := v.o.Store.DropVerification(ctx, c); err != nil {
			return fmt.Errorf("drop the check of %s, no longer in the ledger: %w", c.FileName, err)
		}
		return nil
	}
	if h := ledger.URLHash(f.URL); h != c.URLHash {
		// A later upload gave the file another URL: that one is checked.
		fresh := ledger.FileCheck{RecordID: c.RecordID, FileName: c.FileName, AppKey: c.AppKey, URLHash: h,
			Verification: ledger.Verification{State: ledger.VerifyPending}, NextAt: v.o.Now().UnixMilli()}
		v.mu.Lock()
		cursor := v.cursor
		v.mu.Unlock()
		if err := v.o.Store.QueueVerifications(ctx, []ledger.FileCheck{fresh}, cursor); err != nil {
			return fmt.Errorf("re-queue %s under its new URL: %w", c.FileName, err)
		}
		return nil
	}
	c.TakenAt = c.NextAt // a re-check meanwhile makes this outcome stale
	start := v.o.Now()
	r := v.o.Checker.Check(ctx, f.URL, f.Size)
	if ctx.Err() != nil {
		return nil // cut short by shutdown: not an attempt; it stays due
	}
	took := v.o.Now().Sub(start)
	now := v.o.Now().UnixMilli()
	c.Verification = verification(r, c.Attempts+1, now)
	c.NextAt, c.Announced = 0, false
	outcome := string(c.State)
	if r.Transient {
		if wait, ok := storagecheck.NextWait(v.o.Waits, c.Attempts, r); ok {
			c.State, c.NextAt, outcome = ledger.VerifyPending, now+wait.Milliseconds(), "retry"
		}
	}
	if c.State == ledger.VerifyUnreachable {
		c.Announced = true // no event: we do not know
	}
	saved, err := v.o.Store.SaveVerification(ctx, c)
	if err != nil {
		return fmt.Errorf("store the check of %s: %w", c.FileName, err)
	}
	if v.o.Checked != nil {
		v.o.Checked(outcome, took)
	}
	if saved {
		v.o.Logger.Debug("storage checked", "record_id", c.RecordID, "file", c.FileName, "url", storagecheck.Redact(f.URL),
			"state", c.State, "status", r.HTTPStatus, "attempts", c.Attempts, "err", c.Error)
	}
	return nil
}

// verification is a check's result as the store keeps it; attempts
// counts this one.
func verification(r storagecheck.Result, attempts int, now int64) ledger.Verification {
	out := ledger.Verification{State: ledger.VerificationState(r.State), Size: r.Size, ContentType: r.ContentType,
		ETag: r.ETag, CheckedAt: &now, Attempts: attempts}
	if !r.CheckedAt.IsZero() {
		at := r.CheckedAt.UnixMilli()
		out.CheckedAt = &at
	}
	if r.HTTPStatus != 0 {
		s := r.HTTPStatus
		out.HTTPStatus = &s
	}
	switch {
	case errors.Is(r.Err, storagecheck.ErrNotAllowed):
		out.Error = notListed
	case r.Err != nil:
		out.Error = r.Err.Error()
	}
	return out
}

package storesql

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Health remembers how a store's last write and last projection ended, so
// that readiness says whether the store is taking callbacks, not only
// whether its database answers: on a full disk the database still answers
// (and still grants its write lock) while every commit fails.
type Health struct {
	mu       sync.Mutex
	writeErr error
	wroteAt  time.Time
	writes   uint64 // outcomes recorded, so a probe does not overwrite a newer commit's
	projErr  error
}

// ProbeAfter is how long after a failed write a readiness check writes a
// probe of its own: while callbacks keep arriving their commits tell, and
// readiness costs no write.
const ProbeAfter = time.Second

// Wrote records the outcome of a write (a group commit or a probe).
func (h *Health) Wrote(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.writeErr, h.wroteAt = err, time.Now()
	h.writes++
}

// Projected records the outcome of a projection run.
func (h *Health) Projected(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.projErr = err
}

// Check returns why the store is not ready, or nil: the last write failed,
// or the last projection did, or both. When the last write failed more than
// ProbeAfter ago (no write tried since: the store is idle), it calls probe,
// a small real write, and its outcome becomes the last write's, so that
// readiness recovers without waiting for a callback.
func (h *Health) Check(ctx context.Context, probe func(context.Context) error) error {
	h.mu.Lock()
	writeErr, wroteAt, writes := h.writeErr, h.wroteAt, h.writes
	h.mu.Unlock()
	if writeErr != nil && time.Since(wroteAt) >= ProbeAfter {
		err := probe(ctx)
		h.mu.Lock()
		if h.writes == writes { // no commit ended meanwhile: the probe is the latest word
			h.writeErr, h.wroteAt = err, time.Now()
			h.writes++
		}
		h.mu.Unlock()
	}
	h.mu.Lock()
	writeErr, projErr := h.writeErr, h.projErr
	h.mu.Unlock()
	switch {
	case writeErr != nil && projErr != nil:
		return fmt.Errorf("the last write failed: %w; the last projection failed: %w", writeErr, projErr)
	case writeErr != nil:
		return fmt.Errorf("the last write failed: %w", writeErr)
	case projErr != nil:
		return fmt.Errorf("the last projection failed: %w", projErr)
	}
	return nil
}

// Track wraps a group-commit function so that each commit's outcome is
// recorded in h. An error that itemError (may be nil) says one of the
// items caused is recorded as a success: the database took the write and
// refused a value, which says nothing against the store (the group commit
// isolates that item and commits the others).
func Track[T, R any](h *Health, commit func(context.Context, []T) ([]R, error), itemError func(error) bool) func(context.Context, []T) ([]R, error) {
	return func(ctx context.Context, items []T) ([]R, error) {
		rs, err := commit(ctx, items)
		if err != nil && itemError != nil && itemError(err) {
			h.Wrote(nil)
		} else {
			h.Wrote(err)
		}
		return rs, err
	}
}

// Package groupcommit batches concurrent writes into one transaction.
//
// A durable commit costs one fsync whatever it holds, so a store that
// commits each callback alone is bounded by the disk's fsync rate. A single
// writer that takes every request queued while the previous commit was
// syncing, commits them together and then wakes each waiter turns that
// bound into one fsync per batch: the more clients, the larger the batches.
package groupcommit

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrClosed is returned by Submit once the writer has stopped.
var ErrClosed = errors.New("groupcommit: writer stopped")

// CommitFunc commits items in one transaction and returns one result per
// item, in order, or an error for the whole batch (nothing committed).
type CommitFunc[T, R any] func(ctx context.Context, items []T) ([]R, error)

// ItemError is the error of an item that failed alone, with an error the
// backend's Options.ItemError says an item can cause: retrying it will fail
// again. Err is the backend's error.
type ItemError struct{ Err error }

func (e *ItemError) Error() string { return "item refused by the store: " + e.Err.Error() }
func (e *ItemError) Unwrap() error { return e.Err }

// Batcher is a single writer; Submit may be called from any goroutine.
type Batcher[T, R any] struct {
	commit    CommitFunc[T, R]
	maxBatch  int
	maxWait   time.Duration
	itemError func(error) bool
	queue     chan request[T, R]

	mu      sync.RWMutex // guards stopped against Submit racing Run's exit
	stopped bool
	done    chan struct{}
}

type request[T, R any] struct {
	item T
	done chan result[R]
}

type result[R any] struct {
	r   R
	err error
}

// Options bound a batch.
type Options struct {
	// MaxBatch is the most items in one transaction (default 256).
	MaxBatch int
	// MaxWait is how long the writer waits for more items after the first
	// one of a batch when fewer than MaxBatch are queued (default 0: commit
	// what is queued; under load the queue fills while the previous commit
	// syncs).
	MaxWait time.Duration
	// ItemError, when set, reports whether a failed commit's error may
	// have been caused by one of its items (a value the database refuses:
	// a constraint, a data exception, a size limit), as opposed to the
	// database itself (connection lost, disk full, busy, timeout). A batch
	// of several items failing so is split in halves that are committed on
	// their own, down to the guilty item, which alone gets an *ItemError:
	// one bad item never fails another. Other errors fail the batch once.
	ItemError func(error) bool
}

// New returns a Batcher; call Run to start its writer.
func New[T, R any](commit CommitFunc[T, R], o Options) *Batcher[T, R] {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	return &Batcher[T, R]{
		commit:    commit,
		maxBatch:  o.MaxBatch,
		maxWait:   o.MaxWait,
		itemError: o.ItemError,
		queue:     make(chan request[T, R], o.MaxBatch),
		done:      make(chan struct{}),
	}
}

// Submit queues item, waits for the commit of its batch and returns its
// result. A request whose ctx ends before it is queued is not committed; once
// queued it is committed (or fails with its batch) even if ctx ends, and
// Submit waits for that, since a caller must not be told "not stored" about
// something that may be.
func (b *Batcher[T, R]) Submit(ctx context.Context, item T) (R, error) {
	var zero R
	req := request[T, R]{item: item, done: make(chan result[R], 1)}
	b.mu.RLock()
	if b.stopped {
		b.mu.RUnlock()
		return zero, ErrClosed
	}
	select {
	case b.queue <- req:
		b.mu.RUnlock()
	case <-ctx.Done():
		b.mu.RUnlock()
		return zero, ctx.Err()
	case <-b.done:
		b.mu.RUnlock()
		return zero, ErrClosed
	}
	res := <-req.done
	return res.r, res.err
}

// Run is the writer. It returns when ctx ends, after committing every
// request already queued; later Submits fail with ErrClosed.
func (b *Batcher[T, R]) Run(ctx context.Context) error {
	batch := make([]request[T, R], 0, b.maxBatch)
	items := make([]T, 0, b.maxBatch)
	for {
		select {
		case req := <-b.queue:
			batch = append(batch[:0], req)
		case <-ctx.Done():
			b.stop()
			b.drain(batch[:0], items)
			return nil
		}
		batch = b.fill(ctx, batch)
		b.flush(batch, items)
	}
}

// fill adds what is queued, and what arrives within maxWait, up to maxBatch.
func (b *Batcher[T, R]) fill(ctx context.Context, batch []request[T, R]) []request[T, R] {
	var timer <-chan time.Time
	if b.maxWait > 0 {
		t := time.NewTimer(b.maxWait)
		defer t.Stop()
		timer = t.C
	}
	for len(batch) < b.maxBatch {
		select {
		case req := <-b.queue:
			batch = append(batch, req)
			continue
		default:
		}
		if timer == nil {
			return batch
		}
		select {
		case req := <-b.queue:
			batch = append(batch, req)
		case <-timer:
			return batch
		case <-ctx.Done():
			return batch
		}
	}
	return batch
}

func (b *Batcher[T, R]) flush(batch []request[T, R], items []T) {
	items = items[:0]
	for _, r := range batch {
		items = append(items, r.item)
	}
	// The commit runs to completion even while shutting down: its callers
	// are waiting for an answer that must be true.
	results, err := b.commit(context.WithoutCancel(context.Background()), items)
	if err == nil && len(results) != len(items) {
		err = errors.New("groupcommit: commit returned the wrong number of results")
	}
	if err != nil && b.itemError != nil && b.itemError(err) {
		if len(batch) > 1 {
			// Bisect: about 2·log2(n) commits find one guilty item; the
			// innocent halves commit as they go, in arrival order.
			half := len(batch) / 2
			b.flush(batch[:half], nil)
			b.flush(batch[half:], nil)
			return
		}
		err = &ItemError{Err: err}
	}
	for i, r := range batch {
		if err != nil {
			r.done <- result[R]{err: err}
			continue
		}
		r.done <- result[R]{r: results[i]}
	}
}

func (b *Batcher[T, R]) stop() {
	close(b.done)
	b.mu.Lock() // wait for Submits that are between the check and the send
	b.stopped = true
	b.mu.Unlock()
}

// drain commits what was queued before the writer stopped.
func (b *Batcher[T, R]) drain(batch []request[T, R], items []T) {
	for {
		select {
		case req := <-b.queue:
			batch = append(batch, req)
			if len(batch) < b.maxBatch {
				continue
			}
		default:
		}
		if len(batch) == 0 {
			return
		}
		b.flush(batch, items)
		batch = batch[:0]
	}
}

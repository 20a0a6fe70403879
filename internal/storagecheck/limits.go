package storagecheck

import (
	"context"
	"sync"
	"time"
)

// limits bound the requests per host: at most perHost at once, and
// requests started no closer together than 1/rate.
type limits struct {
	perHost  int
	interval time.Duration
	now      func() time.Time
	sleep    func(ctx context.Context, d time.Duration) error

	mu    sync.Mutex
	slots map[string]chan struct{} // a semaphore per host:port
	next  map[string]time.Time     // the earliest start of the host's next request
}

func newLimits(perHost int, rate float64, now func() time.Time, sleep func(context.Context, time.Duration) error) *limits {
	return &limits{perHost: perHost, interval: time.Duration(float64(time.Second) / rate), now: now, sleep: sleep,
		slots: map[string]chan struct{}{}, next: map[string]time.Time{}}
}

// acquire takes one of host's slots and waits for its turn under the
// rate; release gives the slot back.
func (l *limits) acquire(ctx context.Context, host string) (release func(), err error) {
	l.mu.Lock()
	slot, ok := l.slots[host]
	if !ok {
		slot = make(chan struct{}, l.perHost)
		l.slots[host] = slot
	}
	l.mu.Unlock()
	select {
	case slot <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	release = func() { <-slot }
	if err := l.wait(ctx, host); err != nil {
		release()
		return nil, err
	}
	return release, nil
}

// wait waits for host's next turn under the rate and takes it.
func (l *limits) wait(ctx context.Context, host string) error {
	l.mu.Lock()
	now := l.now()
	start := l.next[host]
	if start.Before(now) {
		start = now
	}
	l.next[host] = start.Add(l.interval)
	l.mu.Unlock()
	if d := start.Sub(now); d > 0 {
		return l.sleep(ctx, d)
	}
	return nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

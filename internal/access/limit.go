package access

import (
	"container/list"
	"context"
	"math"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// Limits pace wrong tokens. The zero value is the documented default.
//
// Each source has a budget of Failures wrong tokens per Window (a leaky
// bucket: the budget refills continuously). Past it a wrong token is
// answered only after a back-off that doubles from Delay up to MaxDelay
// with every failure over the budget; while MaxWaiting of a source's
// wrong tokens are waiting, its further token tries (right or wrong) are
// answered 429 at once. Sources whose address cannot be trusted share one
// bucket with the larger Shared* budget.
type Limits struct {
	Failures         int           // per source and Window (10)
	SharedFailures   int           // for the shared bucket (100)
	Window           time.Duration // 1 minute
	Delay            time.Duration // the first back-off (250 ms)
	MaxDelay         time.Duration // 10 s
	MaxWaiting       int           // per source (4)
	SharedMaxWaiting int           // in the shared bucket (32)
	MaxSources       int           // sources tracked; the least recently seen go first (10,000)
	// Sleep waits out a back-off (tests pace it); returns early when ctx ends.
	Sleep func(ctx context.Context, d time.Duration)
}

func (l *Limits) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.Failures, 10)
	def(&l.SharedFailures, 100)
	def(&l.MaxWaiting, 4)
	def(&l.SharedMaxWaiting, 32)
	def(&l.MaxSources, 10_000)
	defDur(&l.Window, time.Minute)
	defDur(&l.Delay, 250*time.Millisecond)
	defDur(&l.MaxDelay, 10*time.Second)
	if l.Sleep == nil {
		l.Sleep = func(ctx context.Context, d time.Duration) {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
			}
		}
	}
}

// overCap bounds how far over its budget a bucket's level goes, so a
// source recovers within a couple of windows after a flood stops.
const overCap = 16

// sharedSource is the bucket of sources that cannot be told apart.
const sharedSource = ""

type limiter struct {
	l   Limits
	now func() time.Time

	mu      sync.Mutex
	shared  bucket
	sources map[string]*list.Element // of *bucket, least recently seen first
	order   *list.List
}

type bucket struct {
	key     string
	level   float64 // failures not yet leaked away
	at      time.Time
	waiting int
}

func newLimiter(l Limits, now func() time.Time) *limiter {
	l.defaults()
	return &limiter{l: l, now: now, sources: map[string]*list.Element{}, order: list.New()}
}

// bucketLocked returns src's bucket, creating it (and evicting the least
// recently seen one past MaxSources) as needed.
func (lm *limiter) bucketLocked(src string, create bool) *bucket {
	if src == sharedSource {
		return &lm.shared
	}
	if e, ok := lm.sources[src]; ok {
		lm.order.MoveToBack(e)
		return e.Value.(*bucket)
	}
	if !create {
		return nil
	}
	for len(lm.sources) >= lm.l.MaxSources {
		oldest := lm.order.Front()
		lm.order.Remove(oldest)
		delete(lm.sources, oldest.Value.(*bucket).key)
	}
	b := &bucket{key: src}
	lm.sources[src] = lm.order.PushBack(b)
	return b
}

func (lm *limiter) budget(src string) (failures float64, waiting int) {
	if src == sharedSource {
		return float64(lm.l.SharedFailures), lm.l.SharedMaxWaiting
	}
	return float64(lm.l.Failures), lm.l.MaxWaiting
}

// saturated returns how long src should wait when it has as many wrong
// tokens waiting as it may, else 0.
func (lm *limiter) saturated(src string) time.Duration {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	b := lm.bucketLocked(src, false)
	if _, max := lm.budget(src); b == nil || b.waiting < max {
		return 0
	}
	return lm.l.MaxDelay
}

// fail counts a wrong token from src and answers it: at once within the
// budget, after the back-off past it, or at once with ErrTooManyAttempts
// when src already has its quota waiting.
func (lm *limiter) fail(ctx context.Context, src string) error {
	lm.mu.Lock()
	b := lm.bucketLocked(src, true)
	free, maxWaiting := lm.budget(src)
	now := lm.now()
	if !b.at.IsZero() {
		leaked := now.Sub(b.at).Seconds() / lm.l.Window.Seconds() * free
		b.level = math.Max(0, b.level-leaked)
	}
	b.at = now
	b.level = math.Min(b.level+1, free+overCap)
	over := b.level - free
	if over <= 0 {
		lm.mu.Unlock()
		return ErrUnauthorized
	}
	if b.waiting >= maxWaiting {
		lm.mu.Unlock()
		return &RetryError{ErrTooManyAttempts, lm.l.MaxDelay}
	}
	d := lm.l.Delay << min(int(math.Ceil(over))-1, 30)
	if d > lm.l.MaxDelay || d <= 0 {
		d = lm.l.MaxDelay
	}
	b.waiting++
	lm.mu.Unlock()

	lm.l.Sleep(ctx, d)

	lm.mu.Lock()
	b.waiting--
	lm.mu.Unlock()
	return &RetryError{ErrUnauthorized, d}
}

// source is what a wrong token from req is counted against: its client
// (Proxies.Client: the peer, or the client a trusted proxy named), and the
// shared bucket when the address cannot tell clients apart (forwarding
// headers from a peer that is not a trusted proxy, or an address that does
// not parse). IPv6 addresses count by their /64, the block one host is
// usually given.
func (r *Rule) source(req *http.Request) string {
	c := r.Client(req)
	if c.Shared || !c.Addr.IsValid() {
		return sharedSource
	}
	return sourceKey(c.Addr)
}

func sourceKey(ip netip.Addr) string {
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

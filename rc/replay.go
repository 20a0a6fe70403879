package rc

import (
	"context"
	"sync"
	"time"
)

// ReplayKey identifies one signing: RC's signature covers exactly these.
type ReplayKey struct {
	AppKey    string
	Nonce     string
	Timestamp string // as sent
}

// ReplayVerdict is what a ReplayMemory knew of a signature.
type ReplayVerdict int

// The verdicts of ReplayMemory.Remember.
const (
	ReplayFirst     ReplayVerdict = iota // not seen before; now remembered
	ReplaySameBody                       // seen with the same body: a redelivery
	ReplayOtherBody                      // seen with another body: a replay
)

// ReplayMemory remembers the signatures a Verifier accepted, with a digest of
// the body each signed, until they expire. A durable, shared implementation
// lets the check hold across restarts and across several receivers.
type ReplayMemory interface {
	// Remember records key with bodyDigest until the time until, unless key
	// is already remembered, and reports what it knew. It must be atomic:
	// of two concurrent calls with one key, one sees the other.
	Remember(ctx context.Context, key ReplayKey, bodyDigest [32]byte, until time.Time) (ReplayVerdict, error)
}

// MemoryReplay is a ReplayMemory in this process's memory. It holds only
// signatures that verified, so its size is bounded by the legitimate
// callbacks of one tolerance window.
type MemoryReplay struct {
	now func() time.Time

	mu        sync.Mutex
	seen      map[ReplayKey]replayEntry
	nextSweep int // sweep expired entries when the map reaches this size
}

type replayEntry struct {
	digest [32]byte
	until  time.Time
}

// NewMemoryReplay returns an empty MemoryReplay judging expiry by now
// (time.Now when nil).
func NewMemoryReplay(now func() time.Time) *MemoryReplay {
	if now == nil {
		now = time.Now
	}
	return &MemoryReplay{now: now, seen: make(map[ReplayKey]replayEntry), nextSweep: 1024}
}

// Remember implements ReplayMemory.
func (m *MemoryReplay) Remember(_ context.Context, key ReplayKey, digest [32]byte, until time.Time) (ReplayVerdict, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.seen[key]; ok && e.until.After(now) {
		if e.digest == digest {
			return ReplaySameBody, nil
		}
		return ReplayOtherBody, nil
	}
	m.seen[key] = replayEntry{digest: digest, until: until}
	if len(m.seen) >= m.nextSweep {
		// Sweeping when the map doubles keeps the cost amortised constant.
		for k, e := range m.seen {
			if !e.until.After(now) {
				delete(m.seen, k)
			}
		}
		m.nextSweep = max(1024, 2*len(m.seen))
	}
	return ReplayFirst, nil
}

// Len returns how many signatures are remembered, expired ones not yet swept
// included.
func (m *MemoryReplay) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.seen)
}

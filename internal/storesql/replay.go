package storesql

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// ReplayMemory is the verifier's replay memory as both SQL stores keep it:
// it answers from RAM, and each store makes it durable its own way, by
// writing a signature with the callback it admitted (Take gives it to the
// store's Intake.Sign) and reading what it wrote back when it opens
// (Restore). So the verifier costs no database call: the acknowledged
// commit carries the signature in the round trip it makes anyway.
type ReplayMemory struct {
	now func() time.Time

	mu   sync.Mutex
	seen map[sigKey]sigEntry
	// pending holds signatures remembered whose callbacks are not logged
	// yet, by the SHA-256 of the body they signed: Append takes one for
	// the body it logs.
	pending   map[[32]byte][]pendingSig
	nextSweep int
}

type pendingSig struct {
	id  sigKey
	sig Signature
}

// A signature is kept as 8 bytes of the hash of its identity and 8 of the
// SHA-256 of the body it signed. 64 bits are plenty for a memory that
// holds one window of signatures: two legitimate ones colliding among a
// few million is about one chance in ten million, and forging a body whose
// digest matches a captured signature's takes about 2^64 hashes, within
// the minutes the signature stays valid.
type (
	sigKey   [8]byte
	sigEntry struct {
		digest [8]byte
		until  time.Time
	}
)

// Signature is a signature the memory accepted, to be logged with the
// callback it signed.
type Signature struct {
	Key    rc.ReplayKey
	Digest [32]byte  // SHA-256 of the body it signed
	Until  time.Time // when the verifier stops needing it
}

// CompactLen is the length of Signature.Compact.
const CompactLen = 16

// Compact is what the memory keeps of s: the hash of its identity, then
// the body digest, 8 bytes each. A store that logs it can Restore it.
func (s *Signature) Compact() []byte {
	k := keyOf(s.Key)
	return append(k[:], s.Digest[:8]...)
}

// NewReplayMemory returns an empty memory on the clock now.
func NewReplayMemory(now func() time.Time) *ReplayMemory {
	return &ReplayMemory{now: now, seen: map[sigKey]sigEntry{}, pending: map[[32]byte][]pendingSig{}, nextSweep: 1024}
}

func keyOf(k rc.ReplayKey) sigKey {
	h := sha256.New()
	var n [8]byte
	for _, s := range []string{k.AppKey, k.Nonce, k.Timestamp} {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	var key sigKey
	copy(key[:], h.Sum(nil))
	return key
}

// Remember implements rc.ReplayMemory. A signature first seen, or seen
// with the same body (a redelivery), is noted as pending for Take: the
// redelivery's row carries it too, so a signature whose first callback
// failed to commit becomes durable with the one that does.
func (m *ReplayMemory) Remember(_ context.Context, key rc.ReplayKey, digest [32]byte, until time.Time) (rc.ReplayVerdict, error) {
	k := keyOf(key)
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	v := rc.ReplayFirst
	if e, ok := m.seen[k]; ok && e.until.After(now) {
		if [8]byte(digest[:8]) != e.digest {
			return rc.ReplayOtherBody, nil
		}
		v, until = rc.ReplaySameBody, e.until
	}
	m.seen[k] = sigEntry{digest: [8]byte(digest[:8]), until: until}
	m.pending[digest] = append(m.pending[digest], pendingSig{id: k, sig: Signature{Key: key, Digest: digest, Until: until}})
	if len(m.seen) >= m.nextSweep {
		m.sweep(now)
	}
	return v, nil
}

// Restore remembers a signature read back from the store (sig is its
// Compact form; a value of another length is ignored) or learnt from
// another instance, replacing what the memory held for it.
func (m *ReplayMemory) Restore(sig []byte, until time.Time) {
	if len(sig) != CompactLen {
		return
	}
	now := m.now()
	if !until.After(now) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seen[sigKey(sig[:8])] = sigEntry{digest: [8]byte(sig[8:]), until: until}
	if len(m.seen) >= m.nextSweep {
		m.sweep(now)
	}
}

// sweep drops expired signatures, and pending ones whose callbacks never
// came (refused after the signature was checked). Sweeping when the map
// doubles keeps the cost amortised constant.
func (m *ReplayMemory) sweep(now time.Time) {
	for k, e := range m.seen {
		if !e.until.After(now) {
			delete(m.seen, k)
		}
	}
	for d, sigs := range m.pending {
		live := sigs[:0]
		for _, s := range sigs {
			if e, ok := m.seen[s.id]; ok && e.digest == [8]byte(d[:8]) {
				live = append(live, s)
			}
		}
		if len(live) == 0 {
			delete(m.pending, d)
		} else {
			m.pending[d] = live
		}
	}
	m.nextSweep = max(1024, 2*len(m.seen))
}

// Take returns the signature to log with a callback about to be logged: a
// pending signature of its body, or nil (unsigned). It suits
// Intake.Sign.
func (m *ReplayMemory) Take(in *ledger.Incoming) *Signature {
	m.mu.Lock()
	empty := len(m.pending) == 0
	m.mu.Unlock()
	if empty {
		return nil
	}
	digest := sha256.Sum256(in.Callback.Raw)
	m.mu.Lock()
	defer m.mu.Unlock()
	sigs := m.pending[digest]
	if len(sigs) == 0 {
		return nil
	}
	s := sigs[len(sigs)-1].sig
	if len(sigs) == 1 {
		delete(m.pending, digest)
	} else {
		m.pending[digest] = sigs[:len(sigs)-1]
	}
	return &s
}

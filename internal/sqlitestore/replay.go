package sqlitestore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// sigMemory is the verifier's replay memory. It answers from RAM; what
// makes it survive a restart is the sig column of the log: a callback's
// row carries the signature that admitted it, and Open reads the rows still
// inside the window back. So the acknowledged commit writes no second
// table: the signature rides in the row it commits anyway.
type sigMemory struct {
	now    func() time.Time
	window time.Duration // how long after arrival a signature can still be replayed

	mu   sync.Mutex
	seen map[sigKey]sigEntry
	// pending holds signatures remembered whose callbacks are not logged
	// yet, by the SHA-256 of the body they signed: Append takes one for
	// the body it logs.
	pending   map[[32]byte][]sigKey
	nextSweep int
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

// sigLen is the sig column's size: the key, then the body digest.
const sigLen = 16

func newSigMemory(now func() time.Time, window time.Duration) *sigMemory {
	return &sigMemory{now: now, window: window, seen: map[sigKey]sigEntry{}, pending: map[[32]byte][]sigKey{}, nextSweep: 1024}
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

// Remember implements rc.ReplayMemory.
func (m *sigMemory) Remember(_ context.Context, key rc.ReplayKey, digest [32]byte, until time.Time) (rc.ReplayVerdict, error) {
	k := keyOf(key)
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.seen[k]; ok && e.until.After(now) {
		if [8]byte(digest[:8]) == e.digest {
			return rc.ReplaySameBody, nil
		}
		return rc.ReplayOtherBody, nil
	}
	m.seen[k] = sigEntry{digest: [8]byte(digest[:8]), until: until}
	m.pending[digest] = append(m.pending[digest], k)
	if len(m.seen) >= m.nextSweep {
		m.sweep(now)
	}
	return rc.ReplayFirst, nil
}

// sweep drops expired signatures, and pending ones whose callbacks never
// came (refused after the signature was checked). Sweeping when the map
// doubles keeps the cost amortised constant.
func (m *sigMemory) sweep(now time.Time) {
	for k, e := range m.seen {
		if !e.until.After(now) {
			delete(m.seen, k)
		}
	}
	for d, keys := range m.pending {
		live := keys[:0]
		for _, k := range keys {
			if e, ok := m.seen[k]; ok && e.digest == [8]byte(d[:8]) {
				live = append(live, k)
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

// sig returns the sig column for a callback about to be logged: a pending
// signature of its body, or nil (unsigned, or a redelivery whose signature
// is logged with its first delivery).
func (m *sigMemory) sig(in *ledger.Incoming) []byte {
	m.mu.Lock()
	empty := len(m.pending) == 0
	m.mu.Unlock()
	if empty {
		return nil
	}
	digest := sha256.Sum256(in.Callback.Raw)
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := m.pending[digest]
	if len(keys) == 0 {
		return nil
	}
	k := keys[len(keys)-1]
	if len(keys) == 1 {
		delete(m.pending, digest)
	} else {
		m.pending[digest] = keys[:len(keys)-1]
	}
	return append(k[:], digest[:8]...)
}

// load remembers the signatures of the rows logged within the window:
// read newest first, it stops at the first row older than the window and a
// minute (the server's clock may have stepped back a little).
func (m *sigMemory) load(ctx context.Context, db *sql.DB) error {
	now := m.now()
	oldest := now.Add(-m.window - time.Minute).UnixMilli()
	rows, err := db.QueryContext(ctx, `SELECT received_at, sig FROM log ORDER BY seq DESC`)
	if err != nil {
		return fmt.Errorf("load replay memory: %w", err)
	}
	defer rows.Close()
	m.mu.Lock()
	defer m.mu.Unlock()
	for rows.Next() {
		var (
			at  int64
			sig []byte
		)
		if err := rows.Scan(&at, &sig); err != nil {
			return fmt.Errorf("load replay memory: %w", err)
		}
		if at < oldest {
			break
		}
		if len(sig) != sigLen {
			continue
		}
		until := time.UnixMilli(at).Add(m.window)
		if until.After(now) {
			m.seen[sigKey(sig[:8])] = sigEntry{digest: [8]byte(sig[8:]), until: until}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load replay memory: %w", err)
	}
	m.nextSweep = max(1024, 2*len(m.seen))
	return nil
}

// Package removal is retention and erasure over ledger.Remover: Erase
// removes everything that names a user, Retention removes what is older
// than an age limit in small batches. Both use the one primitive,
// Remover.Forget, which tombstones log rows and drops projections.
package removal

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/recledger/recledger/internal/ledger"
)

// Store is what removal needs of a store: the recordings by user, and
// the Remover.
type Store interface {
	ListRecordings(ctx context.Context, f ledger.RecordingFilter) (ledger.RecordingPage, error)
	ledger.Remover
}

// Scrubber is a store that can make what was deleted unreadable from its
// files at once (SQLite: checkpoint and truncate the write-ahead logs,
// which still hold old page images). Erase calls it when the store has it.
type Scrubber interface {
	Scrub(ctx context.Context) error
}

// Erasure is what an erasure removed: the answer of DELETE
// /v1/users/{id} and of recledger erase.
type Erasure struct {
	ledger.Removed
	Quarantine int64 `json:"quarantine"` // quarantine rows deleted
}

// Batch is how many recordings one Forget removes: a transaction of that
// size holds the writers briefly, so callbacks keep being stored.
const Batch = 100

// ErrStuck is returned when a recording listed for removal is not
// removed (it should not happen: Forget removes what ListRecordings
// lists).
var ErrStuck = errors.New("recordings listed for removal were not removed")

// Erase removes every recording of user (only of appKey when set), every
// quarantine row holding the user's id, and writes an audit row that
// names no one. RC's naming rule puts the user id in the names of that
// user's files only, so the files go with the recordings.
func Erase(ctx context.Context, s Store, user, appKey string, now time.Time) (Erasure, error) {
	var out Erasure
	if user == "" {
		return out, errors.New("erase: no user id")
	}
	var stuck []string // what the last Forget removed none of
	for {
		page, err := s.ListRecordings(ctx, ledger.RecordingFilter{UserID: user, AppKey: appKey, Limit: Batch})
		if err != nil {
			return out, fmt.Errorf("erase: list recordings: %w", err)
		}
		if len(page.Items) == 0 {
			break
		}
		ids := make([]string, len(page.Items))
		for i, st := range page.Items {
			ids[i] = st.RecordID
		}
		if overlap(stuck, ids) {
			return out, fmt.Errorf("erase: %w", ErrStuck)
		}
		got, err := s.Forget(ctx, ids)
		if err != nil {
			return out, fmt.Errorf("erase: %w", err)
		}
		out.Removed = out.Removed.Add(got)
		stuck = nil
		if got.Recordings == 0 {
			// Another erasure or retention pass (on another instance)
			// may have removed them meanwhile: stuck only if they are
			// listed again.
			stuck = ids
		}
	}
	q, err := s.EraseQuarantine(ctx, []byte(user))
	if err != nil {
		return out, fmt.Errorf("erase: %w", err)
	}
	out.Quarantine = q
	if err := s.Audit(ctx, ledger.Audit{At: now.UnixMilli(), AppKey: appKey, Removed: out.Removed, Quarantine: out.Quarantine}); err != nil {
		return out, fmt.Errorf("erase: %w", err)
	}
	if sc, ok := s.(Scrubber); ok {
		if err := sc.Scrub(ctx); err != nil {
			// Removed and audited; old page images stay in the write-ahead
			// log until it is overwritten. Erasing again retries this.
			return out, fmt.Errorf("erase: removed, but %w", err)
		}
	}
	return out, nil
}

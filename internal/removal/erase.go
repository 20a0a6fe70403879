// Package removal is retention and erasure over ledger.Remover: Erase
// removes everything that names a user, Retention removes what is older
// than an age limit in small batches. Both use the one primitive,
// Remover.Forget, which tombstones log rows and drops projections.
package removal

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

// ErrStuck is returned when recordings listed for removal are not
// removed and are listed again (it should not happen: Forget removes
// what the store lists).
var ErrStuck = errors.New("recordings listed for removal were not removed")

// Erase removes every recording of user (only of appKey when set): those
// whose userId is the user's and those one of whose file names names the
// user (ledger.Remover.NamingRecordings); every quarantine row holding the
// user's id; and writes an audit row that names no one.
func Erase(ctx context.Context, s Store, user, appKey string, now time.Time) (Erasure, error) {
	var out Erasure
	if user == "" {
		return out, errors.New("erase: no user id")
	}
	byUser := func() ([]string, error) {
		page, err := s.ListRecordings(ctx, ledger.RecordingFilter{UserID: user, AppKey: appKey, Limit: Batch})
		if err != nil {
			return nil, fmt.Errorf("list recordings: %w", err)
		}
		ids := make([]string, len(page.Items))
		for i, st := range page.Items {
			ids[i] = st.RecordID
		}
		return ids, nil
	}
	// In the single modes a recording holds the files of every user of
	// the room, named after each, while its userId is the first
	// callback's: the recordings whose file names name the user go too.
	naming := func() ([]string, error) { return s.NamingRecordings(ctx, user, appKey) }
	for _, list := range []func() ([]string, error){byUser, naming} {
		if err := forgetAll(ctx, s, list, &out.Removed); err != nil {
			return out, fmt.Errorf("erase: %w", err)
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

// forgetAll forgets what list lists until it lists nothing, adding what
// was removed to out. A Forget that removed none of what it was given
// is stuck only if list gives the same again: another erasure or a
// retention pass (on another instance) may have removed them meanwhile.
func forgetAll(ctx context.Context, s Store, list func() ([]string, error), out *ledger.Removed) error {
	var stuck []string
	for {
		ids, err := list()
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		if overlap(stuck, ids) {
			return ErrStuck
		}
		var removed int64
		for chunk := range slices.Chunk(ids, Batch) {
			got, err := s.Forget(ctx, chunk)
			if err != nil {
				return err
			}
			*out = out.Add(got)
			removed += got.Recordings
		}
		stuck = nil
		if removed == 0 {
			stuck = ids
		}
	}
}

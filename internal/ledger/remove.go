package ledger

import (
	"context"
	"time"
)

// Remover forgets recordings, for retention and for erasure: both use the
// one primitive, Forget. A forgotten recording's rows in the log become
// tombstones: each keeps its place (its feed seq and arrival time), so
// the feed stays gapless and every cursor stays valid, but loses its body
// and signature digest; the projections of the recording (its record,
// file rows, filter columns, duplicate marks) and its outbound events are
// deleted. A rebuild folds a tombstone into nothing, so it gives the same
// ledger as before. A callback for a forgotten recordId that arrives
// later (RC retries) is a new row and makes the recording again.
type Remover interface {
	// Forget removes the recordings named (unknown ids are skipped) and
	// returns what it removed. It is idempotent.
	Forget(ctx context.Context, recordIDs []string) (Removed, error)
	// NamingRecordings returns the recordings (only appKey's when it is
	// set) one of whose file names may name user by RC's naming rule
	// (engine.NamesUser): in the single modes a recording holds the files
	// of every user of the room, but its userId is only the first
	// callback's. Stores find them by the file-name index's
	// engine.UserKey rows, and check the records.
	NamingRecordings(ctx context.Context, user, appKey string) ([]string, error)
	// Expired returns up to limit recordings whose last callback arrived
	// (server clock) before cutoff, oldest first: what --retain removes.
	Expired(ctx context.Context, cutoff time.Time, limit int) ([]string, error)
	// PruneQuarantine deletes up to limit quarantine rows kept from before
	// cutoff and returns how many it deleted.
	PruneQuarantine(ctx context.Context, cutoff time.Time, limit int) (int64, error)
	// EraseQuarantine deletes every quarantine row whose path, header,
	// body or claimed app key holds needle, and returns how many.
	EraseQuarantine(ctx context.Context, needle []byte) (int64, error)
	// Audit keeps a record of an erasure. It must not name the person.
	Audit(ctx context.Context, a Audit) error
}

// Removed counts what Forget removed.
type Removed struct {
	Recordings int64 `json:"recordings"`
	LogRows    int64 `json:"logRows"`  // rows made tombstones
	Files      int64 `json:"files"`    // files of the recordings
	Outbound   int64 `json:"outbound"` // outbound events dropped (delivered or not)
}

// Add returns r and o summed.
func (r Removed) Add(o Removed) Removed {
	return Removed{Recordings: r.Recordings + o.Recordings, LogRows: r.LogRows + o.LogRows,
		Files: r.Files + o.Files, Outbound: r.Outbound + o.Outbound}
}

// Audit is the record an erasure leaves: when, for which app, and what
// was removed. It holds no identifier of the person: no byte of their id
// may survive the erasure, and a hash of a short id is easily reversed.
type Audit struct {
	At         int64   `json:"at"`     // server clock, Unix ms
	AppKey     string  `json:"appKey"` // "" for every app
	Removed    Removed `json:"removed"`
	Quarantine int64   `json:"quarantine"` // quarantine rows deleted
}

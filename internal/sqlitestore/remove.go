package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/recledger/recledger/internal/engine"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/storesql"
)

var (
	_ ledger.Remover       = (*Store)(nil)
	_ ledger.Verifications = (*Store)(nil)
)

// Forget implements ledger.Remover. It runs while the engine is held
// (engine.Exclusive), so no step saves a record it deletes. The log file
// is written first: a crash between the two files leaves the recording
// in the ledger with its log rows already tombstones, and the erasure or
// the next retention pass finds it there and finishes; the other order
// would leave log rows that a rebuild turns back into the recording.
// Both writers run with secure_delete, so what is deleted is overwritten.
func (s *Store) Forget(ctx context.Context, recordIDs []string) (ledger.Removed, error) {
	var out ledger.Removed
	if len(recordIDs) == 0 {
		return out, nil
	}
	err := s.eng.Exclusive(ctx, func(ctx context.Context) error {
		blobs, err := s.driver.LoadRecords(ctx, recordIDs)
		if err != nil {
			return fmt.Errorf("forget: load records: %w", err)
		}
		var f engine.Forgotten
		for id, blob := range blobs {
			if err := f.Add(id, blob); err != nil {
				return err
			}
		}
		out.Files = f.Files
		ids, seqs, totals := f.IDs, f.Seqs, f.Totals
		if len(ids) == 0 {
			return nil
		}
		if out.LogRows, err = s.tombstone(ctx, seqs); err != nil {
			return err
		}
		out.Recordings = int64(len(ids))
		out.Outbound, err = s.dropProjections(ctx, ids, seqs, totals)
		return err
	})
	if err != nil {
		return ledger.Removed{}, err
	}
	return out, nil
}

// tombstone empties the bodies and signature digests of the log rows
// named, keeping each row (its seq and arrival time).
func (s *Store) tombstone(ctx context.Context, seqs []int64) (int64, error) {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("forget: tombstone log rows: %w", err)
	}
	defer tx.Rollback()
	var n int64
	for chunk := range chunks(seqs, 500) {
		res, err := tx.ExecContext(ctx, `UPDATE log SET body = x'', sig = NULL WHERE seq IN (`+marks(len(chunk))+`) AND length(body) > 0`, anys(chunk)...)
		if err != nil {
			return 0, fmt.Errorf("forget: tombstone log rows: %w", err)
		}
		k, _ := res.RowsAffected()
		n += k
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("forget: tombstone log rows: %w", err)
	}
	return n, nil
}

// dropProjections deletes the recordings' projections and outbound
// events in one transaction of the ledger file, and returns how many
// outbound events it deleted.
func (s *Store) dropProjections(ctx context.Context, ids []string, seqs []int64, totals ledger.TotalsChange) (int64, error) {
	tx, err := s.ledgerWriter.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("forget: %w", err)
	}
	defer tx.Rollback()
	var outbound int64
	for chunk := range chunks(ids, 400) {
		in, args := `(`+marks(len(chunk))+`)`, anys(chunk)
		for _, q := range []string{
			`DELETE FROM files WHERE recording IN (SELECT id FROM recordings WHERE record_id IN ` + in + `)`,
			`DELETE FROM recordings WHERE record_id IN ` + in,
			`DELETE FROM delivery_held WHERE record_id IN ` + in,
			`DELETE FROM dead_letters WHERE record_id IN ` + in,
			`DELETE FROM verifications WHERE record_id IN ` + in,
		} {
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return 0, fmt.Errorf("forget: %w", err)
			}
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM outbound WHERE record_id IN `+in, args...)
		if err != nil {
			return 0, fmt.Errorf("forget: outbound events: %w", err)
		}
		k, _ := res.RowsAffected()
		outbound += k
	}
	for chunk := range chunks(seqs, 500) {
		if _, err := tx.ExecContext(ctx, `DELETE FROM duplicates WHERE seq IN (`+marks(len(chunk))+`)`, anys(chunk)...); err != nil {
			return 0, fmt.Errorf("forget: duplicate marks: %w", err)
		}
	}
	for _, k := range totals.Cells() {
		t := totals[k]
		if _, err := tx.StmtContext(ctx, s.driver.stmts.addTotals).ExecContext(ctx, string(k.Status), string(k.Upload), t.Recordings, t.PendingFiles); err != nil {
			return 0, fmt.Errorf("forget: totals: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("forget: %w", err)
	}
	return outbound, nil
}

// NamingRecordings implements ledger.Remover.
func (s *Store) NamingRecordings(ctx context.Context, user, appKey string) ([]string, error) {
	if err := s.eng.Fresh(ctx); err != nil {
		return nil, fmt.Errorf("recordings naming a user: %w", err)
	}
	rows, err := s.ledgerReader.QueryContext(ctx, `SELECT r.state FROM files f JOIN recordings r ON r.id = f.recording
		WHERE f.name_hash = ?1 AND (?2 = '' OR r.app_key = ?2)`, engine.NameHash(engine.UserKey(user)), appKey)
	if err != nil {
		return nil, fmt.Errorf("recordings naming a user: %w", err)
	}
	defer rows.Close()
	states, err := storesql.ScanStates(rows)
	if err != nil {
		return nil, fmt.Errorf("recordings naming a user: %w", err)
	}
	return namingUser(states, user), nil
}

// namingUser returns the record ids of the states whose file names may
// name user (the index is by a hash: this checks the names).
func namingUser(states []ledger.State, user string) []string {
	var ids []string
	for i := range states {
		if engine.NamesUser(&states[i], user) {
			ids = append(ids, states[i].RecordID)
		}
	}
	return ids
}

// Expired implements ledger.Remover.
func (s *Store) Expired(ctx context.Context, cutoff time.Time, limit int) ([]string, error) {
	rows, err := s.ledgerReader.QueryContext(ctx, `SELECT record_id FROM recordings WHERE last_event_at < ? ORDER BY last_event_at LIMIT ?`,
		cutoff.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("expired recordings: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("expired recordings: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// PruneQuarantine implements ledger.Remover.
func (s *Store) PruneQuarantine(ctx context.Context, cutoff time.Time, limit int) (int64, error) {
	return s.deleteQuarantine(ctx, `DELETE FROM quarantine WHERE id IN (SELECT id FROM quarantine WHERE at < ? ORDER BY id LIMIT ?)`,
		cutoff.UnixMilli(), limit)
}

// EraseQuarantine implements ledger.Remover: a byte search of every
// column a sender chose.
func (s *Store) EraseQuarantine(ctx context.Context, needle []byte) (int64, error) {
	if len(needle) == 0 {
		return 0, nil
	}
	return s.deleteQuarantine(ctx, `DELETE FROM quarantine WHERE instr(body, ?1) > 0 OR instr(CAST(header AS BLOB), ?1) > 0
		OR instr(CAST(path AS BLOB), ?1) > 0 OR instr(CAST(app_key AS BLOB), ?1) > 0 OR instr(CAST(message AS BLOB), ?1) > 0
		OR instr(CAST(remote AS BLOB), ?1) > 0`, needle)
}

// deleteQuarantine runs a deletion of quarantine rows on the log's writer
// (so it takes turns with the group commit, which keeps the quarantine's
// size in memory) and updates that size.
func (s *Store) deleteQuarantine(ctx context.Context, q string, args ...any) (int64, error) {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("delete quarantine rows: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("delete quarantine rows: %w", err)
	}
	n, _ := res.RowsAffected()
	if n == 0 {
		return 0, nil
	}
	var count, bytes int64
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(stored_size), 0) FROM quarantine`).Scan(&count, &bytes); err != nil {
		return 0, fmt.Errorf("delete quarantine rows: %w", err)
	}
	// Set while this transaction holds the one writer connection, so no
	// commit reads the size between.
	s.mu.Lock()
	s.quarantine.count, s.quarantine.bytes = count, bytes
	s.mu.Unlock()
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("delete quarantine rows: %w", err)
	}
	return n, nil
}

// Audit implements ledger.Remover: the erasures table of the ledger file.
func (s *Store) Audit(ctx context.Context, a ledger.Audit) error {
	_, err := s.ledgerWriter.ExecContext(ctx, `INSERT INTO erasures (at, app_key, recordings, log_rows, files, outbound, quarantine)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, a.At, a.AppKey, a.Removed.Recordings, a.Removed.LogRows, a.Removed.Files, a.Removed.Outbound, a.Quarantine)
	if err != nil {
		return fmt.Errorf("audit erasure: %w", err)
	}
	return nil
}

// Scrub implements removal.Scrubber: both files' write-ahead logs still
// hold the pages as they were before a removal, so they are checkpointed
// and truncated. A reader in the middle of a read keeps a checkpoint from
// finishing; Scrub tries for a few seconds. With CheckpointsExternal the
// write-ahead logs belong to the process that checkpoints them (Litestream,
// which holds a read transaction and would keep a truncation busy until it
// failed the erasure): Scrub leaves them alone, and what they held stays
// until that process checkpoints, and in its replicas until their own
// retention (docs/operations.md says so).
func (s *Store) Scrub(ctx context.Context) error {
	if s.opts.Checkpoints == CheckpointsExternal {
		return nil
	}
	for _, f := range []struct {
		db   *sql.DB
		name string
	}{{s.checkpointer, "log"}, {s.ledgerWriter, "ledger"}} {
		if err := s.truncateWAL(ctx, f.db); err != nil {
			return fmt.Errorf("truncate the %s file's write-ahead log: %w", f.name, err)
		}
	}
	return nil
}

// scrubBusy is how long one truncation waits for the writer and the
// readers. A TRUNCATE checkpoint holds the write lock while it waits for
// readers: with the store's busy timeout (3 s) a reader (a backup, a long
// query) held every callback's commit that long, at each try. Short
// tries, with the lock free between them, leave the writers a stall of
// this much at most.
const scrubBusy = 50 * time.Millisecond

// truncateWAL checkpoints and truncates db's write-ahead log, in short
// tries for a few seconds.
func (s *Store) truncateWAL(ctx context.Context, db *sql.DB) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA busy_timeout = %d`, scrubBusy.Milliseconds())); err != nil {
		return err
	}
	// The connection goes back to the pool: its own busy timeout again.
	defer conn.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf(`PRAGMA busy_timeout = %d`, s.opts.BusyTimeout.Milliseconds()))
	for try := 0; ; try++ {
		var busy, frames, done int
		if err := conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &frames, &done); err != nil {
			return err
		}
		if busy == 0 {
			return nil
		}
		if try == 100 {
			return errors.New("readers kept it busy")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

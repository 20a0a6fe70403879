package sqlitestore

import (
	"context"
	"fmt"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/storesql"
	"github.com/recledger/recledger/rc"
)

// Rebuild implements ledger.Store: in one transaction of the ledger file it
// empties the projections and applies every original (non-duplicate) event
// of the log, one recording at a time. Callbacks arriving meanwhile are
// logged as usual; the projector waits for the rebuild and applies them on
// top.
func (s *Store) Rebuild(ctx context.Context) (int64, error) {
	s.proj.work.Lock()
	defer s.proj.work.Unlock()
	s.proj.cache.clear()
	tx, err := s.ledgerWriter.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("rebuild: %w", err)
	}
	defer tx.Rollback()
	for _, q := range []string{`DELETE FROM recordings`, `DELETE FROM files`, `DELETE FROM totals`} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return 0, fmt.Errorf("rebuild: %w", err)
		}
	}
	var upTo int64
	if err := s.reader.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM events`).Scan(&upTo); err != nil {
		return 0, fmt.Errorf("rebuild: %w", err)
	}
	// One recording at a time (the events_by_record index gives that order),
	// so memory holds one state however large the log.
	rows, err := s.reader.QueryContext(ctx, `SELECT seq, record_id, received_at, body FROM events
		WHERE duplicate = 0 AND seq <= ? ORDER BY record_id, seq`, upTo)
	if err != nil {
		return 0, fmt.Errorf("rebuild: %w", err)
	}
	defer rows.Close()
	var (
		st       ledger.State
		current  string
		firstSeq int64
		applied  int64
	)
	flush := func() error {
		if st.RecordID == "" { // nothing of it parsed
			return nil
		}
		sv, err := newSave(&projected{state: st, firstSeq: firstSeq})
		if err != nil {
			return err
		}
		return sv.write(ctx, tx, &s.stmts)
	}
	for rows.Next() {
		var (
			seq  int64
			id   string
			at   int64
			body []byte
		)
		if err := rows.Scan(&seq, &id, &at, &body); err != nil {
			return 0, fmt.Errorf("rebuild: %w", err)
		}
		if id != current {
			if err := flush(); err != nil {
				return 0, fmt.Errorf("rebuild: %w", err)
			}
			st, current, firstSeq = ledger.State{}, id, seq
		}
		cb, err := rc.Parse(body)
		if err != nil { // logged by a build whose Parse accepted it
			s.opts.Logger.Error("a logged callback no longer parses; not projected", "recordId", id, "err", err)
			continue
		}
		st = ledger.Apply(st, cb, at)
		applied++
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("rebuild: %w", err)
	}
	rows.Close()
	if err := flush(); err != nil {
		return 0, fmt.Errorf("rebuild: %w", err)
	}
	if _, err := tx.ExecContext(ctx, storesql.RebuildTotals); err != nil {
		return 0, fmt.Errorf("rebuild totals: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE projection SET seq = ? WHERE id = 1`, upTo); err != nil {
		return 0, fmt.Errorf("rebuild: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("rebuild: %w", err)
	}
	s.proj.advance(upTo)
	return applied, nil
}

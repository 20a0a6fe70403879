package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/recledger/recledger/internal/engine"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/storesql"
)

var (
	_ ledger.Remover       = (*Store)(nil)
	_ ledger.Verifications = (*Store)(nil)
)

// Forget implements ledger.Remover in one transaction. It first takes the
// watermark's row lock, which a projection's Save takes too, so no step
// commits between its reads and its deletions; it then counts a removal
// in that row (projection.removals), on which every Save is fenced: a
// projector (on any instance) that cached a record it deletes fails its
// next Save with engine.ErrRemoved, drops its cache and steps again.
// Deleted rows stay in PostgreSQL's files as dead tuples until VACUUM
// (autovacuum) reclaims the space, and their bytes until it is reused
// (docs/operations.md says when to run VACUUM FULL).
func (s *Store) Forget(ctx context.Context, recordIDs []string) (ledger.Removed, error) {
	var out ledger.Removed
	if len(recordIDs) == 0 {
		return out, nil
	}
	err := s.eng.Exclusive(ctx, func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			out = ledger.Removed{}
			if _, err := tx.Exec(ctx, `SELECT 1 FROM projection WHERE id = 1 FOR UPDATE`); err != nil {
				return fmt.Errorf("forget: lock the projection: %w", err)
			}
			rows, err := tx.Query(ctx, `SELECT record_id, state FROM recordings WHERE record_id = ANY($1) FOR UPDATE`, recordIDs)
			if err != nil {
				return fmt.Errorf("forget: load records: %w", err)
			}
			var f engine.Forgotten
			for rows.Next() {
				var (
					id   string
					blob []byte
				)
				if err := rows.Scan(&id, &blob); err != nil {
					return fmt.Errorf("forget: load records: %w", err)
				}
				if err := f.Add(id, blob); err != nil {
					return err
				}
			}
			out.Files = f.Files
			ids, seqs, totals := f.IDs, f.Seqs, f.Totals
			if err := rows.Err(); err != nil {
				return fmt.Errorf("forget: load records: %w", err)
			}
			if len(ids) == 0 {
				return nil
			}
			out.Recordings = int64(len(ids))
			ct, err := tx.Exec(ctx, `UPDATE log SET body = ''::bytea WHERE id IN (SELECT log_id FROM feed WHERE seq = ANY($1)) AND length(body) > 0`, seqs)
			if err != nil {
				return fmt.Errorf("forget: tombstone log rows: %w", err)
			}
			out.LogRows = ct.RowsAffected()
			b := &pgx.Batch{}
			b.Queue(`UPDATE feed SET duplicate = false WHERE seq = ANY($1) AND duplicate`, seqs)
			b.Queue(`DELETE FROM files WHERE record_id = ANY($1)`, ids)
			b.Queue(`DELETE FROM recordings WHERE record_id = ANY($1)`, ids)
			b.Queue(`DELETE FROM delivery_held WHERE record_id = ANY($1)`, ids)
			b.Queue(`DELETE FROM dead_letters WHERE record_id = ANY($1)`, ids)
			b.Queue(`DELETE FROM verifications WHERE record_id = ANY($1)`, ids)
			b.Queue(`DELETE FROM outbound WHERE record_id = ANY($1)`, ids).Exec(func(ct pgconn.CommandTag) error {
				out.Outbound = ct.RowsAffected()
				return nil
			})
			queueTotals(b, totals)
			b.Queue(`UPDATE projection SET removals = removals + 1 WHERE id = 1`)
			if err := tx.SendBatch(ctx, b).Close(); err != nil {
				return fmt.Errorf("forget: %w", err)
			}
			return nil
		})
	})
	if err != nil {
		return ledger.Removed{}, err
	}
	return out, nil
}

// NamingRecordings implements ledger.Remover.
func (s *Store) NamingRecordings(ctx context.Context, user, appKey string) ([]string, error) {
	if err := s.eng.Fresh(ctx); err != nil {
		return nil, fmt.Errorf("recordings naming a user: %w", err)
	}
	rows, err := s.pool.Query(ctx, `SELECT r.state FROM files f JOIN recordings r ON r.record_id = f.record_id
		WHERE f.name_hash = $1 AND ($2 = '' OR r.app_key = $2)`, engine.NameHash(engine.UserKey(user)), appKey)
	if err != nil {
		return nil, fmt.Errorf("recordings naming a user: %w", err)
	}
	defer rows.Close()
	states, err := storesql.ScanStates(rows)
	if err != nil {
		return nil, fmt.Errorf("recordings naming a user: %w", err)
	}
	var ids []string
	for i := range states {
		if engine.NamesUser(&states[i], user) {
			ids = append(ids, states[i].RecordID)
		}
	}
	return ids, nil
}

// Expired implements ledger.Remover.
func (s *Store) Expired(ctx context.Context, cutoff time.Time, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT record_id FROM recordings WHERE last_event_at < $1 ORDER BY last_event_at LIMIT $2`,
		cutoff.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("expired recordings: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("expired recordings: %w", err)
	}
	return ids, nil
}

// PruneQuarantine implements ledger.Remover.
func (s *Store) PruneQuarantine(ctx context.Context, cutoff time.Time, limit int) (int64, error) {
	ct, err := s.pool.Exec(ctx, `DELETE FROM quarantine WHERE id IN (SELECT id FROM quarantine WHERE at < $1 ORDER BY id LIMIT $2)`,
		cutoff.UnixMilli(), limit)
	if err != nil {
		return 0, fmt.Errorf("prune quarantine: %w", err)
	}
	return ct.RowsAffected(), nil
}

// EraseQuarantine implements ledger.Remover. Text columns are searched as
// text (PostgreSQL text holds no NUL; the API refuses such ids), the body
// as bytes.
func (s *Store) EraseQuarantine(ctx context.Context, needle []byte) (int64, error) {
	if len(needle) == 0 {
		return 0, nil
	}
	ct, err := s.pool.Exec(ctx, `DELETE FROM quarantine WHERE position($1::bytea in body) > 0
		OR strpos(header::text, $2) > 0 OR strpos(path, $2) > 0 OR strpos(app_key, $2) > 0
		OR strpos(message, $2) > 0 OR strpos(remote, $2) > 0`, needle, string(needle))
	if err != nil {
		return 0, fmt.Errorf("erase quarantine rows: %w", err)
	}
	return ct.RowsAffected(), nil
}

// Audit implements ledger.Remover.
func (s *Store) Audit(ctx context.Context, a ledger.Audit) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO erasures (at, app_key, recordings, log_rows, files, outbound, quarantine)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, a.At, a.AppKey, a.Removed.Recordings, a.Removed.LogRows, a.Removed.Files, a.Removed.Outbound, a.Quarantine)
	if err != nil {
		return fmt.Errorf("audit erasure: %w", err)
	}
	return nil
}

package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// RevokeSession records that the dashboard session id ended before until,
// its expiry, for every instance on this database (access.Revocations).
// Expired entries go in the same transaction.
func (s *Store) RevokeSession(ctx context.Context, id string, until time.Time) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO revoked_sessions (id, until) VALUES ($1, $2)
			ON CONFLICT (id) DO UPDATE SET until = GREATEST(revoked_sessions.until, excluded.until)`, id, until.UnixMilli()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM revoked_sessions WHERE until <= $1`, s.opts.Now().UnixMilli())
		return err
	})
	if err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	return nil
}

// RevokedSessions returns the revoked sessions that have not expired by
// now (access.Revocations).
func (s *Store) RevokedSessions(ctx context.Context, now time.Time) (map[string]time.Time, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, until FROM revoked_sessions WHERE until > $1`, now.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("read revoked sessions: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var (
			id    string
			until int64
		)
		if err := rows.Scan(&id, &until); err != nil {
			return nil, fmt.Errorf("read revoked sessions: %w", err)
		}
		out[id] = time.UnixMilli(until)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read revoked sessions: %w", err)
	}
	return out, nil
}

package sqlitestore

import (
	"context"
	"fmt"
	"time"
)

// RevokeSession records that the dashboard session id ended before until,
// its expiry (access.Revocations). Logouts are rare: it writes through the
// log's writer connection, between group commits, and drops the entries
// whose sessions have expired in the same transaction.
func (s *Store) RevokeSession(ctx context.Context, id string, until time.Time) error {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO revoked_sessions (id, until) VALUES (?, ?)
		ON CONFLICT (id) DO UPDATE SET until = MAX(until, excluded.until)`, id, until.UnixMilli()); err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM revoked_sessions WHERE until <= ?`, s.opts.Now().UnixMilli()); err != nil {
		return fmt.Errorf("prune revoked sessions: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	return nil
}

// RevokedSessions returns the revoked sessions that have not expired by
// now (access.Revocations).
func (s *Store) RevokedSessions(ctx context.Context, now time.Time) (map[string]time.Time, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT id, until FROM revoked_sessions WHERE until > ?`, now.UnixMilli())
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

package sqlitestore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/recledger/recledger/internal/ledger"
)

// ListRecordings implements ledger.Store. Pages follow first_seq, the seq of
// a recording's first event, newest first: it never changes and a rebuild
// gives the same, so a page boundary stays put whatever arrives meanwhile
// (new recordings get larger ones, before the first page).
func (s *Store) ListRecordings(ctx context.Context, f ledger.RecordingFilter) (ledger.RecordingPage, error) {
	limit, err := ledger.PageLimit(f)
	if err != nil {
		return ledger.RecordingPage{}, err
	}
	var (
		where []string
		args  []any
	)
	add := func(cond string, v any) {
		where = append(where, cond)
		args = append(args, v)
	}
	if f.Cursor != "" {
		before, err := ledger.DecodeCursor(f)
		if err != nil {
			return ledger.RecordingPage{}, err
		}
		add("first_seq < ?", before)
	}
	for _, eq := range []struct{ col, v string }{
		{"app_key", f.AppKey}, {"room_id", f.RoomID}, {"session_id", f.SessionID}, {"user_id", f.UserID}, {"status", string(f.Status)},
	} {
		if eq.v != "" {
			add(eq.col+" = ?", eq.v)
		}
	}
	if f.Mode != nil {
		add("mode = ?", int64(*f.Mode))
	}
	if f.Since != nil {
		add("COALESCE(started_at, first_seen_at) >= ?", *f.Since)
	}
	if f.Until != nil {
		add("COALESCE(started_at, first_seen_at) <= ?", *f.Until)
	}
	q := `SELECT first_seq, state FROM recordings`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY first_seq DESC LIMIT ?`
	args = append(args, limit+1) // one more tells whether a next page exists

	if err := s.proj.wait(ctx); err != nil {
		return ledger.RecordingPage{}, fmt.Errorf("list recordings: %w", err)
	}
	rows, err := s.ledgerReader.QueryContext(ctx, q, args...)
	if err != nil {
		return ledger.RecordingPage{}, fmt.Errorf("list recordings: %w", err)
	}
	defer rows.Close()
	var (
		page ledger.RecordingPage
		ids  []int64
	)
	for rows.Next() {
		var (
			id  int64
			raw []byte
			st  ledger.State
		)
		if err := rows.Scan(&id, &raw); err != nil {
			return ledger.RecordingPage{}, fmt.Errorf("list recordings: %w", err)
		}
		if err := json.Unmarshal(raw, &st); err != nil {
			return ledger.RecordingPage{}, fmt.Errorf("list recordings: %w", err)
		}
		page.Items = append(page.Items, st)
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return ledger.RecordingPage{}, fmt.Errorf("list recordings: %w", err)
	}
	if len(page.Items) > limit {
		page.Items = page.Items[:limit]
		page.Next = ledger.EncodeCursor(ids[limit-1], f)
	}
	return page, nil
}

// FileRecordings implements ledger.Store.
func (s *Store) FileRecordings(ctx context.Context, fileName string) ([]ledger.State, error) {
	if err := s.proj.wait(ctx); err != nil {
		return nil, fmt.Errorf("find file %s: %w", fileName, err)
	}
	rows, err := s.ledgerReader.QueryContext(ctx, `SELECT r.state FROM files f JOIN recordings r ON r.record_id = f.record_id
		WHERE f.file_name = ? ORDER BY r.first_seq DESC`, fileName)
	if err != nil {
		return nil, fmt.Errorf("find file %s: %w", fileName, err)
	}
	defer rows.Close()
	var out []ledger.State
	for rows.Next() {
		var (
			raw []byte
			st  ledger.State
		)
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("find file %s: %w", fileName, err)
		}
		if err := json.Unmarshal(raw, &st); err != nil {
			return nil, fmt.Errorf("find file %s: %w", fileName, err)
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// Stats implements ledger.Store.
func (s *Store) Stats(ctx context.Context, now time.Time) (ledger.Stats, error) {
	st := ledger.Stats{RecordingsByStatus: map[ledger.Status]int64{}}
	if err := s.proj.wait(ctx); err != nil {
		return st, fmt.Errorf("stats: %w", err)
	}
	rows, err := s.ledgerReader.QueryContext(ctx, `SELECT status, COUNT(*), COALESCE(SUM(file_count - uploaded_count), 0) FROM recordings GROUP BY status`)
	if err != nil {
		return st, fmt.Errorf("stats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			status         string
			count, pending int64
		)
		if err := rows.Scan(&status, &count, &pending); err != nil {
			return st, fmt.Errorf("stats: %w", err)
		}
		st.RecordingsByStatus[ledger.Status(status)] = count
		st.FilesPending += pending
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("stats: %w", err)
	}
	deadline := now.Add(-ledger.OverdueAfter).UnixMilli()
	if err := s.ledgerReader.QueryRowContext(ctx, `SELECT COALESCE(SUM(file_count - uploaded_count), 0) FROM recordings
		WHERE end_received_at IS NOT NULL AND end_received_at < ?`, deadline).Scan(&st.FilesOverdue); err != nil {
		return st, fmt.Errorf("stats: %w", err)
	}
	s.mu.Lock()
	st.QuarantineCount, st.QuarantineBytes = s.quarantine.count, s.quarantine.bytes
	s.mu.Unlock()
	st.LoggedSeq = s.proj.logged.Load()
	s.proj.mu.Lock()
	st.ProjectedSeq = s.proj.projected
	s.proj.mu.Unlock()
	return st, nil
}

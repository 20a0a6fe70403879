package sqlitestore

import (
	"context"
	"fmt"
	"time"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/storesql"
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
	q, args, err := storesql.RecordingPageQuery(f, limit, func(int) string { return "?" })
	if err != nil {
		return ledger.RecordingPage{}, err
	}
	if err := s.proj.wait(ctx); err != nil {
		return ledger.RecordingPage{}, fmt.Errorf("list recordings: %w", err)
	}
	rows, err := s.ledgerReader.QueryContext(ctx, q, args...)
	if err != nil {
		return ledger.RecordingPage{}, fmt.Errorf("list recordings: %w", err)
	}
	defer rows.Close()
	return storesql.ScanRecordingPage(rows, f, limit)
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
	states, err := storesql.ScanStates(rows)
	if err != nil {
		return nil, fmt.Errorf("find file %s: %w", fileName, err)
	}
	return states, nil
}

// Stats implements ledger.Store.
func (s *Store) Stats(ctx context.Context, now time.Time) (ledger.Stats, error) {
	if err := s.proj.wait(ctx); err != nil {
		return ledger.Stats{}, fmt.Errorf("stats: %w", err)
	}
	query := func(ctx context.Context, q string, args ...any) (storesql.Rows, func(), error) {
		rows, err := s.ledgerReader.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, nil, err
		}
		return rows, func() { rows.Close() }, nil
	}
	st, err := storesql.ReadTotals(ctx, query, fmt.Sprintf(storesql.OverdueQuery, "INDEXED BY recordings_not_uploaded"), now)
	if err != nil {
		return st, err
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

// Activity implements ledger.Store.
func (s *Store) Activity(ctx context.Context, since int64) ([]ledger.Minute, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT minute, callbacks, duplicates, rejected FROM activity WHERE minute >= ? ORDER BY minute`,
		ledger.MinuteOf(since))
	if err != nil {
		return nil, fmt.Errorf("activity: %w", err)
	}
	defer rows.Close()
	return storesql.ScanMinutes(rows)
}

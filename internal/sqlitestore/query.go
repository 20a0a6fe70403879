package sqlitestore

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/recledger/recledger/internal/engine"
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
	if err := s.eng.Fresh(ctx); err != nil {
		return ledger.RecordingPage{}, fmt.Errorf("list recordings: %w", err)
	}
	rows, err := s.ledgerReader.QueryContext(ctx, q, args...)
	if err != nil {
		return ledger.RecordingPage{}, fmt.Errorf("list recordings: %w", err)
	}
	defer rows.Close()
	return storesql.ScanRecordingPage(rows, f, limit)
}

// ListFiles implements ledger.Store (storesql.ListFiles), pinning the
// partial index where it applies: without statistics SQLite's planner
// would rather walk first_seq's own index over every recording.
func (s *Store) ListFiles(ctx context.Context, f ledger.FileFilter) (ledger.FilePage, error) {
	if err := s.eng.Fresh(ctx); err != nil {
		return ledger.FilePage{}, fmt.Errorf("list files: %w", err)
	}
	query := func(ctx context.Context, q string, args ...any) (storesql.Rows, func(), error) {
		rows, err := s.ledgerReader.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, nil, err
		}
		return rows, func() { rows.Close() }, nil
	}
	return storesql.ListFiles(ctx, query, f, func(int) string { return "?" }, func(index string) string { return "INDEXED BY " + index })
}

// CountRecordings implements ledger.Store.
func (s *Store) CountRecordings(ctx context.Context, f ledger.RecordingFilter, upTo int) (int64, error) {
	if err := storesql.CheckVerificationFilter(f.Verification); err != nil {
		return 0, err
	}
	q, args := storesql.RecordingCountQuery(f, upTo, func(int) string { return "?" })
	if err := s.eng.Fresh(ctx); err != nil {
		return 0, fmt.Errorf("count recordings: %w", err)
	}
	var n int64
	if err := s.ledgerReader.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count recordings: %w", err)
	}
	return n, nil
}

// FileRecordings implements ledger.Store. Files are indexed by a hash of
// their name; the records found are checked for the name itself.
func (s *Store) FileRecordings(ctx context.Context, fileName string) ([]ledger.State, error) {
	if err := s.eng.Fresh(ctx); err != nil {
		return nil, fmt.Errorf("find file %s: %w", fileName, err)
	}
	rows, err := s.ledgerReader.QueryContext(ctx, `SELECT r.state FROM files f JOIN recordings r ON r.id = f.recording
		WHERE f.name_hash = ? ORDER BY r.first_seq DESC`, engine.NameHash(fileName))
	if err != nil {
		return nil, fmt.Errorf("find file %s: %w", fileName, err)
	}
	defer rows.Close()
	states, err := storesql.ScanStates(rows)
	if err != nil {
		return nil, fmt.Errorf("find file %s: %w", fileName, err)
	}
	return slices.DeleteFunc(states, func(st ledger.State) bool { _, ok := st.Files[fileName]; return !ok }), nil
}

// Stats implements ledger.Store.
func (s *Store) Stats(ctx context.Context, now time.Time) (ledger.Stats, error) {
	if err := s.eng.Fresh(ctx); err != nil {
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
	if err := s.reader.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM log`).Scan(&st.LoggedSeq); err != nil {
		return st, fmt.Errorf("stats: %w", err)
	}
	st.ProjectedSeq = s.eng.Projected().Seq
	return st, nil
}

// Activity implements ledger.Store: callbacks and duplicates as the
// engine counted them (the ledger file), rejections as the quarantine's
// commits did (the log file).
func (s *Store) Activity(ctx context.Context, since int64) ([]ledger.Minute, error) {
	if err := s.eng.Fresh(ctx); err != nil {
		return nil, fmt.Errorf("activity: %w", err)
	}
	since = ledger.MinuteOf(since)
	counted := map[int64]*ledger.Minute{}
	for _, q := range []struct {
		db  *sql.DB
		sql string
	}{
		{s.ledgerReader, `SELECT minute, callbacks, duplicates, 0 FROM activity WHERE minute >= ?`},
		{s.reader, `SELECT minute, callbacks, duplicates, rejected FROM activity WHERE minute >= ?`},
	} {
		rows, err := q.db.QueryContext(ctx, q.sql, since)
		if err != nil {
			return nil, fmt.Errorf("activity: %w", err)
		}
		ms, err := storesql.ScanMinutes(rows)
		rows.Close()
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			c := counted[m.Start]
			if c == nil {
				c = &ledger.Minute{Start: m.Start}
				counted[m.Start] = c
			}
			c.Callbacks += m.Callbacks
			c.Duplicates += m.Duplicates
			c.Rejected += m.Rejected
		}
	}
	out := make([]ledger.Minute, 0, len(counted))
	for _, m := range counted {
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b ledger.Minute) int { return cmp.Compare(a.Start, b.Start) })
	return out, nil
}

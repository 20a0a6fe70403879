package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/recledger/recledger/internal/engine"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/storesql"
)

// Recording implements ledger.Store. Like every read of the projections
// it first waits for the engine to project what this instance committed
// (engine.Fresh): a client that got a 200 then reads sees its callback.
func (s *Store) Recording(ctx context.Context, recordID string) (ledger.State, error) {
	rec, err := s.record(ctx, recordID)
	return rec.State, err
}

// record reads a recording's stored record.
func (s *Store) record(ctx context.Context, recordID string) (engine.Record, error) {
	if err := s.eng.Fresh(ctx); err != nil {
		return engine.Record{}, fmt.Errorf("read recording %s: %w", recordID, err)
	}
	var blob []byte
	err := s.pool.QueryRow(ctx, `SELECT state FROM recordings WHERE record_id = $1`, recordID).Scan(&blob)
	if isNoRows(err) {
		return engine.Record{}, fmt.Errorf("recording %s: %w", recordID, ledger.ErrNotFound)
	}
	if err != nil {
		return engine.Record{}, fmt.Errorf("read recording %s: %w", recordID, err)
	}
	rec, err := engine.DecodeRecord(blob)
	if err != nil {
		return engine.Record{}, fmt.Errorf("read recording %s: %w", recordID, err)
	}
	return rec, nil
}

// feedColumns are what scanFeed reads: a feed row joined with its log row.
const feedColumns = `f.seq, l.received_at, l.body, f.duplicate FROM feed f JOIN log l ON l.id = f.log_id`

// RecordingEvents implements ledger.Store: the record's event index names
// its feed rows.
func (s *Store) RecordingEvents(ctx context.Context, recordID string) ([]ledger.Event, error) {
	rec, err := s.record(ctx, recordID)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read events of %s: %w", recordID, err)
	}
	if len(rec.Events) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+feedColumns+` WHERE f.seq = ANY($1) ORDER BY f.seq`, sortedSeqs(rec.Events))
	if err != nil {
		return nil, fmt.Errorf("read events of %s: %w", recordID, err)
	}
	return scanFeed(rows)
}

// Events implements ledger.Store. The feed's seqs follow commit order
// without gaps, so a reader that continues after the last seq it saw
// misses nothing.
func (s *Store) Events(ctx context.Context, after int64, limit int) ([]ledger.Event, error) {
	if err := s.eng.FreshFeed(ctx, after, limit); err != nil {
		return nil, fmt.Errorf("read events after %d: %w", after, err)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+feedColumns+` WHERE f.seq > $1 ORDER BY f.seq LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read events after %d: %w", after, err)
	}
	return scanFeed(rows)
}

// LatestEvents implements ledger.Store.
func (s *Store) LatestEvents(ctx context.Context, n int) ([]ledger.Event, error) {
	if err := s.eng.Fresh(ctx); err != nil {
		return nil, fmt.Errorf("read latest events: %w", err)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+feedColumns+` ORDER BY f.seq DESC LIMIT $1`, n)
	if err != nil {
		return nil, fmt.Errorf("read latest events: %w", err)
	}
	events, err := scanFeed(rows)
	slices.Reverse(events)
	return events, err
}

// scanFeed reads rows of feedColumns and closes them.
func scanFeed(rows pgx.Rows) ([]ledger.Event, error) {
	defer rows.Close()
	var out []ledger.Event
	for rows.Next() {
		var (
			seq, at int64
			body    []byte
			dup     bool
		)
		if err := rows.Scan(&seq, &at, &body, &dup); err != nil {
			return nil, fmt.Errorf("read events: %w", err)
		}
		out = append(out, engine.Event(seq, at, body, dup))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return out, nil
}

// QuarantineList implements ledger.Store.
func (s *Store) QuarantineList(ctx context.Context, before int64, limit int) ([]ledger.Rejection, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	rows, err := s.pool.Query(ctx, `SELECT id, at, status, reason, app_key, message, remote, method, path, header, body, body_size
		FROM quarantine WHERE id < $1 ORDER BY id DESC LIMIT $2`, before, limit)
	if err != nil {
		return nil, fmt.Errorf("read quarantine: %w", err)
	}
	defer rows.Close()
	var out []ledger.Rejection
	for rows.Next() {
		var (
			r      ledger.Rejection
			header []byte
		)
		if err := rows.Scan(&r.ID, &r.At, &r.Status, &r.Reason, &r.AppKey, &r.Message, &r.Remote, &r.Method, &r.Path, &header, &r.Body, &r.BodySize); err != nil {
			return nil, fmt.Errorf("read quarantine: %w", err)
		}
		if err := json.Unmarshal(header, &r.Header); err != nil {
			return nil, fmt.Errorf("read quarantine %d: %w", r.ID, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ListRecordings implements ledger.Store, paging by first_seq like every
// backend (see ledger.EncodeCursor).
func (s *Store) ListRecordings(ctx context.Context, f ledger.RecordingFilter) (ledger.RecordingPage, error) {
	limit, err := ledger.PageLimit(f)
	if err != nil {
		return ledger.RecordingPage{}, err
	}
	q, args, err := storesql.RecordingPageQuery(f, limit, func(n int) string { return "$" + strconv.Itoa(n) })
	if err != nil {
		return ledger.RecordingPage{}, err
	}
	if err := s.eng.Fresh(ctx); err != nil {
		return ledger.RecordingPage{}, fmt.Errorf("list recordings: %w", err)
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return ledger.RecordingPage{}, fmt.Errorf("list recordings: %w", err)
	}
	defer rows.Close()
	return storesql.ScanRecordingPage(rows, f, limit)
}

// ListFiles implements ledger.Store (storesql.ListFiles); PostgreSQL's
// planner picks its indexes itself.
func (s *Store) ListFiles(ctx context.Context, f ledger.FileFilter) (ledger.FilePage, error) {
	if err := s.eng.Fresh(ctx); err != nil {
		return ledger.FilePage{}, fmt.Errorf("list files: %w", err)
	}
	query := func(ctx context.Context, q string, args ...any) (storesql.Rows, func(), error) {
		rows, err := s.pool.Query(ctx, q, args...)
		if err != nil {
			return nil, nil, err
		}
		return rows, rows.Close, nil
	}
	return storesql.ListFiles(ctx, query, f, func(n int) string { return "$" + strconv.Itoa(n) }, func(string) string { return "" })
}

// CountRecordings implements ledger.Store.
func (s *Store) CountRecordings(ctx context.Context, f ledger.RecordingFilter, upTo int) (int64, error) {
	if err := storesql.CheckVerificationFilter(f.Verification); err != nil {
		return 0, err
	}
	q, args := storesql.RecordingCountQuery(f, upTo, func(n int) string { return "$" + strconv.Itoa(n) })
	if err := s.eng.Fresh(ctx); err != nil {
		return 0, fmt.Errorf("count recordings: %w", err)
	}
	var n int64
	if err := s.pool.QueryRow(ctx, q, args...).Scan(&n); err != nil {
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
	rows, err := s.pool.Query(ctx, `SELECT r.state FROM files f JOIN recordings r ON r.record_id = f.record_id
		WHERE f.name_hash = $1 ORDER BY r.first_seq DESC`, engine.NameHash(fileName))
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
		rows, err := s.pool.Query(ctx, q, args...)
		if err != nil {
			return nil, nil, err
		}
		return rows, rows.Close, nil
	}
	st, err := storesql.ReadTotals(ctx, query, strings.Replace(fmt.Sprintf(storesql.OverdueQuery, ""), "?", "$1", 1), now)
	if err != nil {
		return st, err
	}
	err = s.pool.QueryRow(ctx, `SELECT
		(SELECT COUNT(*) FROM quarantine), (SELECT COALESCE(SUM(stored_size), 0) FROM quarantine),
		p.seq, (SELECT COUNT(*) FROM log l WHERE (l.tx, l.id) > (p.tx, p.log_id))
		FROM projection p WHERE p.id = 1`).
		Scan(&st.QuarantineCount, &st.QuarantineBytes, &st.ProjectedSeq, &st.LoggedSeq)
	if err != nil {
		return st, fmt.Errorf("stats: %w", err)
	}
	// The log has no feed seqs: rows beyond the watermark get the next ones.
	st.LoggedSeq += st.ProjectedSeq
	return st, nil
}

// Rebuild implements ledger.Store through the engine: it empties the
// projections and derives them again from the whole log. It takes the
// projector's lock first, and refuses while another instance holds it
// (run it there, or with the others stopped).
func (s *Store) Rebuild(ctx context.Context) (int64, error) {
	if err := s.drv.claim(ctx); err != nil {
		return 0, fmt.Errorf("rebuild: %w", err)
	}
	return s.eng.Rebuild(ctx)
}

// Activity implements ledger.Store.
func (s *Store) Activity(ctx context.Context, since int64) ([]ledger.Minute, error) {
	if err := s.eng.Fresh(ctx); err != nil { // the engine counts the callbacks
		return nil, fmt.Errorf("activity: %w", err)
	}
	rows, err := s.pool.Query(ctx, `SELECT minute, callbacks, duplicates, rejected FROM activity WHERE minute >= $1 ORDER BY minute`,
		ledger.MinuteOf(since))
	if err != nil {
		return nil, fmt.Errorf("activity: %w", err)
	}
	defer rows.Close()
	return storesql.ScanMinutes(rows)
}

// sortedSeqs returns the seqs of a record's events, ascending.
func sortedSeqs(refs []engine.EventRef) []int64 {
	seqs := make([]int64, len(refs))
	for i, r := range refs {
		seqs[i] = r.Seq
	}
	slices.Sort(seqs)
	return seqs
}

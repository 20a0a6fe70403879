package pgstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/storesql"
	"github.com/recledger/recledger/rc"
)

// Recording implements ledger.Store. Projections commit with their events,
// so a read sees every callback acknowledged before it.
func (s *Store) Recording(ctx context.Context, recordID string) (ledger.State, error) {
	var raw []byte
	err := s.pool.QueryRow(ctx, `SELECT state FROM recordings WHERE record_id = $1`, recordID).Scan(&raw)
	if isNoRows(err) {
		return ledger.State{}, fmt.Errorf("recording %s: %w", recordID, ledger.ErrNotFound)
	}
	if err != nil {
		return ledger.State{}, fmt.Errorf("read recording %s: %w", recordID, err)
	}
	var st ledger.State
	if err := json.Unmarshal(raw, &st); err != nil {
		return ledger.State{}, fmt.Errorf("read recording %s: %w", recordID, err)
	}
	return st, nil
}

const eventColumns = storesql.EventColumns

// RecordingEvents implements ledger.Store.
func (s *Store) RecordingEvents(ctx context.Context, recordID string) ([]ledger.Event, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+eventColumns+` FROM events WHERE record_id = $1 ORDER BY seq`, recordID)
	if err != nil {
		return nil, fmt.Errorf("read events of %s: %w", recordID, err)
	}
	return scanEvents(rows)
}

// Events implements ledger.Store. seq follows commit order, so a reader
// that continues after the last seq it saw misses nothing.
func (s *Store) Events(ctx context.Context, after int64, limit int) ([]ledger.Event, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+eventColumns+` FROM events WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read events after %d: %w", after, err)
	}
	return scanEvents(rows)
}

// LatestEvents implements ledger.Store.
func (s *Store) LatestEvents(ctx context.Context, n int) ([]ledger.Event, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+eventColumns+` FROM events ORDER BY seq DESC LIMIT $1`, n)
	if err != nil {
		return nil, fmt.Errorf("read latest events: %w", err)
	}
	events, err := scanEvents(rows)
	slices.Reverse(events)
	return events, err
}

func scanEvents(rows pgx.Rows) ([]ledger.Event, error) {
	defer rows.Close()
	return storesql.ScanEvents(rows)
}

// QuarantineList implements ledger.Store.
func (s *Store) QuarantineList(ctx context.Context, before int64, limit int) ([]ledger.Rejection, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	rows, err := s.pool.Query(ctx, `SELECT id, at, status, reason, message, remote, method, path, header, body, body_size
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
		if err := rows.Scan(&r.ID, &r.At, &r.Status, &r.Reason, &r.Message, &r.Remote, &r.Method, &r.Path, &header, &r.Body, &r.BodySize); err != nil {
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
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return ledger.RecordingPage{}, fmt.Errorf("list recordings: %w", err)
	}
	defer rows.Close()
	return storesql.ScanRecordingPage(rows, f, limit)
}

// FileRecordings implements ledger.Store.
func (s *Store) FileRecordings(ctx context.Context, fileName string) ([]ledger.State, error) {
	rows, err := s.pool.Query(ctx, `SELECT r.state FROM files f JOIN recordings r ON r.record_id = f.record_id
		WHERE f.file_name = $1 ORDER BY r.first_seq DESC`, fileName)
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
		(SELECT last FROM feed WHERE id = 1)`).
		Scan(&st.QuarantineCount, &st.QuarantineBytes, &st.LoggedSeq)
	if err != nil {
		return st, fmt.Errorf("stats: %w", err)
	}
	st.ProjectedSeq = st.LoggedSeq // projections commit with their events
	return st, nil
}

// Rebuild implements ledger.Store: in one transaction, with the recordings
// locked against every instance's writers, it empties the projections and
// applies every original event again, one recording at a time.
func (s *Store) Rebuild(ctx context.Context) (int64, error) {
	var applied int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE recordings, files, totals IN EXCLUSIVE MODE`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM files`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM recordings`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM totals`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT seq, record_id, received_at, body FROM events WHERE NOT duplicate ORDER BY record_id, seq`)
		if err != nil {
			return err
		}
		type rec struct {
			state    ledger.State
			firstSeq int64
		}
		// Collected first: a connection reads one result at a time.
		var (
			states  []rec
			lastID  string
			firstOf int64 // the seq of lastID's first event, parsed or not, as commit sets it
		)
		for rows.Next() {
			var (
				seq, at int64
				id      string
				body    []byte
			)
			if err := rows.Scan(&seq, &id, &at, &body); err != nil {
				rows.Close()
				return err
			}
			if id != lastID {
				lastID, firstOf = id, seq
			}
			cb, err := rc.Parse(body)
			if err != nil {
				s.opts.Logger.Error("a logged callback no longer parses; not projected", "recordId", id, "err", err)
				continue
			}
			if n := len(states); n == 0 || states[n-1].state.RecordID != cb.RecordID {
				states = append(states, rec{firstSeq: firstOf})
			}
			last := &states[len(states)-1]
			last.state = ledger.Apply(last.state, cb, at)
			applied++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, r := range states {
			if _, err := tx.Exec(ctx, `INSERT INTO recordings (record_id, first_seq, app_key, room_id, session_id, user_id, mode, status,
				upload_state, first_seen_at, last_event_at, state) VALUES ($1, $2, '', '', '', '', 0, 'recording', 'none', 0, 0, '\x7b7d'::bytea)`,
				r.state.RecordID, r.firstSeq); err != nil {
				return err
			}
			if err := saveState(ctx, tx, &r.state, nil); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, storesql.RebuildTotals)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("rebuild: %w", err)
	}
	return applied, nil
}

// Activity implements ledger.Store.
func (s *Store) Activity(ctx context.Context, since int64) ([]ledger.Minute, error) {
	rows, err := s.pool.Query(ctx, `SELECT minute, callbacks, duplicates, rejected FROM activity WHERE minute >= $1 ORDER BY minute`,
		ledger.MinuteOf(since))
	if err != nil {
		return nil, fmt.Errorf("activity: %w", err)
	}
	defer rows.Close()
	return storesql.ScanMinutes(rows)
}

// Package storesql holds what the SQL backends share: the recordings page
// query built from a filter, the scanning of states, pages and activity, the
// totals, and the write intake in front of their group commits. Backends
// pass their placeholder style; everything else is the same.
package storesql

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/recledger/recledger/internal/engine"
	"github.com/recledger/recledger/internal/ledger"
)

// Rows is what both database/sql and pgx rows offer.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// OverdueClause is the condition, over the recordings columns
// end_received_at and upload_state, that a recording's uploads are overdue
// once deadline (now - ledger.OverdueAfter, Unix ms) is bound to its "?".
// Stores keep upload_state without overdue, which depends on the clock.
const OverdueClause = "(end_received_at IS NOT NULL AND end_received_at < ? AND upload_state NOT IN ('none', 'complete'))"

// RecordingPageQuery builds the query of one page of recordings f selects,
// newest first by first_seq, asking for one row more than the page to tell
// whether a next one exists. placeholder(n) writes the n-th parameter ("?"
// or "$n").
func RecordingPageQuery(f ledger.RecordingFilter, limit int, placeholder func(n int) string) (string, []any, error) {
	if err := CheckVerificationFilter(f.Verification); err != nil {
		return "", nil, err
	}
	w := recordingWhere{placeholder: placeholder}
	if f.Cursor != "" {
		before, err := ledger.DecodeCursor(f)
		if err != nil {
			return "", nil, err
		}
		w.add("first_seq < ?", before)
	}
	w.filter(f)
	w.args = append(w.args, limit+1)
	q := `SELECT first_seq, state FROM recordings WHERE ` + strings.Join(w.conds, " AND ") +
		` ORDER BY first_seq DESC LIMIT ` + placeholder(len(w.args))
	return q, w.args, nil
}

// RecordingCountQuery builds the query counting the recordings f selects
// (all pages: its Cursor and Limit are ignored), stopping at upTo rows so
// that a broad filter over millions of recordings reads at most upTo index
// entries; the answer upTo means upTo or more.
func RecordingCountQuery(f ledger.RecordingFilter, upTo int, placeholder func(n int) string) (string, []any) {
	w := recordingWhere{placeholder: placeholder}
	w.filter(f)
	w.args = append(w.args, upTo)
	return `SELECT COUNT(*) FROM (SELECT 1 FROM recordings WHERE ` + strings.Join(w.conds, " AND ") +
		` LIMIT ` + placeholder(len(w.args)) + `) AS matched`, w.args
}

// recordingWhere collects a recordings query's conditions and their
// arguments, numbered as they are added.
type recordingWhere struct {
	placeholder func(n int) string
	conds       []string
	args        []any
}

// add appends cond with its "?"s bound, in order, to vs.
func (w *recordingWhere) add(cond string, vs ...any) {
	for _, v := range vs {
		w.args = append(w.args, v)
		cond = strings.Replace(cond, "?", w.placeholder(len(w.args)), 1)
	}
	w.conds = append(w.conds, cond)
}

// filter adds the conditions of f's fields other than Cursor and Limit.
func (w *recordingWhere) filter(f ledger.RecordingFilter) {
	w.conds = append(w.conds, "first_seq IS NOT NULL")
	for _, eq := range []struct{ col, v string }{
		{"app_key", f.AppKey}, {"room_id", f.RoomID}, {"session_id", f.SessionID}, {"user_id", f.UserID}, {"status", string(f.Status)},
	} {
		if eq.v != "" {
			w.add(eq.col+" = ?", eq.v)
		}
	}
	if f.RecordIDPrefix != "" {
		// substr counts characters in both SQLite and PostgreSQL, and an
		// equality is the same under any collation (a range on record_id
		// is not, in PostgreSQL's). It reads every recording's id: a
		// lookup by a short id is rare and a person waits on it, not RC.
		w.add("substr(record_id, 1, ?) = ?", int64(utf8.RuneCountInString(f.RecordIDPrefix)), f.RecordIDPrefix)
	}
	if f.Mode != nil {
		w.add("mode = ?", int64(*f.Mode))
	}
	if f.UploadState != "" {
		now := f.Now
		if now.IsZero() {
			now = time.Now()
		}
		deadline := now.Add(-ledger.OverdueAfter).UnixMilli()
		switch f.UploadState {
		case ledger.UploadOverdue:
			w.add(OverdueClause, deadline)
		case ledger.UploadNone, ledger.UploadComplete: // never overdue
			w.add("upload_state = ?", string(f.UploadState))
		default:
			w.add("upload_state = ?", string(f.UploadState))
			w.add("NOT "+OverdueClause, deadline)
		}
	}
	if f.Verification != "" {
		// Through verifications' state index: the few recordings with a
		// file in that state, not a probe per recording.
		w.add("record_id IN (SELECT record_id FROM verifications WHERE state = ?)", string(f.Verification))
	}
	if f.Since != nil {
		w.add("COALESCE(started_at, first_seen_at) >= ?", *f.Since)
	}
	if f.Until != nil {
		w.add("COALESCE(started_at, first_seen_at) <= ?", *f.Until)
	}
}

// ScanRecordingPage reads the rows of RecordingPageQuery into a page, with
// the cursor of the next one when there is one. The caller closes rows.
func ScanRecordingPage(rows Rows, f ledger.RecordingFilter, limit int) (ledger.RecordingPage, error) {
	var (
		page ledger.RecordingPage
		seqs []int64
	)
	for rows.Next() {
		var (
			seq int64
			raw []byte
		)
		if err := rows.Scan(&seq, &raw); err != nil {
			return ledger.RecordingPage{}, fmt.Errorf("list recordings: %w", err)
		}
		st, err := engine.DecodeState(raw)
		if err != nil {
			return ledger.RecordingPage{}, fmt.Errorf("list recordings: %w", err)
		}
		page.Items = append(page.Items, st)
		seqs = append(seqs, seq)
	}
	if err := rows.Err(); err != nil {
		return ledger.RecordingPage{}, fmt.Errorf("list recordings: %w", err)
	}
	if len(page.Items) > limit {
		page.Items = page.Items[:limit]
		page.Next = ledger.EncodeCursor(seqs[limit-1], f)
	}
	return page, nil
}

// ScanMinutes reads rows of (minute, callbacks, duplicates, rejected). The
// caller closes rows.
func ScanMinutes(rows Rows) ([]ledger.Minute, error) {
	var out []ledger.Minute
	for rows.Next() {
		var m ledger.Minute
		if err := rows.Scan(&m.Start, &m.Callbacks, &m.Duplicates, &m.Rejected); err != nil {
			return nil, fmt.Errorf("activity: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("activity: %w", err)
	}
	return out, nil
}

// The ledger's totals (see ledger.TotalsChange): the totals table and the
// overdue recordings among the not fully uploaded ones, by their stored
// upload state. OverdueQuery's "?" is the deadline (now - OverdueAfter);
// its condition matches the recordings_not_uploaded partial index, and its
// %s takes an index hint where the planner needs one (SQLite, without
// statistics, preferred scanning the upload_state index: seconds at a
// million recordings).
const (
	TotalsQuery  = `SELECT status, upload_state, recordings, pending_files FROM totals`
	OverdueQuery = `SELECT upload_state, COUNT(*), COALESCE(SUM(file_count - uploaded_count), 0) FROM recordings %s WHERE upload_state NOT IN ('none', 'complete') AND end_received_at < ? GROUP BY upload_state`
	// AddTotals adds to a totals row ("$n" or "?" per the backend).
	AddTotals = `INSERT INTO totals AS t (status, upload_state, recordings, pending_files) VALUES (%s, %s, %s, %s)
		ON CONFLICT (status, upload_state) DO UPDATE SET recordings = t.recordings + excluded.recordings,
			pending_files = t.pending_files + excluded.pending_files`
)

// Query runs a read for ReadTotals; each backend adapts its driver to it
// (done closes the rows).
type Query func(ctx context.Context, sql string, args ...any) (rows Rows, done func(), err error)

// ReadTotals reads the ledger's totals at the server time now: the totals
// table, then the overdue among the recordings not fully uploaded, with
// overdueSQL (OverdueQuery in the backend's dialect; its parameter is the
// deadline).
func ReadTotals(ctx context.Context, query Query, overdueSQL string, now time.Time) (ledger.Stats, error) {
	st := ledger.Stats{RecordingsByStatus: map[ledger.Status]int64{}, RecordingsByUpload: map[ledger.UploadState]int64{}}
	for _, step := range []struct {
		sql  string
		args []any
		scan func(Rows, *ledger.Stats) error
	}{
		{TotalsQuery, nil, ScanTotals},
		{overdueSQL, []any{now.Add(-ledger.OverdueAfter).UnixMilli()}, ScanOverdue},
	} {
		rows, done, err := query(ctx, step.sql, step.args...)
		if err != nil {
			return st, fmt.Errorf("stats: %w", err)
		}
		err = step.scan(rows, &st)
		done()
		if err != nil {
			return st, fmt.Errorf("stats: %w", err)
		}
	}
	DropEmpty(&st)
	return st, nil
}

// ScanTotals adds the rows of TotalsQuery to st.
func ScanTotals(rows Rows, st *ledger.Stats) error {
	for rows.Next() {
		var (
			status, upload      string
			recordings, pending int64
		)
		if err := rows.Scan(&status, &upload, &recordings, &pending); err != nil {
			return fmt.Errorf("totals: %w", err)
		}
		st.RecordingsByStatus[ledger.Status(status)] += recordings
		st.RecordingsByUpload[ledger.UploadState(upload)] += recordings
		st.FilesPending += pending
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("totals: %w", err)
	}
	return nil
}

// DropEmpty removes the zero counts Stats' maps may hold (a totals row all
// of whose recordings moved on, a state all of whose recordings are overdue).
func DropEmpty(st *ledger.Stats) {
	maps.DeleteFunc(st.RecordingsByStatus, func(_ ledger.Status, n int64) bool { return n == 0 })
	maps.DeleteFunc(st.RecordingsByUpload, func(_ ledger.UploadState, n int64) bool { return n == 0 })
}

// ScanOverdue moves the rows of OverdueQuery from their stored upload
// state to overdue in st.
func ScanOverdue(rows Rows, st *ledger.Stats) error {
	for rows.Next() {
		var (
			upload         string
			count, pending int64
		)
		if err := rows.Scan(&upload, &count, &pending); err != nil {
			return fmt.Errorf("overdue: %w", err)
		}
		st.RecordingsByUpload[ledger.UploadState(upload)] -= count
		st.RecordingsByUpload[ledger.UploadOverdue] += count
		st.FilesOverdue += pending
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("overdue: %w", err)
	}
	return nil
}

// ScanStates reads rows of one column, a recording's state as JSON. The
// caller closes rows.
func ScanStates(rows Rows) ([]ledger.State, error) {
	var out []ledger.State
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, err
		}
		st, err := engine.DecodeState(raw)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

package storesql

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/recledger/recledger/internal/engine"
	"github.com/recledger/recledger/internal/ledger"
)

// Files live inside their recording's record, so a list of files reads
// recordings newest first, narrowed in SQL by what their columns know,
// and takes the files each one holds that ledger.FileFilter.Matches. The
// columns narrow it exactly enough that nearly every recording read gives
// a file: a recording's files were all first seen between its
// first_seen_at and last_event_at, and its stored upload_state (without
// overdue) says which kinds of upload status its files have:
//   - none: no file; complete: every file uploaded;
//   - pending, partial, failed: some file not uploaded (failed: some
//     failed), which the recordings_not_uploaded_by_seq partial index
//     lists newest first;
//   - uploaded_count > 0: some file uploaded.

// notUploadedClause is the condition of recordings_not_uploaded_by_seq,
// written as that index is, so that the planners use it.
const notUploadedClause = "upload_state NOT IN ('none', 'complete')"

// FilesQuery builds the query of up to batch recordings that may hold
// files f selects, newest first, from first_seq from on (inclusive, or
// exclusive after the first batch; 0: from the newest). placeholder(n)
// writes the n-th parameter ("?" or "$n"); hint, an index hint or "",
// follows the table's name.
func FilesQuery(f ledger.FileFilter, now time.Time, from int64, inclusive bool, batch int, placeholder func(n int) string, hint string) (string, []any) {
	where := []string{"first_seq IS NOT NULL"}
	var args []any
	add := func(cond string, v ...any) { // cond holds a "?" for each of v: none or one
		for _, x := range v {
			args = append(args, x)
			cond = strings.Replace(cond, "?", placeholder(len(args)), 1)
		}
		where = append(where, cond)
	}
	if from > 0 {
		if inclusive {
			add("first_seq <= ?", from)
		} else {
			add("first_seq < ?", from)
		}
	}
	if f.AppKey != "" {
		add("app_key = ?", f.AppKey)
	}
	if f.RoomID != "" {
		add("room_id = ?", f.RoomID)
	}
	switch f.Upload {
	case ledger.FilesPending, ledger.FilesNotUploaded:
		add(notUploadedClause)
	case ledger.FilesFailed:
		add(notUploadedClause)
		add("upload_state = 'failed'")
	case ledger.FilesOverdue:
		add(notUploadedClause)
		add("end_received_at < ?", now.Add(-ledger.OverdueAfter).UnixMilli())
	case ledger.FilesUploaded:
		add("uploaded_count > 0")
	default:
		add("file_count > 0")
	}
	if f.Since != nil {
		add("last_event_at >= ?", *f.Since)
	}
	if f.Until != nil {
		add("first_seen_at <= ?", *f.Until)
	}
	args = append(args, batch)
	q := `SELECT first_seq, state FROM recordings ` + hint + ` WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY first_seq DESC LIMIT ` + placeholder(len(args))
	return q, args
}

// FilesHint names the index a backend may pin for f (SQLite's planner,
// without statistics, would walk a room's or an app's whole index, or
// first_seq's, to find the few recordings with files not uploaded): the
// partial index where f lists files not uploaded (the upload_state index
// for failed ones), unless a room narrows it further. An app does not: one
// app often holds every recording.
func FilesHint(f ledger.FileFilter) string {
	if f.RoomID != "" {
		return ""
	}
	switch f.Upload {
	case ledger.FilesPending, ledger.FilesNotUploaded, ledger.FilesOverdue:
		return "recordings_not_uploaded_by_seq"
	case ledger.FilesFailed:
		return "recordings_by_upload"
	}
	return ""
}

// ListFiles reads a page of the files f selects through query, in the
// backend's placeholder style; hint(index) writes an index hint ("" for
// none) for FilesHint's choice.
func ListFiles(ctx context.Context, query Query, f ledger.FileFilter, placeholder func(n int) string, hint func(index string) string) (ledger.FilePage, error) {
	limit, err := f.PageLimit()
	if err != nil {
		return ledger.FilePage{}, err
	}
	if err := f.Check(); err != nil {
		return ledger.FilePage{}, err
	}
	cur, err := ledger.DecodeFileCursor(f)
	if err != nil {
		return ledger.FilePage{}, err
	}
	now := f.Now
	if now.IsZero() {
		now = time.Now()
	}
	var (
		page ledger.FilePage
		last ledger.FileCursor
	)
	// Read one recording more than the page needs files: most give one.
	batch := limit + 1
	from, inclusive := cur.Seq, true
	index := ""
	if name := FilesHint(f); name != "" {
		index = hint(name)
	}
	for {
		q, args := FilesQuery(f, now, from, inclusive, batch, placeholder, index)
		recs, err := readRecords(ctx, query, q, args)
		if err != nil {
			return ledger.FilePage{}, fmt.Errorf("list files: %w", err)
		}
		for _, r := range recs {
			for _, name := range ledger.FileOrder(r.state) {
				file := r.state.Files[name]
				if r.seq == cur.Seq && cur.Before(file.FirstSeenAt, name) {
					continue
				}
				if !f.Matches(r.state, name, now) {
					continue
				}
				if len(page.Items) == limit {
					page.Next = ledger.EncodeFileCursor(last, f)
					return page, nil
				}
				page.Items = append(page.Items, ledger.ListedFile{File: r.state.FileView(name), AppKey: r.state.AppKey, RoomID: r.state.RoomID})
				last = ledger.FileCursor{Seq: r.seq, FirstSeenAt: file.FirstSeenAt, Name: name}
			}
		}
		if len(recs) < batch {
			return page, nil
		}
		from, inclusive = recs[len(recs)-1].seq, false
	}
}

type seqState struct {
	seq   int64
	state ledger.State
}

// readRecords reads one batch of FilesQuery whole, so its rows are closed
// before the next batch is asked for.
func readRecords(ctx context.Context, query Query, q string, args []any) ([]seqState, error) {
	rows, done, err := query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer done()
	var out []seqState
	for rows.Next() {
		var (
			seq int64
			raw []byte
		)
		if err := rows.Scan(&seq, &raw); err != nil {
			return nil, err
		}
		st, err := engine.DecodeState(raw)
		if err != nil {
			return nil, err
		}
		out = append(out, seqState{seq, st})
	}
	return out, rows.Err()
}

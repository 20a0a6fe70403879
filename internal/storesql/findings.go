package storesql

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/recledger/recledger/internal/ledger"
)

// Finding filters (ledger.RecordingFilter.Finding). The clock-free
// findings are a column the engine writes (ledger.StateFindingMask); the
// clock's are narrowed by columns (a recording still recording, first seen
// or last heard from long enough ago) and decided exactly in Go, by the
// same rules the views show (ledger.FindingRules.Findings).

// AttentionClause is the condition of the recordings_attention_by_seq
// partial index, written as the index is, so that the planners use it:
// every finding filter holds it.
const AttentionClause = "(findings <> 0 OR status = 'recording')"

// findingFilter adds f's finding conditions to w (none when f selects no
// finding).
func (w *recordingWhere) findingFilter(f ledger.RecordingFilter, now time.Time) {
	if f.Finding == "" {
		return
	}
	w.add(AttentionClause)
	openSince := now.Add(-maxOpen(f.FindingRules)).UnixMilli()
	quietSince := now.UnixMilli() - ledger.MinStallMs
	switch k := f.Finding; {
	case k == ledger.FindingNotEnded:
		w.add("status = 'recording' AND first_seen_at < ?", openSince)
	case k == ledger.FindingStalled:
		w.add("status = 'recording' AND last_event_at < ?", quietSince)
	case k.Bit() != 0:
		w.add("(findings & ?) <> 0", int64(k.Bit()))
	default: // any
		w.add("(findings <> 0 OR status = 'recording' AND (first_seen_at < ? OR last_event_at < ?))", openSince, quietSince)
	}
}

// maxOpen is the rules' MaxOpen as Findings reads it.
func maxOpen(r ledger.FindingRules) time.Duration {
	if r.MaxOpen <= 0 {
		return ledger.DefaultMaxOpen
	}
	return r.MaxOpen
}

// filterNow is f.Now, or the time now when unset.
func filterNow(f ledger.RecordingFilter) time.Time {
	if f.Now.IsZero() {
		return time.Now()
	}
	return f.Now
}

// findingMatch reports whether st has the finding f selects at now.
func findingMatch(f ledger.RecordingFilter, st *ledger.State, now time.Time) bool {
	return ledger.HasFinding(f.FindingRules.Findings(st, now), f.Finding)
}

// findingBatch is how many candidate recordings one query of a finding
// filter reads at most: the columns narrow the clock's findings to
// recordings still recording, most of which a page then keeps.
const findingBatch = 200

// ListRecordingsByFinding reads a page of the recordings f selects when
// f.Finding is set, through query in the backend's placeholder style: the
// columns narrow the candidates newest first, Go keeps those with the
// finding, and the next query goes on below the last candidate read, so
// pages stay stable (ledger.Store.ListRecordings).
func ListRecordingsByFinding(ctx context.Context, query Query, f ledger.RecordingFilter, placeholder func(n int) string, hint string) (ledger.RecordingPage, error) {
	limit, err := ledger.PageLimit(f)
	if err != nil {
		return ledger.RecordingPage{}, err
	}
	if err := ledger.CheckFinding(f.Finding); err != nil {
		return ledger.RecordingPage{}, err
	}
	if err := CheckVerificationFilter(f.Verification); err != nil {
		return ledger.RecordingPage{}, err
	}
	var before int64
	if f.Cursor != "" {
		if before, err = ledger.DecodeCursor(f); err != nil {
			return ledger.RecordingPage{}, err
		}
	}
	now := filterNow(f)
	var (
		page    ledger.RecordingPage
		lastSeq int64
	)
	batch := min(limit+1, findingBatch)
	for {
		q, args := findingQuery(f, now, before, batch, placeholder, hint)
		recs, err := readRecords(ctx, query, q, args)
		if err != nil {
			return ledger.RecordingPage{}, fmt.Errorf("list recordings: %w", err)
		}
		for _, r := range recs {
			if !findingMatch(f, &r.state, now) {
				continue
			}
			if len(page.Items) == limit {
				page.Next = ledger.EncodeCursor(lastSeq, f)
				return page, nil
			}
			page.Items = append(page.Items, r.state)
			lastSeq = r.seq
		}
		if len(recs) < batch {
			return page, nil
		}
		before = recs[len(recs)-1].seq
		batch = findingBatch
	}
}

// CountRecordingsByFinding counts the recordings f selects when f.Finding
// is set (ledger.Store.CountRecordings), up to upTo.
func CountRecordingsByFinding(ctx context.Context, query Query, f ledger.RecordingFilter, upTo int, placeholder func(n int) string, hint string) (int64, error) {
	if err := ledger.CheckFinding(f.Finding); err != nil {
		return 0, err
	}
	if err := CheckVerificationFilter(f.Verification); err != nil {
		return 0, err
	}
	now := filterNow(f)
	var (
		n      int64
		before int64
	)
	for {
		q, args := findingQuery(f, now, before, findingBatch, placeholder, hint)
		recs, err := readRecords(ctx, query, q, args)
		if err != nil {
			return 0, fmt.Errorf("count recordings: %w", err)
		}
		for _, r := range recs {
			if findingMatch(f, &r.state, now) {
				if n++; n >= int64(upTo) {
					return n, nil
				}
			}
		}
		if len(recs) < findingBatch {
			return n, nil
		}
		before = recs[len(recs)-1].seq
	}
}

// findingQuery builds the query of up to batch candidates of f below
// first_seq before (0: from the newest), newest first.
func findingQuery(f ledger.RecordingFilter, now time.Time, before int64, batch int, placeholder func(n int) string, hint string) (string, []any) {
	w := recordingWhere{placeholder: placeholder}
	if before > 0 {
		w.add("first_seq < ?", before)
	}
	w.filter(f)
	w.args = append(w.args, batch)
	return `SELECT first_seq, state FROM recordings ` + hint + ` WHERE ` + strings.Join(w.conds, " AND ") +
		` ORDER BY first_seq DESC LIMIT ` + placeholder(len(w.args)), w.args
}

// FindingHint names the index a backend may pin for a finding filter
// (SQLite's planner, without statistics, would walk first_seq's own index
// over every recording): the attention index, unless an id narrows the
// list further. An app does not: one app often holds every recording.
func FindingHint(f ledger.RecordingFilter) string {
	if f.Finding == "" || f.RoomID != "" || f.SessionID != "" || f.UserID != "" || f.RecordIDPrefix != "" {
		return ""
	}
	return "recordings_attention_by_seq"
}

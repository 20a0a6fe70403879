package ledgertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// findingsFixture stores recordings with each finding, all first seen at
// at, and one more first seen two hours later:
//   - ok: two files, ended: none;
//   - gap: files at 0, 60 and 90 minutes of 30-minute segments, ended at
//     100 minutes: segment_gap and missing_files (3 of 4);
//   - short: one file, ended at 70 minutes: missing_files (1 of 3);
//   - open: a start only: stalled two hours on, not_ended after a day;
//   - failed: a failed start and gap's files: none;
//   - fresh: a start two hours later: none.
func findingsFixture(t *testing.T, s ledger.Store, at time.Time) {
	t.Helper()
	file := func(id string, min int) string {
		return fmt.Sprintf("sess_room_u1_%d.mp4", base.Add(time.Duration(min)*time.Minute).UnixMilli())
	}
	rec := func(id string, startCode int, files []int, endAt int) []rc.Callback {
		cbs := []rc.Callback{Callback(t, id, rc.TypeStart, 0, "", startCode)}
		for i, m := range files {
			typ, off := rc.TypeSegment, time.Duration(m+30)*time.Minute
			if i == len(files)-1 && endAt > 0 {
				typ, off = rc.TypeEnd, time.Duration(endAt)*time.Minute
			}
			cbs = append(cbs, Callback(t, id, typ, off, file(id, m), 200))
		}
		return cbs
	}
	appendAll(t, s, rec("ok", 200, []int{0, 30}, 40), at)
	appendAll(t, s, rec("gap", 200, []int{0, 60, 90}, 100), at)
	appendAll(t, s, rec("short", 200, []int{0}, 70), at)
	appendAll(t, s, rec("open", 200, nil, 0), at)
	appendAll(t, s, rec("failed", 500, []int{0, 60, 90}, 100), at)
	appendAll(t, s, rec("fresh", 200, nil, 0), at.Add(2*time.Hour))
}

// listAll follows f's pages and returns the recordings' ids.
func listAll(t *testing.T, s ledger.Store, f ledger.RecordingFilter) []string {
	t.Helper()
	var ids []string
	for range 1000 {
		page, err := s.ListRecordings(context.Background(), f)
		if err != nil {
			t.Fatalf("ListRecordings(%+v): %v", f, err)
		}
		ids = append(ids, recordIDs(page.Items)...)
		if page.Next == "" {
			return ids
		}
		f.Cursor = page.Next
	}
	t.Fatal("paging does not end")
	return nil
}

func testFindingFilter(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	at := time.Now().Add(-48 * time.Hour).Truncate(time.Millisecond)
	findingsFixture(t, s, at)
	later := at.Add(2*time.Hour + time.Minute)
	day := at.Add(25 * time.Hour)
	hour := ledger.FindingRules{MaxOpen: time.Hour}
	tests := []struct {
		kind  ledger.FindingKind
		now   time.Time
		rules ledger.FindingRules
		want  []string
	}{
		{ledger.FindingNotEnded, later, ledger.FindingRules{}, nil},
		{ledger.FindingNotEnded, later, hour, []string{"open"}},
		{ledger.FindingNotEnded, day, ledger.FindingRules{}, []string{"open"}},
		{ledger.FindingStalled, at.Add(time.Hour), ledger.FindingRules{}, nil},
		{ledger.FindingStalled, later, ledger.FindingRules{}, []string{"open"}},
		{ledger.FindingStalled, day, ledger.FindingRules{}, []string{"fresh", "open"}},
		{ledger.FindingSegmentGap, later, ledger.FindingRules{}, []string{"gap"}},
		{ledger.FindingMissingFiles, later, ledger.FindingRules{}, []string{"short", "gap"}},
		{ledger.FindingAny, at, ledger.FindingRules{}, []string{"short", "gap"}},
		{ledger.FindingAny, later, ledger.FindingRules{}, []string{"open", "short", "gap"}},
		{ledger.FindingAny, later, hour, []string{"open", "short", "gap"}},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%s at +%s (max %s)", tt.kind, tt.now.Sub(at), tt.rules.MaxOpen)
		for _, limit := range []int{0, 1} {
			f := ledger.RecordingFilter{Finding: tt.kind, Now: tt.now, FindingRules: tt.rules, Limit: limit}
			if got := listAll(t, s, f); !slices.Equal(got, tt.want) {
				t.Errorf("%s, limit %d: %v, want %v", name, limit, got, tt.want)
			}
		}
		f := ledger.RecordingFilter{Finding: tt.kind, Now: tt.now, FindingRules: tt.rules}
		n, err := s.CountRecordings(context.Background(), f, 100)
		if err != nil || n != int64(len(tt.want)) {
			t.Errorf("%s: CountRecordings %d, %v; want %d", name, n, err, len(tt.want))
		}
		// Each listed recording has the finding as the views show it.
		for _, id := range tt.want {
			st := mustRecording(t, s, id)
			if !ledger.HasFinding(tt.rules.Findings(&st, tt.now), tt.kind) {
				t.Errorf("%s: %s listed without the finding", name, id)
			}
		}
	}
	// Narrowed by other filters, and counted up to a bound.
	f := ledger.RecordingFilter{Finding: ledger.FindingAny, Now: later, Status: ledger.StatusEnded}
	if got := listAll(t, s, f); !slices.Equal(got, []string{"short", "gap"}) {
		t.Errorf("any ended: %v", got)
	}
	if n, err := s.CountRecordings(context.Background(), ledger.RecordingFilter{Finding: ledger.FindingAny, Now: later}, 2); err != nil || n != 2 {
		t.Errorf("CountRecordings up to 2: %d, %v", n, err)
	}
	// A cursor of another finding is refused; so is a finding no store knows.
	page, err := s.ListRecordings(context.Background(), ledger.RecordingFilter{Finding: ledger.FindingAny, Now: later, Limit: 1})
	if err != nil || page.Next == "" {
		t.Fatalf("first page: %v, %+v", err, page)
	}
	if _, err := s.ListRecordings(context.Background(), ledger.RecordingFilter{Finding: ledger.FindingStalled, Now: later, Cursor: page.Next}); !errors.Is(err, ledger.ErrBadCursor) {
		t.Errorf("a cursor of another finding: %v, want ErrBadCursor", err)
	}
	for _, bad := range []ledger.FindingKind{"ANY", "gap", "not_ended\x00", "x' OR 1=1 --"} {
		if _, err := s.ListRecordings(context.Background(), ledger.RecordingFilter{Finding: bad}); !errors.Is(err, ledger.ErrBadFilter) {
			t.Errorf("ListRecordings finding %q: %v, want ErrBadFilter", bad, err)
		}
		if _, err := s.CountRecordings(context.Background(), ledger.RecordingFilter{Finding: bad}, 10); !errors.Is(err, ledger.ErrBadFilter) {
			t.Errorf("CountRecordings finding %q: %v, want ErrBadFilter", bad, err)
		}
	}
}

// testFindingsClear: the stored findings follow the callbacks that explain
// them, and a rebuild derives the same.
func testFindingsClear(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	at := time.Now().Add(-48 * time.Hour).Truncate(time.Millisecond)
	findingsFixture(t, s, at)
	later := at.Add(2*time.Hour + time.Minute)
	gaps := ledger.RecordingFilter{Finding: ledger.FindingSegmentGap, Now: later}
	missing := ledger.RecordingFilter{Finding: ledger.FindingMissingFiles, Now: later}
	// gap's missing segment (30 minutes), then short's two.
	appendAll(t, s, []rc.Callback{Callback(t, "gap", rc.TypeSegment, time.Hour, fmt.Sprintf("sess_room_u1_%d.mp4", base.Add(30*time.Minute).UnixMilli()), 200)}, at.Add(time.Hour))
	if got := listAll(t, s, gaps); got != nil {
		t.Errorf("gaps after the missing segment arrived: %v", got)
	}
	if got := listAll(t, s, missing); !slices.Equal(got, []string{"short"}) {
		t.Errorf("missing files after gap's segment arrived: %v", got)
	}
	for _, m := range []int{30, 60} {
		appendAll(t, s, []rc.Callback{Callback(t, "short", rc.TypeSegment, time.Duration(m+30)*time.Minute,
			fmt.Sprintf("sess_room_u1_%d.mp4", base.Add(time.Duration(m)*time.Minute).UnixMilli()), 200)}, at.Add(time.Hour))
	}
	if got := listAll(t, s, missing); got != nil {
		t.Errorf("missing files after short's segments arrived: %v", got)
	}
	// A new gap appears as its file arrives.
	appendAll(t, s, []rc.Callback{Callback(t, "ok", rc.TypeUpload, time.Hour, fmt.Sprintf("sess_room_u1_%d.mp4", base.Add(3*time.Hour).UnixMilli()), 200)}, at.Add(time.Hour))
	if got := listAll(t, s, gaps); !slices.Equal(got, []string{"ok"}) {
		t.Errorf("gaps after a late file: %v", got)
	}
	any := ledger.RecordingFilter{Finding: ledger.FindingAny, Now: later}
	before := listAll(t, s, any)
	if _, err := s.Rebuild(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := listAll(t, s, any); !slices.Equal(got, before) {
		t.Errorf("after a rebuild: %v, want %v", got, before)
	}
}

// testFindingPagesSkipCandidates: a page reads past many candidates that
// have no finding (recordings still recording, heard from lately) to the
// one that has, and pages stay stable while callbacks arrive.
func testFindingPagesSkipCandidates(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	at := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	appendAll(t, s, []rc.Callback{Callback(t, "stalled-a", rc.TypeStart, 0, "", 200), Callback(t, "stalled-b", rc.TypeStart, 0, "", 200)}, at)
	var busy []rc.Callback
	for i := range 450 {
		busy = append(busy, Callback(t, fmt.Sprintf("busy%03d", i), rc.TypeStart, 0, "", 200))
	}
	appendAll(t, s, busy, at.Add(55*time.Minute))
	appendAll(t, s, []rc.Callback{Callback(t, "stalled-c", rc.TypeStart, 0, "", 200)}, at)
	f := ledger.RecordingFilter{Finding: ledger.FindingStalled, Now: at.Add(61 * time.Minute), Limit: 1}
	var got []string
	for round := 0; ; round++ {
		page, err := s.ListRecordings(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, recordIDs(page.Items)...)
		if page.Next == "" || round > 10 {
			break
		}
		// Between pages: a new stalled recording, newer than the pages:
		// not listed.
		appendAll(t, s, []rc.Callback{Callback(t, "new", rc.TypeStart, 0, "", 200)}, at)
		f.Cursor = page.Next
	}
	if want := []string{"stalled-c", "stalled-b", "stalled-a"}; !slices.Equal(got, want) {
		t.Errorf("stalled pages: %v, want %v", got, want)
	}
	if n, err := s.CountRecordings(context.Background(), ledger.RecordingFilter{Finding: ledger.FindingStalled, Now: f.Now}, 100); err != nil || n != 4 {
		t.Errorf("CountRecordings stalled: %d, %v; want 4 (with new)", n, err)
	}
}

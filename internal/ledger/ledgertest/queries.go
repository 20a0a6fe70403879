package ledgertest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// Queries: the reads the API and dashboard make of the projections.

func testNotFound(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	if _, err := s.Recording(context.Background(), "nope"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("Recording(unknown) = %v, want ErrNotFound", err)
	}
	evs, err := s.RecordingEvents(context.Background(), "nope")
	if err != nil || len(evs) != 0 {
		t.Errorf("RecordingEvents(unknown) = %d events, %v", len(evs), err)
	}
}

// callbackIn is Callback with the recording's room, session, user and mode
// set, for the filter tests.
func callbackIn(t testing.TB, recordID, room, session, user string, mode rc.Mode, typ rc.Type, offset time.Duration, file string, code int) rc.Callback {
	t.Helper()
	cb := Callback(t, recordID, typ, offset, file, code)
	body := strings.NewReplacer(`"roomId":"room"`, fmt.Sprintf(`"roomId":%q`, room), `"sessionId":"sess"`, fmt.Sprintf(`"sessionId":%q`, session),
		`"userId":"u1"`, fmt.Sprintf(`"userId":%q`, user), `"mode":0`, fmt.Sprintf(`"mode":%d`, mode)).Replace(string(cb.Raw))
	out, err := rc.Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func recordIDs(states []ledger.State) []string {
	var out []string
	for _, s := range states {
		out = append(out, s.RecordID)
	}
	return out
}

func testListRecordings(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	ctx := context.Background()
	at := time.Now()
	// In order of first arrival: l1 .. l5.
	cbs := []rc.Callback{
		callbackIn(t, "l1", "roomA", "s1", "u1", rc.ModeAudioVideo, rc.TypeStart, 0, "", 200),
		callbackIn(t, "l2", "roomA", "s1", "", rc.ModeMixAudioVideo, rc.TypeStart, time.Minute, "", 200),
		callbackIn(t, "l3", "roomB", "s2", "u2", rc.ModeAudioVideo, rc.TypeStart, 2*time.Minute, "", 500),
		callbackIn(t, "l4", "roomB", "s2", "u1", rc.ModeUserAudioVideo, rc.TypeEnd, 3*time.Minute, "f4.mp4", 200),
		callbackIn(t, "l5", "roomC", "s3", "u3", rc.ModeAudioVideo, rc.TypeUpload, 4*time.Minute, "f5.mp4", 200),
	}
	appendAll(t, s, cbs, at)
	mode := rc.ModeAudioVideo
	since, until := base.Add(time.Minute).UnixMilli(), base.Add(3*time.Minute).UnixMilli()
	recent := at.Add(3 * time.Millisecond).UnixMilli() // l4 and l5 have no start: first seen counts
	tests := []struct {
		name string
		f    ledger.RecordingFilter
		want []string
	}{
		{"all, newest first", ledger.RecordingFilter{}, []string{"l5", "l4", "l3", "l2", "l1"}},
		{"room", ledger.RecordingFilter{RoomID: "roomA"}, []string{"l2", "l1"}},
		{"session", ledger.RecordingFilter{SessionID: "s2"}, []string{"l4", "l3"}},
		{"user", ledger.RecordingFilter{UserID: "u1"}, []string{"l4", "l1"}},
		{"app", ledger.RecordingFilter{AppKey: "app"}, []string{"l5", "l4", "l3", "l2", "l1"}},
		{"other app", ledger.RecordingFilter{AppKey: "nope"}, nil},
		{"status failed", ledger.RecordingFilter{Status: ledger.StatusFailed}, []string{"l3"}},
		{"status ended", ledger.RecordingFilter{Status: ledger.StatusEnded}, []string{"l4"}},
		{"status recording", ledger.RecordingFilter{Status: ledger.StatusRecording}, []string{"l5", "l2", "l1"}},
		{"mode", ledger.RecordingFilter{Mode: &mode}, []string{"l5", "l3", "l1"}},
		{"started since..until", ledger.RecordingFilter{Since: &since, Until: &until}, []string{"l3", "l2"}},
		{"first seen since", ledger.RecordingFilter{Since: &recent}, []string{"l5", "l4"}},
		{"room and user", ledger.RecordingFilter{RoomID: "roomB", UserID: "u2"}, []string{"l3"}},
		{"recordId prefix", ledger.RecordingFilter{RecordIDPrefix: "l3"}, []string{"l3"}},
		{"recordId prefix of all", ledger.RecordingFilter{RecordIDPrefix: "l"}, []string{"l5", "l4", "l3", "l2", "l1"}},
		{"recordId prefix of none", ledger.RecordingFilter{RecordIDPrefix: "3"}, nil},
		{"recordId prefix, no pattern", ledger.RecordingFilter{RecordIDPrefix: "l_"}, nil},
		{"recordId prefix longer than the id", ledger.RecordingFilter{RecordIDPrefix: "l1x"}, nil},
		{"recordId prefix and room", ledger.RecordingFilter{RecordIDPrefix: "l", RoomID: "roomA"}, []string{"l2", "l1"}},
	}
	for _, tt := range tests {
		page, err := s.ListRecordings(ctx, tt.f)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if diff := cmp.Diff(tt.want, recordIDs(page.Items)); diff != "" || page.Next != "" {
			t.Errorf("%s (-want +got):\n%s next %q", tt.name, diff, page.Next)
		}
		// The count is of every page, whatever the page's size, and stops
		// at its bound.
		for _, upTo := range []int{100, len(tt.want), 2} {
			f := tt.f
			f.Limit = 1
			n, err := s.CountRecordings(ctx, f, upTo)
			if want := int64(min(len(tt.want), upTo)); err != nil || n != want {
				t.Errorf("%s: CountRecordings(up to %d) = %d, %v; want %d", tt.name, upTo, n, err, want)
			}
		}
	}
	for _, bad := range []ledger.RecordingFilter{{Limit: -1}, {Limit: ledger.MaxPage + 1}} {
		if _, err := s.ListRecordings(ctx, bad); !errors.Is(err, ledger.ErrBadLimit) {
			t.Errorf("limit %d: %v, want ErrBadLimit", bad.Limit, err)
		}
	}
	first, err := s.ListRecordings(ctx, ledger.RecordingFilter{RoomID: "roomA", Limit: 1})
	if err != nil || first.Next == "" {
		t.Fatalf("first page of roomA: %+v, %v", first, err)
	}
	if n, err := s.CountRecordings(ctx, ledger.RecordingFilter{RoomID: "roomA", Limit: 1, Cursor: first.Next}, 100); err != nil || n != 2 {
		t.Errorf("CountRecordings(roomA, from the second page) = %d, %v; want 2, all pages", n, err)
	}
	if _, err := s.ListRecordings(ctx, ledger.RecordingFilter{RoomID: "roomB", Cursor: first.Next}); !errors.Is(err, ledger.ErrBadCursor) {
		t.Errorf("roomA's cursor used for roomB: %v, want ErrBadCursor", err)
	}
	for _, c := range []string{"garbage", "cjE6LTE", "eDox"} {
		if _, err := s.ListRecordings(ctx, ledger.RecordingFilter{Cursor: c}); !errors.Is(err, ledger.ErrBadCursor) {
			t.Errorf("cursor %q: %v, want ErrBadCursor", c, err)
		}
	}
}

// testPagesStableUnderInserts pages through recordings two at a time while
// new recordings and new callbacks of listed ones arrive between pages: the
// pages must hold every recording that existed at the first page exactly once.
func testPagesStableUnderInserts(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	ctx := context.Background()
	at := time.Now()
	var existing []string
	for i := range 9 {
		id := fmt.Sprintf("p%02d", i)
		existing = append(existing, id)
		appendAll(t, s, []rc.Callback{Callback(t, id, rc.TypeStart, time.Duration(i)*time.Minute, "", 200)}, at)
	}
	seen := map[string]int{}
	f := ledger.RecordingFilter{Limit: 2}
	for round := 0; ; round++ {
		page, err := s.ListRecordings(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range page.Items {
			seen[st.RecordID]++
		}
		if page.Next == "" {
			break
		}
		if round > 20 {
			t.Fatal("paging does not end")
		}
		// Between pages: a new recording, and more callbacks for an old one.
		appendAll(t, s, []rc.Callback{
			Callback(t, fmt.Sprintf("new%02d", round), rc.TypeStart, time.Hour, "", 200),
			Callback(t, existing[round%len(existing)], rc.TypeEnd, time.Hour, fmt.Sprintf("f%d.mp4", round), 200),
		}, at.Add(time.Second))
		f.Cursor = page.Next
	}
	for _, id := range existing {
		if seen[id] != 1 {
			t.Errorf("%s listed %d times, want once: %v", id, seen[id], seen)
		}
	}
}

func testFileRecordings(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	ctx := context.Background()
	at := time.Now()
	appendAll(t, s, []rc.Callback{
		Callback(t, "fa", rc.TypeEnd, 0, "shared.mp4", 200),
		Callback(t, "fa", rc.TypeUpload, time.Second, "shared.mp4", 200),
		Callback(t, "fb", rc.TypeEnd, time.Minute, "only-b.mp4", 200),
		Callback(t, "fc", rc.TypeSegment, 2*time.Minute, "shared.mp4", 200),
	}, at)
	got, err := s.FileRecordings(ctx, "shared.mp4")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"fc", "fa"}, recordIDs(got)); diff != "" {
		t.Errorf("recordings holding shared.mp4, newest first (-want +got):\n%s", diff)
	}
	if len(got) == 2 {
		if f := got[1].FileView("shared.mp4"); f.FileURL == nil || *f.FileURL != "http://oss/shared.mp4" {
			t.Errorf("fa's file view: %+v", f)
		}
	}
	if none, err := s.FileRecordings(ctx, "unknown.mp4"); err != nil || len(none) != 0 {
		t.Errorf("unknown file: %v, %v", none, err)
	}
}

func testStats(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	ctx := context.Background()
	at := time.Now()
	appendAll(t, s, Recording(t, "st-done", 2, false), at) // complete, 2 files uploaded
	appendAll(t, s, Recording(t, "st-stuck", 3, true), at) // ended, file 1 never uploaded
	appendAll(t, s, []rc.Callback{Callback(t, "st-live", rc.TypeStart, 0, "", 200)}, at)
	rej := ledger.Rejection{Header: http.Header{}, Body: []byte("12345")}
	if err := s.Quarantine(ctx, rej); err != nil {
		t.Fatal(err)
	}
	st, err := s.Stats(ctx, at)
	if err != nil {
		t.Fatal(err)
	}
	want := map[ledger.Status]int64{ledger.StatusComplete: 1, ledger.StatusEnded: 1, ledger.StatusRecording: 1}
	if diff := cmp.Diff(want, st.RecordingsByStatus); diff != "" {
		t.Errorf("by status (-want +got):\n%s", diff)
	}
	if st.FilesPending != 1 || st.FilesOverdue != 0 || st.QuarantineCount != 1 || st.QuarantineBytes != ledger.PrepareRejection(rej).Size {
		t.Errorf("stats now: %+v", st)
	}
	if st.LoggedSeq == 0 || st.ProjectedSeq != st.LoggedSeq {
		t.Errorf("positions: logged %d, projected %d", st.LoggedSeq, st.ProjectedSeq)
	}
	wantUpload := map[ledger.UploadState]int64{ledger.UploadComplete: 1, ledger.UploadFailed: 1, ledger.UploadNone: 1}
	if diff := cmp.Diff(wantUpload, st.RecordingsByUpload); diff != "" {
		t.Errorf("by upload state (-want +got):\n%s", diff)
	}
	later, err := s.Stats(ctx, at.Add(ledger.OverdueAfter+time.Minute))
	if err != nil || later.FilesOverdue != 1 {
		t.Errorf("a day later: %+v, %v; want the stuck file overdue", later, err)
	}
	wantUpload = map[ledger.UploadState]int64{ledger.UploadComplete: 1, ledger.UploadOverdue: 1, ledger.UploadNone: 1}
	if diff := cmp.Diff(wantUpload, later.RecordingsByUpload); diff != "" {
		t.Errorf("a day later, by upload state (-want +got):\n%s", diff)
	}
}

// testUploadStateFilter: the uploadState filter agrees with View at the
// filter's clock, overdue included, and never mixes it with the rest.
func testUploadStateFilter(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	ctx := context.Background()
	at := time.Now()
	appendAll(t, s, Recording(t, "up-done", 2, false), at)                               // complete
	appendAll(t, s, Recording(t, "up-stuck", 3, true), at)                               // failed, then overdue
	appendAll(t, s, []rc.Callback{Callback(t, "up-live", rc.TypeStart, 0, "", 200)}, at) // none
	appendAll(t, s, []rc.Callback{                                                       // pending, then overdue
		Callback(t, "up-wait", rc.TypeStart, 0, "", 200),
		Callback(t, "up-wait", rc.TypeEnd, time.Hour, "sess_room_u1_up-wait_1.mp4", 200),
	}, at)
	appendAll(t, s, []rc.Callback{ // partial, still recording: never overdue
		Callback(t, "up-part", rc.TypeSegment, time.Minute, "sess_room_u1_up-part_1.mp4", 200),
		Callback(t, "up-part", rc.TypeUpload, 2*time.Minute, "sess_room_u1_up-part_1.mp4", 200),
		Callback(t, "up-part", rc.TypeSegment, 3*time.Minute, "sess_room_u1_up-part_2.mp4", 200),
	}, at)
	later := at.Add(ledger.OverdueAfter + time.Minute)
	for _, tt := range []struct {
		state ledger.UploadState
		now   time.Time
		want  []string
	}{
		{ledger.UploadComplete, at, []string{"up-done"}},
		{ledger.UploadFailed, at, []string{"up-stuck"}},
		{ledger.UploadNone, at, []string{"up-live"}},
		{ledger.UploadPending, at, []string{"up-wait"}},
		{ledger.UploadPartial, at, []string{"up-part"}},
		{ledger.UploadOverdue, at, nil},
		{ledger.UploadOverdue, later, []string{"up-wait", "up-stuck"}},
		{ledger.UploadFailed, later, nil},
		{ledger.UploadPending, later, nil},
		{ledger.UploadPartial, later, []string{"up-part"}},
		{ledger.UploadComplete, later, []string{"up-done"}},
	} {
		page, err := s.ListRecordings(ctx, ledger.RecordingFilter{UploadState: tt.state, Now: tt.now})
		if err != nil {
			t.Fatalf("%s: %v", tt.state, err)
		}
		if diff := cmp.Diff(tt.want, recordIDs(page.Items)); diff != "" {
			t.Errorf("uploadState %s at +%v (-want +got):\n%s", tt.state, tt.now.Sub(at).Round(time.Hour), diff)
		}
		if n, err := s.CountRecordings(ctx, ledger.RecordingFilter{UploadState: tt.state, Now: tt.now}, 100); err != nil || n != int64(len(tt.want)) {
			t.Errorf("uploadState %s at +%v: CountRecordings = %d, %v; want %d", tt.state, tt.now.Sub(at).Round(time.Hour), n, err, len(tt.want))
		}
		for _, st := range page.Items {
			if got := st.UploadState(tt.now); got != tt.state {
				t.Errorf("%s listed under %s but its view says %s", st.RecordID, tt.state, got)
			}
		}
	}
}

// testActivity: arrivals are counted in the minute of the server clock
// they arrived in, duplicates and rejections apart.
func testActivity(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	ctx := context.Background()
	m0 := ledger.MinuteOf(time.Now().Add(-10 * time.Minute).UnixMilli())
	at := func(minute, second int) time.Time {
		return time.UnixMilli(m0 + int64(minute)*60_000 + int64(second)*1000)
	}
	start := Callback(t, "act-1", rc.TypeStart, 0, "", 200)
	seg := Callback(t, "act-1", rc.TypeSegment, time.Minute, "sess_room_u1_act-1_1.mp4", 200)
	for _, in := range []ledger.Incoming{
		{Callback: start, ReceivedAt: at(0, 1)},
		{Callback: seg, ReceivedAt: at(0, 30)},
		{Callback: seg, ReceivedAt: at(0, 59)}, // a redelivery
		{Callback: Callback(t, "act-2", rc.TypeStart, 0, "", 200), ReceivedAt: at(2, 0)},
	} {
		if _, err := s.Append(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	for _, sec := range []int{5, 6} {
		if err := s.Quarantine(ctx, ledger.Rejection{At: at(2, sec).UnixMilli(), Header: http.Header{}, Reason: "bad_signature"}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Activity(ctx, m0)
	if err != nil {
		t.Fatal(err)
	}
	want := []ledger.Minute{
		{Start: m0, Callbacks: 3, Duplicates: 1},
		{Start: m0 + 120_000, Callbacks: 1, Rejected: 2},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("activity (-want +got):\n%s", diff)
	}
	// since falls inside a minute: that whole minute counts.
	if got, err := s.Activity(ctx, m0+120_000+30_000); err != nil || len(got) != 1 || got[0].Start != m0+120_000 {
		t.Errorf("since within the last minute: %+v, %v", got, err)
	}
	if got, err := s.Activity(ctx, m0+180_000); err != nil || len(got) != 0 {
		t.Errorf("since after everything: %+v, %v", got, err)
	}
}

// testStatsAgreeWithRecordings: the totals a store keeps as it projects
// equal what its recordings' views add up to, at two clocks, under
// shuffled arrivals and redeliveries, after a rebuild and after a reopen.
func testStatsAgreeWithRecordings(t *testing.T, open Opener) {
	s := open()
	ctx := context.Background()
	now := time.Now()
	rnd := rand.New(rand.NewPCG(7, 11))
	var all []ledger.Incoming
	for i := range 30 {
		id := fmt.Sprintf("tot-%02d", i)
		cbs := Recording(t, id, 1+i%4, i%3 == 0)
		switch i % 5 {
		case 1: // still recording: no end
			cbs = cbs[:2]
		case 2: // a failed start
			cbs = []rc.Callback{Callback(t, id, rc.TypeStart, 0, "", 500)}
		case 3: // ended, uploads not reported
			var kept []rc.Callback
			for _, cb := range cbs {
				if cb.Type != rc.TypeUpload {
					kept = append(kept, cb)
				}
			}
			cbs = kept
		}
		at := now
		if i%2 == 0 {
			at = now.Add(-30 * time.Hour) // ended long ago: overdue where not uploaded
		}
		for j, cb := range cbs {
			all = append(all, ledger.Incoming{Callback: cb, ReceivedAt: at.Add(time.Duration(j) * time.Second)})
			if rnd.IntN(10) == 0 {
				all = append(all, ledger.Incoming{Callback: cb, ReceivedAt: at.Add(time.Duration(j)*time.Second + time.Minute)})
			}
		}
	}
	rnd.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	for _, in := range all {
		if _, err := s.Append(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	check := func(stage string, s ledger.Store) {
		t.Helper()
		page, err := s.ListRecordings(ctx, ledger.RecordingFilter{Limit: ledger.MaxPage})
		if err != nil {
			t.Fatal(err)
		}
		for _, clock := range []time.Time{now, now.Add(26 * time.Hour)} {
			want := ledger.Stats{RecordingsByStatus: map[ledger.Status]int64{}, RecordingsByUpload: map[ledger.UploadState]int64{}}
			for _, st := range page.Items {
				v := st.View(clock)
				want.RecordingsByStatus[v.Status]++
				want.RecordingsByUpload[v.UploadState]++
				pending := int64(v.FileCount - v.UploadedCount)
				want.FilesPending += pending
				if st.Overdue(clock) {
					want.FilesOverdue += pending
				}
			}
			got, err := s.Stats(ctx, clock)
			if err != nil {
				t.Fatal(err)
			}
			got.QuarantineCount, got.QuarantineBytes, got.LoggedSeq, got.ProjectedSeq = 0, 0, 0, 0
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s, at +%v: stats differ from the recordings (-recordings +stats):\n%s", stage, clock.Sub(now).Round(time.Hour), diff)
			}
		}
	}
	check("live", s)
	if _, err := s.Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	check("after rebuild", s)
	closeStore(t, s)
	s = open()
	defer closeStore(t, s)
	check("after reopen", s)
}

// testFiltersFollowChanges reads between callbacks, so each later callback
// changes a recording already stored: every filter must follow the change
// (the identity a start callback settles, the status, the upload state).
func testFiltersFollowChanges(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	ctx := context.Background()
	at := time.Now()
	list := func(f ledger.RecordingFilter) []string {
		t.Helper()
		page, err := s.ListRecordings(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		return recordIDs(page.Items)
	}
	steps := []struct {
		cb   rc.Callback
		want map[string]ledger.RecordingFilter // filters that must find it after this callback
		not  map[string]ledger.RecordingFilter // and those that must not
	}{
		{callbackIn(t, "fc-1", "early-room", "s", "u", 0, rc.TypeSegment, time.Minute, "fc-1_0.mp4", 200),
			map[string]ledger.RecordingFilter{"room early-room": {RoomID: "early-room"}, "recording": {Status: ledger.StatusRecording}, "pending": {UploadState: ledger.UploadPending, Now: at}},
			map[string]ledger.RecordingFilter{"room final-room": {RoomID: "final-room"}}},
		// The start callback's identity wins over the segment's (ledger.Apply).
		{callbackIn(t, "fc-1", "final-room", "s", "u", 0, rc.TypeStart, 0, "", 200),
			map[string]ledger.RecordingFilter{"room final-room": {RoomID: "final-room"}},
			map[string]ledger.RecordingFilter{"room early-room": {RoomID: "early-room"}}},
		{callbackIn(t, "fc-1", "final-room", "s", "u", 0, rc.TypeUpload, 2*time.Minute, "fc-1_0.mp4", 200),
			map[string]ledger.RecordingFilter{"uploads complete (its one file)": {UploadState: ledger.UploadComplete, Now: at}},
			map[string]ledger.RecordingFilter{"pending": {UploadState: ledger.UploadPending, Now: at}}},
		{callbackIn(t, "fc-1", "final-room", "s", "u", 0, rc.TypeEnd, time.Hour, "fc-1_1.mp4", 200),
			map[string]ledger.RecordingFilter{"ended": {Status: ledger.StatusEnded}, "partial": {UploadState: ledger.UploadPartial, Now: at}},
			map[string]ledger.RecordingFilter{"recording": {Status: ledger.StatusRecording}, "complete": {UploadState: ledger.UploadComplete, Now: at}}},
		{callbackIn(t, "fc-1", "final-room", "s", "u", 0, rc.TypeUpload, time.Hour+time.Minute, "fc-1_1.mp4", 200),
			map[string]ledger.RecordingFilter{"complete": {Status: ledger.StatusComplete}, "uploads complete": {UploadState: ledger.UploadComplete, Now: at}},
			map[string]ledger.RecordingFilter{"ended": {Status: ledger.StatusEnded}, "partial": {UploadState: ledger.UploadPartial, Now: at}}},
	}
	for i, st := range steps {
		if _, err := s.Append(ctx, ledger.Incoming{Callback: st.cb, ReceivedAt: at.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
		mustRecording(t, s, "fc-1") // projected now: the next callback changes a stored recording
		for name, f := range st.want {
			if got := list(f); len(got) != 1 {
				t.Errorf("after callback %d, filter %q finds %v, want fc-1", i, name, got)
			}
		}
		for name, f := range st.not {
			if got := list(f); len(got) != 0 {
				t.Errorf("after callback %d, filter %q finds %v, want nothing", i, name, got)
			}
		}
		stats, err := s.Stats(ctx, at)
		if err != nil {
			t.Fatal(err)
		}
		if n := stats.RecordingsByStatus[mustRecording(t, s, "fc-1").Status()]; n != 1 {
			t.Errorf("after callback %d, stats count %d recordings in its status", i, n)
		}
	}
}

package ledgertest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// Files: the list of files across recordings (GET /v1/files, the
// dashboard's files page and its CSV).

// fileKeys names listed files "recordId/fileName", in their order.
func fileKeys(items []ledger.ListedFile) []string {
	var out []string
	for _, f := range items {
		out = append(out, f.RecordID+"/"+f.FileName)
	}
	return out
}

// allFiles follows every page of f, limit files a page.
func allFiles(t *testing.T, s ledger.Store, f ledger.FileFilter) []ledger.ListedFile {
	t.Helper()
	var out []ledger.ListedFile
	for range 1000 {
		page, err := s.ListFiles(context.Background(), f)
		if err != nil {
			t.Fatalf("ListFiles(%+v): %v", f, err)
		}
		if f.Limit > 0 && len(page.Items) > f.Limit {
			t.Fatalf("a page of %d files, limit %d", len(page.Items), f.Limit)
		}
		out = append(out, page.Items...)
		if page.Next == "" {
			return out
		}
		if len(page.Items) == 0 {
			t.Fatal("an empty page with a next cursor")
		}
		f.Cursor = page.Next
	}
	t.Fatal("paging does not end")
	return nil
}

func testListFiles(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	ctx := context.Background()
	at := time.Now()
	// Arrival i is received at at+i ms: the files' firstSeenAt.
	appendAll(t, s, []rc.Callback{
		callbackIn(t, "r1", "roomA", "s", "u", 0, rc.TypeSegment, 0, "a1.mp4", 200),           // 0
		callbackIn(t, "r1", "roomA", "s", "u", 0, rc.TypeUpload, time.Second, "a1.mp4", 200),  // 1: a1 uploaded
		callbackIn(t, "r1", "roomA", "s", "u", 0, rc.TypeEnd, time.Minute, "a2.mp4", 200),     // 2: a2 pending
		callbackIn(t, "r2", "roomB", "s", "u", 0, rc.TypeEnd, time.Minute, "b1.mp4", 200),     // 3
		callbackIn(t, "r2", "roomB", "s", "u", 0, rc.TypeUpload, time.Hour, "b1.mp4", 500),    // 4: b1 failed
		callbackIn(t, "r3", "roomA", "s", "u", 0, rc.TypeStart, 0, "", 200),                   // 5: no file
		callbackIn(t, "r4", "roomB", "s", "u", 0, rc.TypeSegment, 0, "c1.mp4", 200),           // 6: c1 pending
		callbackIn(t, "r4", "roomB", "s", "u", 0, rc.TypeSegment, time.Minute, "c2.mp4", 200), // 7
		callbackIn(t, "r4", "roomB", "s", "u", 0, rc.TypeUpload, time.Hour, "c2.mp4", 200),    // 8: c2 uploaded
	}, at)
	ms := func(i int64) *int64 { v := at.UnixMilli() + i; return &v }
	later := at.Add(ledger.OverdueAfter + time.Minute)
	tests := []struct {
		name string
		f    ledger.FileFilter
		want []string
	}{
		{"all: newest recording first, its newest file first", ledger.FileFilter{}, []string{"r4/c2.mp4", "r4/c1.mp4", "r2/b1.mp4", "r1/a2.mp4", "r1/a1.mp4"}},
		{"pending", ledger.FileFilter{Upload: ledger.FilesPending}, []string{"r4/c1.mp4", "r1/a2.mp4"}},
		{"uploaded", ledger.FileFilter{Upload: ledger.FilesUploaded}, []string{"r4/c2.mp4", "r1/a1.mp4"}},
		{"failed", ledger.FileFilter{Upload: ledger.FilesFailed}, []string{"r2/b1.mp4"}},
		{"not uploaded: pending or failed", ledger.FileFilter{Upload: ledger.FilesNotUploaded}, []string{"r4/c1.mp4", "r2/b1.mp4", "r1/a2.mp4"}},
		{"overdue now", ledger.FileFilter{Upload: ledger.FilesOverdue, Now: at}, nil},
		{"overdue a day later: ended recordings only", ledger.FileFilter{Upload: ledger.FilesOverdue, Now: later}, []string{"r2/b1.mp4", "r1/a2.mp4"}},
		{"pending a day later: still pending", ledger.FileFilter{Upload: ledger.FilesPending, Now: later}, []string{"r4/c1.mp4", "r1/a2.mp4"}},
		{"room", ledger.FileFilter{RoomID: "roomA"}, []string{"r1/a2.mp4", "r1/a1.mp4"}},
		{"room and not uploaded", ledger.FileFilter{RoomID: "roomB", Upload: ledger.FilesNotUploaded}, []string{"r4/c1.mp4", "r2/b1.mp4"}},
		{"app", ledger.FileFilter{AppKey: "app"}, []string{"r4/c2.mp4", "r4/c1.mp4", "r2/b1.mp4", "r1/a2.mp4", "r1/a1.mp4"}},
		{"other app", ledger.FileFilter{AppKey: "nope"}, nil},
		{"first seen since", ledger.FileFilter{Since: ms(3)}, []string{"r4/c2.mp4", "r4/c1.mp4", "r2/b1.mp4"}},
		{"first seen until", ledger.FileFilter{Until: ms(2)}, []string{"r1/a2.mp4", "r1/a1.mp4"}},
		{"first seen since..until, within a recording", ledger.FileFilter{Since: ms(1), Until: ms(6)}, []string{"r4/c1.mp4", "r2/b1.mp4", "r1/a2.mp4"}},
		{"since..until and uploaded", ledger.FileFilter{Since: ms(1), Until: ms(7), Upload: ledger.FilesUploaded}, []string{"r4/c2.mp4"}},
	}
	for _, tt := range tests {
		page, err := s.ListFiles(ctx, tt.f)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if diff := cmp.Diff(tt.want, fileKeys(page.Items)); diff != "" || page.Next != "" {
			t.Errorf("%s (-want +got):\n%s next %q", tt.name, diff, page.Next)
		}
		for _, limit := range []int{1, 2} { // the same files, page by page
			f := tt.f
			f.Limit = limit
			if diff := cmp.Diff(tt.want, fileKeys(allFiles(t, s, f))); diff != "" {
				t.Errorf("%s, %d a page (-want +got):\n%s", tt.name, limit, diff)
			}
		}
	}

	// Each item is the file's view with its recording's app and room.
	page, err := s.ListFiles(ctx, ledger.FileFilter{Upload: ledger.FilesFailed})
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("failed files: %+v, %v", page, err)
	}
	want := ledger.ListedFile{File: mustRecording(t, s, "r2").FileView("b1.mp4"), AppKey: "app", RoomID: "roomB"}
	if diff := cmp.Diff(want, page.Items[0]); diff != "" {
		t.Errorf("listed file (-want +got):\n%s", diff)
	}

	for _, bad := range []ledger.FileFilter{{Limit: -1}, {Limit: ledger.MaxPage + 1}} {
		if _, err := s.ListFiles(ctx, bad); !errors.Is(err, ledger.ErrBadLimit) {
			t.Errorf("limit %d: %v, want ErrBadLimit", bad.Limit, err)
		}
	}
	if _, err := s.ListFiles(ctx, ledger.FileFilter{Upload: "overdue; DROP TABLE recordings"}); !errors.Is(err, ledger.ErrBadFilter) {
		t.Errorf("an unknown upload selection: %v, want ErrBadFilter", err)
	}
	first, err := s.ListFiles(ctx, ledger.FileFilter{RoomID: "roomA", Limit: 1})
	if err != nil || first.Next == "" {
		t.Fatalf("first page of roomA: %+v, %v", first, err)
	}
	for _, other := range []ledger.FileFilter{{RoomID: "roomB"}, {RoomID: "roomA", Upload: ledger.FilesPending}, {RoomID: "roomA", Since: ms(0)}} {
		other.Cursor = first.Next
		if _, err := s.ListFiles(ctx, other); !errors.Is(err, ledger.ErrBadCursor) {
			t.Errorf("roomA's cursor used for %+v: %v, want ErrBadCursor", other, err)
		}
	}
	// A recordings cursor is not a files cursor, nor is garbage.
	recs, err := s.ListRecordings(ctx, ledger.RecordingFilter{Limit: 1})
	if err != nil || recs.Next == "" {
		t.Fatalf("recordings: %+v, %v", recs, err)
	}
	for _, c := range []string{recs.Next, "garbage", "ZjE6MDow", "ZjE6LTE6MDowOng"} {
		if _, err := s.ListFiles(ctx, ledger.FileFilter{Cursor: c}); !errors.Is(err, ledger.ErrBadCursor) {
			t.Errorf("cursor %q: %v, want ErrBadCursor", c, err)
		}
	}
}

// testFilesPagesStableUnderInserts pages through files two at a time
// while new recordings, new files of listed recordings (newer than the
// page's last, so listed above it) and uploads arrive between pages: the
// pages must hold every file that existed at the first page exactly once.
func testFilesPagesStableUnderInserts(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	ctx := context.Background()
	at := time.Now()
	var existing []string
	for i := range 5 {
		id := fmt.Sprintf("fp%d", i)
		cbs := Recording(t, id, 1+i%3, i%2 == 0)
		appendAll(t, s, cbs, at.Add(time.Duration(i)*time.Second))
		for name := range fold(cbs, at).Files {
			existing = append(existing, id+"/"+name)
		}
	}
	seen := map[string]int{}
	f := ledger.FileFilter{Limit: 2}
	for round := 0; ; round++ {
		page, err := s.ListFiles(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range fileKeys(page.Items) {
			seen[k]++
		}
		if page.Next == "" {
			break
		}
		if round > 50 {
			t.Fatal("paging does not end")
		}
		last := page.Items[len(page.Items)-1]
		appendAll(t, s, []rc.Callback{
			Recording(t, fmt.Sprintf("fnew%02d", round), 1, false)[1],
			Callback(t, last.RecordID, rc.TypeSegment, time.Duration(round)*time.Hour, fmt.Sprintf("late%02d.mp4", round), 200),
			Callback(t, last.RecordID, rc.TypeUpload, time.Hour, last.FileName, 200),
		}, at.Add(time.Minute+time.Duration(round)*time.Second))
		f.Cursor = page.Next
	}
	for _, k := range existing {
		if seen[k] != 1 {
			t.Errorf("%s listed %d times, want once", k, seen[k])
		}
	}
}

// testFilesAgreeWithStats: the files not uploaded (and the overdue ones)
// are exactly those the recordings' views hold and as many as Stats
// counts, at two clocks, under shuffled arrivals and redeliveries: the
// overview's counts link to these lists.
func testFilesAgreeWithStats(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	ctx := context.Background()
	now := time.Now()
	rnd := rand.New(rand.NewPCG(3, 5))
	var all []ledger.Incoming
	for i := range 24 {
		id := fmt.Sprintf("fs-%02d", i)
		cbs := Recording(t, id, 1+i%4, i%3 == 0)
		switch i % 4 {
		case 1: // still recording
			cbs = cbs[:2]
		case 2: // ended, uploads not reported
			cbs = slices.DeleteFunc(cbs, func(cb rc.Callback) bool { return cb.Type == rc.TypeUpload })
		}
		at := now
		if i%2 == 0 {
			at = now.Add(-30 * time.Hour)
		}
		for j, cb := range cbs {
			all = append(all, ledger.Incoming{Callback: cb, ReceivedAt: at.Add(time.Duration(j) * time.Second)})
			if rnd.IntN(8) == 0 {
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
	recs, err := s.ListRecordings(ctx, ledger.RecordingFilter{Limit: ledger.MaxPage})
	if err != nil {
		t.Fatal(err)
	}
	for _, clock := range []time.Time{now, now.Add(26 * time.Hour)} {
		var wantPending, wantOverdue []string
		for _, st := range recs.Items {
			for _, f := range st.FileViews() {
				if f.UploadStatus != ledger.UploadStatusUploaded {
					wantPending = append(wantPending, st.RecordID+"/"+f.FileName)
					if st.Overdue(clock) {
						wantOverdue = append(wantOverdue, st.RecordID+"/"+f.FileName)
					}
				}
			}
		}
		stats, err := s.Stats(ctx, clock)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			upload ledger.FileUpload
			want   []string
			count  int64
		}{
			{ledger.FilesNotUploaded, wantPending, stats.FilesPending},
			{ledger.FilesOverdue, wantOverdue, stats.FilesOverdue},
		} {
			got := fileKeys(allFiles(t, s, ledger.FileFilter{Upload: c.upload, Now: clock, Limit: 7}))
			if int64(len(got)) != c.count {
				t.Errorf("at +%v: %d files %s listed, stats count %d", clock.Sub(now).Round(time.Hour), len(got), c.upload, c.count)
			}
			slices.Sort(got)
			slices.Sort(c.want)
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("at +%v: files %s (-recordings +listed):\n%s", clock.Sub(now).Round(time.Hour), c.upload, diff)
			}
		}
	}
}

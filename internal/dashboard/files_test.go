package dashboard_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/html"

	"github.com/recledger/recledger/internal/dashboard"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// appendAt stores callbacks received a millisecond apart from at.
func appendAt(t *testing.T, s appendStore, at time.Time, cbs ...rc.Callback) {
	t.Helper()
	for i, cb := range cbs {
		if _, err := s.Append(context.Background(), ledger.Incoming{Callback: cb, ReceivedAt: at.Add(time.Duration(i) * time.Millisecond)}); err != nil {
			t.Fatal(err)
		}
	}
}

// segments returns n segment callbacks of recordID in room, none uploaded.
func segments(t *testing.T, recordID, room string, n int) []rc.Callback {
	t.Helper()
	var out []rc.Callback
	for i := range n {
		body := fmt.Sprintf(`{"timestamp":%d,"type":2,"appKey":"app","recordId":%q,"roomId":%q,"sessionId":"s","userId":"u","mode":0,"code":200,"output":{"fileName":"%s_%03d.mp4","fileSize":%d}}`,
			1_700_000_000_000+int64(i), recordID, room, recordID, i, 100+i)
		cb, err := rc.Parse([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, cb)
	}
	return out
}

// fileRows returns the files table's rows: "recordId/fileName".
func fileRows(doc *html.Node) []string {
	var out []string
	for _, tr := range find(doc, func(n *html.Node) bool { _, ok := attr(n, "data-file"); return ok && n.Data == "tr" }) {
		name, _ := attr(tr, "data-file")
		links := find(tr, tag("a"))
		if len(links) == 0 {
			out = append(out, "?/"+name)
			continue
		}
		out = append(out, text(links[0])+"/"+name)
	}
	return out
}

// TestOverviewLinksToItsFiles: the overview's "Files not uploaded yet" and
// "overdue" figures link to the files page, which lists exactly as many
// files as each figure says.
func TestOverviewLinksToItsFiles(t *testing.T) {
	s := fill(t, now) // rec-stuck: one failed upload
	appendAt(t, s, now.Add(-time.Minute), segments(t, "rec-wait", "room-w", 2)...)
	for _, tt := range []struct {
		clock  time.Time
		figure string // the counted element's attribute
		want   []string
	}{
		{now, "data-files-pending", []string{"rec-wait/rec-wait_001.mp4", "rec-wait/rec-wait_000.mp4", "rec-stuck/sess_room_u1_rec-stuck_1.mp4"}},
		{now.Add(26 * time.Hour), "data-files-overdue", []string{"rec-stuck/sess_room_u1_rec-stuck_1.mp4"}}, // rec-wait never ended
	} {
		st := newSite(t, s, "", tt.clock)
		_, doc, _ := fetch(t, nil, st.URL+"/")
		var href, count string
		for _, a := range find(doc, tag("a")) {
			if n := find(a, func(n *html.Node) bool { _, ok := attr(n, tt.figure); return ok }); len(n) == 1 {
				href, _ = attr(a, "href")
				count = strings.Fields(text(n[0]))[0]
			}
		}
		if !strings.HasPrefix(href, "/files?") {
			t.Fatalf("at +%v, the %s figure links to %q, want the files page", tt.clock.Sub(now).Round(time.Hour), tt.figure, href)
		}
		code, list, _ := fetch(t, nil, st.URL+href)
		got := fileRows(list)
		if code != 200 || count != strconv.Itoa(len(got)) {
			t.Errorf("%s says %s; %s (%d) lists %d: %v", tt.figure, count, href, code, len(got), got)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", href, diff)
		}
		for _, p := range accessibilityProblems(list) {
			t.Errorf("%s: %s", href, p)
		}
	}
}

// TestFilesPage: the filters, the row's recording link, the pages, the CSV
// link with the same filters and the nav entry.
func TestFilesPage(t *testing.T) {
	s := fill(t, now)
	appendAt(t, s, now.Add(-time.Minute), segments(t, "rec-many", "big", ledger.DefaultPage+5)...)
	st := newSite(t, s, "", now)

	code, doc, body := fetch(t, nil, st.URL+"/files?uploadState=failed")
	if got := fileRows(doc); code != 200 || !cmp.Equal(got, []string{"rec-stuck/sess_room_u1_rec-stuck_1.mp4"}) {
		t.Errorf("failed files: %d %v", code, got)
	}
	if len(find(doc, hasAttr("href", "/recordings/rec-stuck#files"))) != 1 || !strings.Contains(body, `<span class="badge file-failed">failed</span>`) {
		t.Errorf("the failed file's row lacks its recording link or status:\n%s", body)
	}
	if len(find(doc, hasAttr("href", "/files.csv?uploadState=failed"))) != 1 {
		t.Errorf("no CSV link with the page's filters")
	}
	if nav := find(doc, hasAttr("aria-current", "page")); len(nav) != 1 || text(nav[0]) != "Files" {
		t.Errorf("the nav does not mark Files as the current page")
	}

	_, doc, _ = fetch(t, nil, st.URL+"/files?roomId=big")
	first := fileRows(doc)
	older := find(doc, hasAttr("rel", "next"))
	if len(first) != ledger.DefaultPage || len(older) != 1 {
		t.Fatalf("first page of room big: %d rows, %d next links", len(first), len(older))
	}
	href, _ := attr(older[0], "href")
	_, doc, _ = fetch(t, nil, st.URL+href)
	second := fileRows(doc)
	if len(second) != 5 || second[4] != "rec-many/rec-many_000.mp4" || first[0] != "rec-many/rec-many_054.mp4" {
		t.Errorf("pages: first starts %v, second %v", first[:1], second)
	}
	if len(find(doc, hasAttr("href", "/files?roomId=big"))) == 0 {
		t.Errorf("a later page has no link back to the first")
	}

	for _, q := range []string{"uploadState=partial", "since=yesterday", "cursor=nope", "roomId=big&cursor=" + url.QueryEscape(href[strings.Index(href, "cursor=")+7:]) + "x"} {
		if code, _, body := fetch(t, nil, st.URL+"/files?"+q); code != 400 || !strings.Contains(body, "Check the filter") {
			t.Errorf("/files?%s: %d, want 400 Check the filter", q, code)
		}
	}
}

func getCSV(t *testing.T, u string) (*http.Response, [][]string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := csv.NewReader(strings.NewReader(string(b)))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatalf("%s: %v\n%s", u, err, b)
	}
	return resp, rows
}

// TestFilesCSV: both CSVs are downloads of every matching file, streamed
// page by page up to their bound, with formula-looking cells made text.
func TestFilesCSV(t *testing.T) {
	s := fill(t, now)
	evil := []string{
		`{"timestamp":1700000000000,"type":2,"appKey":"@app","recordId":"=rec","roomId":"=HYPERLINK(\"http://x\",\"y\")","sessionId":"s","userId":"u","mode":0,"code":200,"output":{"fileName":"-2+3.mp4","fileSize":5}}`,
		`{"timestamp":1700000000001,"type":3,"appKey":"@app","recordId":"=rec","roomId":"=HYPERLINK(\"http://x\",\"y\")","sessionId":"s","userId":"u","mode":0,"code":200,"output":{"fileName":"+cmd|' /C calc'!A0.mp4","fileSize":6}}`,
		`{"timestamp":1700000000002,"type":4,"appKey":"@app","recordId":"=rec","roomId":"=HYPERLINK(\"http://x\",\"y\")","sessionId":"s","userId":"u","mode":0,"code":200,"output":{"fileName":"-2+3.mp4","fileUrl":"http://oss/a.mp4?sig=1"}}`,
	}
	var cbs []rc.Callback
	for _, b := range evil {
		cb, err := rc.Parse([]byte(b))
		if err != nil {
			t.Fatal(err)
		}
		cbs = append(cbs, cb)
	}
	at := now.Add(-time.Minute)
	appendAt(t, s, at, cbs...)
	appendAt(t, s, at.Add(time.Second), segments(t, "rec-many", "big", 7)...)
	st := newSite(t, s, "", now)

	resp, rows := getCSV(t, st.URL+"/recordings/"+url.PathEscape("=rec")+"/files.csv")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" ||
		resp.Header.Get("Content-Disposition") != `attachment; filename="recledger-files-_rec.csv"` {
		t.Errorf("recording CSV: %d %v", resp.StatusCode, resp.Header)
	}
	first := at.UnixMilli()
	want := [][]string{
		{"fileName", "recordId", "appKey", "roomId", "kind", "format", "uploadStatus", "fileSize", "firstSeenAt", "uploadedAt", "fileUrl"},
		{"'+cmd|' /C calc'!A0.mp4", "'=rec", "'@app", `'=HYPERLINK("http://x","y")`, "final", "mp4", "pending", "6",
			time.UnixMilli(first+1).UTC().Format("2006-01-02 15:04:05") + " +00:00", "", ""},
		{"'-2+3.mp4", "'=rec", "'@app", `'=HYPERLINK("http://x","y")`, "segment", "mp4", "uploaded", "5",
			time.UnixMilli(first).UTC().Format("2006-01-02 15:04:05") + " +00:00", "2023-11-14 22:13:20 +00:00", "http://oss/a.mp4?sig=1"},
	}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("recording CSV (-want +got):\n%s", diff)
	}

	// The filtered list streams page by page (2 a page here), in the
	// files page's order, and says where it was cut.
	for _, tt := range []struct {
		max   int
		files int
		cut   bool
	}{{100, 7, false}, {7, 7, false}, {5, 5, true}} {
		restore := dashboard.SetCSVBounds(2, tt.max)
		resp, rows := getCSV(t, st.URL+"/files.csv?roomId=big&uploadState=pending")
		restore()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Disposition") != `attachment; filename="recledger-files.csv"` {
			t.Errorf("list CSV: %d %v", resp.StatusCode, resp.Header)
		}
		wantRows := 1 + tt.files
		if tt.cut {
			wantRows++
		}
		if len(rows) != wantRows {
			t.Fatalf("max %d: %d rows, want %d: %v", tt.max, len(rows), wantRows, rows)
		}
		if rows[1][0] != "rec-many_006.mp4" || rows[tt.files][0] != fmt.Sprintf("rec-many_%03d.mp4", 7-tt.files) {
			t.Errorf("max %d: rows out of order: %v", tt.max, rows)
		}
		if last := rows[len(rows)-1]; tt.cut != strings.HasPrefix(last[0], "(cut at 5 files") {
			t.Errorf("max %d: last row %v, cut %v", tt.max, last, tt.cut)
		}
	}
	for _, u := range []string{"/files.csv?uploadState=partial", "/files.csv?cursor=abc"} {
		if code, _, body := fetch(t, nil, st.URL+u); code != 400 || !strings.Contains(body, "Check the filter") {
			t.Errorf("%s: %d, want 400", u, code)
		}
	}
	if code, _, _ := fetch(t, nil, st.URL+"/recordings/nope/files.csv"); code != 404 {
		t.Errorf("CSV of an unknown recording: %d, want 404", code)
	}
	_, doc, _ := fetch(t, nil, st.URL+"/recordings/rec-done")
	if len(find(doc, hasAttr("href", "/recordings/rec-done/files.csv"))) != 1 {
		t.Errorf("the recording page does not link its CSV")
	}
}

// TestHostileFilesFilters sends the hostile values of the list filters to
// the files page, its CSV and a recording's CSV on both backends: never
// 5xx, the same status on both, 400 for what no file can match, 404 for
// a recordId none can have, and the value never echoed.
func TestHostileFilesFilters(t *testing.T) {
	values := []struct {
		name, raw string
		valid     bool
	}{
		{"NUL", "a%00b", false},
		{"invalid UTF-8", "a%FFb", false},
		{"100 KB", strings.Repeat("a", 100<<10), false},
		{"C1 control", "a%C2%85b", false},
		{"emoji", "%F0%9F%98%80", true},
		{"quotes and SQL", "x%27%20OR%20%271%27%3D%271%22%3B%20DROP%20TABLE%20recordings%3B%20--", true},
	}
	type target struct {
		url    func(raw string) string
		kind   string // "filter", "strict" or "path"
		csvRaw bool   // a 200 is a CSV
	}
	q := func(path, param string) func(string) string {
		return func(raw string) string { return path + "?" + param + "=" + raw }
	}
	var targets []target
	for _, path := range []string{"/files", "/files.csv"} {
		for _, p := range []string{"appKey", "roomId"} {
			targets = append(targets, target{q(path, p), "filter", path == "/files.csv"})
		}
		for _, p := range []string{"uploadState", "since", "until"} {
			targets = append(targets, target{q(path, p), "strict", false})
		}
	}
	targets = append(targets, target{q("/files", "cursor"), "strict", false},
		target{func(raw string) string { return "/recordings/" + raw + "/files.csv" }, "path", false})

	var mu sync.Mutex
	statuses := map[string]map[string]int{}
	onBothStores(t, func(t *testing.T, backend string, s dashboard.Store) {
		st := newSite(t, s, "", now)
		got := map[string]int{}
		for i, tg := range targets {
			for _, v := range values {
				name := fmt.Sprintf("target %d %s", i, v.name)
				resp, err := http.Get(st.URL + tg.url(v.raw))
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				got[name] = resp.StatusCode
				want := http.StatusBadRequest
				switch {
				case tg.kind == "path":
					want = http.StatusNotFound
				case tg.kind == "filter" && v.valid:
					want = http.StatusOK
				}
				if resp.StatusCode != want {
					t.Errorf("%s %.60s: %d, want %d\n%.300s", name, tg.url(v.raw), resp.StatusCode, want, b)
				}
				if tg.csvRaw && want == 200 && string(b) != "fileName,recordId,appKey,roomId,kind,format,uploadStatus,fileSize,firstSeenAt,uploadedAt,fileUrl\n" {
					t.Errorf("%s: a CSV with rows for a value that matches nothing: %.300s", name, b)
				}
				if strings.Contains(string(b), strings.Repeat("a", 300)) || strings.Contains(string(b), "\x00") || strings.Contains(string(b), "\u0085") {
					t.Errorf("%s: the answer echoes the hostile value", name)
				}
			}
		}
		// Times too large or negative are refused; the largest one is a time.
		for u, want := range map[string]int{
			"/files?since=99999999999999999999":    400,
			"/files.csv?until=-5":                  400,
			"/files?since=9223372036854775807":     200,
			"/files.csv?until=9223372036854775807": 200,
		} {
			if code, _, body := fetch(t, nil, st.URL+u); code != want {
				t.Errorf("%s: %d, want %d\n%.300s", u, code, want, body)
			}
		}
		mu.Lock()
		statuses[backend] = got
		mu.Unlock()
	})
	if pg, ok := statuses["postgres"]; ok {
		for req, code := range statuses["sqlite"] {
			if pg[req] != code {
				t.Errorf("%s: SQLite answers %d, PostgreSQL %d", req, code, pg[req])
			}
		}
	}
}

// TestMisspeltFiltersAreRefused: a query parameter the lists do not read is
// a 400 naming it, not a list (or a CSV) widened to everything; a hostile
// name is not echoed whole.
func TestMisspeltFiltersAreRefused(t *testing.T) {
	st := newSite(t, fill(t, now), "", now)
	for _, tt := range []struct{ url, says string }{
		{"/recordings?roomid=room-2", "did you mean roomId?"},
		{"/files?uploadstate=failed", "did you mean uploadState?"},
		{"/files.csv?roomid=zzz", "did you mean roomId?"},
		{"/files.csv?status=failed", "this page takes uploadState, roomId"},
		{"/recordings?" + strings.Repeat("n", 100<<10) + "=1", "unknown"},
		{"/files?a%00b=1", "unknown"},
	} {
		code, _, body := fetch(t, nil, st.URL+tt.url)
		if code != http.StatusBadRequest || !strings.Contains(body, tt.says) {
			t.Errorf("%.60s: %d, want 400 saying %q\n%.400s", tt.url, code, tt.says, body)
		}
		if strings.Contains(body, strings.Repeat("n", 100)) || strings.Contains(body, "\x00") {
			t.Errorf("%.60s: the answer echoes the hostile name", tt.url)
		}
	}
	for _, u := range []string{"/recordings?roomId=room-2&found=roomId", "/files?uploadState=failed&roomId=x", "/files.csv?roomId=x"} {
		if code, _, body := fetch(t, nil, st.URL+u); code != http.StatusOK {
			t.Errorf("%s: %d, want 200\n%.300s", u, code, body)
		}
	}
}

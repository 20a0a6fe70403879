package dashboard_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/recledger/recledger/internal/access"
	"github.com/recledger/recledger/internal/api"
	"github.com/recledger/recledger/internal/dashboard"
	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/display"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/ledger/ledgertest"
	"github.com/recledger/recledger/internal/sqlitestore"
	"github.com/recledger/recledger/rc"
)

// hostile is a recording whose every RC-controlled string tries to break
// out of the page: the pages must show it as text and link nothing of it.
const hostileID = `<img src=x onerror=alert(1)>`

func hostileCallbacks(t *testing.T) []rc.Callback {
	t.Helper()
	var out []rc.Callback
	for _, body := range []string{
		`{"timestamp":1700000000000,"type":2,"appKey":"app","recordId":"<img src=x onerror=alert(1)>","roomId":"r\"><script>alert(2)</script>",` +
			`"sessionId":"s","userId":"u","mode":0,"code":200,"errorMessage":"</pre><script>alert(3)</script>","output":{"fileName":"evil.mp4","fileSize":1}}`,
		`{"timestamp":1700000001000,"type":4,"appKey":"app","recordId":"<img src=x onerror=alert(1)>","roomId":"r","sessionId":"s","userId":"u","mode":0,` +
			`"code":200,"errorMessage":"","output":{"fileName":"evil.mp4","fileUrl":"javascript:alert(4)"}}`,
	} {
		cb, err := rc.Parse([]byte(body))
		if err != nil {
			t.Fatalf("hostile callback: %v", err)
		}
		out = append(out, cb)
	}
	return out
}

// fill stores: rec-done (complete, 2 files uploaded), rec-stuck (ended, an
// upload failed), rec-live (recording), the hostile one, and two refused
// requests, all arrived a minute before now.
func fill(t *testing.T, now time.Time) *sqlitestore.Store {
	t.Helper()
	s, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "r.db"), sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	cbs := ledgertest.Recording(t, "rec-done", 2, false)
	cbs = append(cbs, ledgertest.Recording(t, "rec-stuck", 3, true)...)
	cbs = append(cbs, ledgertest.Callback(t, "rec-live", rc.TypeStart, time.Hour, "", 200))
	cbs = append(cbs, hostileCallbacks(t)...)
	cbs = append(cbs, cbs[1]) // a redelivery
	at := now.Add(-time.Minute)
	for i, cb := range cbs {
		if _, err := s.Append(context.Background(), ledger.Incoming{Callback: cb, ReceivedAt: at.Add(time.Duration(i) * time.Millisecond)}); err != nil {
			t.Fatal(err)
		}
	}
	addDestination(t, s, at)
	for _, reason := range []string{"bad_signature", "invalid_json"} {
		err := s.Quarantine(context.Background(), ledger.Rejection{At: at.UnixMilli(), Status: 401, Reason: reason, AppKey: "app_" + reason, Message: "rc: " + reason,
			Remote: "192.0.2.7:4000", Method: "POST", Path: "/v1/callbacks/recording",
			Header: http.Header{"Signature": {"(masked)"}}, Body: []byte(`{"x":"<b>bold</b>"}`), BodySize: 18})
		if err != nil {
			t.Fatal(err)
		}
	}
	return s
}

type site struct {
	*httptest.Server
	logs *bytes.Buffer
}

func newSite(t *testing.T, s dashboard.Store, token string, now time.Time) site {
	t.Helper()
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	clock := func() time.Time { return now }
	rule := access.New(token, clock)
	mux := http.NewServeMux()
	api.New(s.(api.Store), api.Options{Access: rule, Now: clock, Logger: log}).Register(mux)
	o := dashboard.Options{Access: rule, Now: clock, Logger: log}
	if src, ok := s.(delivery.Source); ok {
		o.Destinations = src.Delivery()
	}
	d, err := dashboard.New(s, o)
	if err != nil {
		t.Fatal(err)
	}
	d.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return site{srv, logs}
}

var noRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func fetch(t *testing.T, c *http.Client, u string) (int, *html.Node, string) {
	t.Helper()
	if c == nil {
		c = &http.Client{CheckRedirect: noRedirect}
	}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	doc, err := html.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", u, err)
	}
	return resp.StatusCode, doc, string(b)
}

// find returns the elements for which match holds, in document order.
func find(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && match(n) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func hasAttr(key, val string) func(*html.Node) bool {
	return func(n *html.Node) bool { v, ok := attr(n, key); return ok && v == val }
}

func tag(name string) func(*html.Node) bool {
	return func(n *html.Node) bool { return n.Data == name }
}

func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

var now = time.Now().Truncate(time.Millisecond)

func TestOverview(t *testing.T) {
	st := newSite(t, fill(t, now), "", now)
	code, doc, _ := fetch(t, nil, st.URL+"/")
	if code != 200 {
		t.Fatalf("overview: %d", code)
	}
	counts := map[string]string{}
	for _, n := range find(doc, func(n *html.Node) bool { _, ok := attr(n, "data-count"); return ok }) {
		k, _ := attr(n, "data-count")
		counts["status "+k] = text(n)
	}
	for _, n := range find(doc, func(n *html.Node) bool { _, ok := attr(n, "data-upload-count"); return ok }) {
		k, _ := attr(n, "data-upload-count")
		counts["upload "+k] = text(n)
	}
	want := map[string]string{
		"status recording": "2", "status ended": "1", "status complete": "1", "status failed": "0",
		"upload none": "1", "upload pending": "0", "upload partial": "0", "upload complete": "2", "upload failed": "1", "upload overdue": "0",
	}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("%s = %q, want %s (all: %v)", k, counts[k], v, counts)
		}
	}
	// The failed uploads are highlighted; zero counts are not.
	alerts := find(doc, func(n *html.Node) bool { c, _ := attr(n, "class"); return strings.Contains(c, "alert-card") })
	if len(alerts) != 1 || !strings.Contains(text(alerts[0]), "failed") {
		t.Errorf("highlighted cards: %d %v", len(alerts), alerts)
	}
	// 6 (rec-done) + 7 (rec-stuck) + 1 + 2 (hostile) + 1 redelivery stored; 2 refused.
	if got := text(find(doc, hasAttr("data-callbacks-hour", ""))[0]); got != "17" {
		t.Errorf("callbacks last hour = %s, want 17", got)
	}
	if got := text(find(doc, hasAttr("data-rejected-hour", ""))[0]); got != "2" {
		t.Errorf("rejected last hour = %s, want 2", got)
	}
	// The chart has a legend naming both kinds of bar, and its axis text
	// outside the scaled SVG.
	legend := find(doc, hasAttr("data-legend", ""))
	if len(legend) != 1 || len(find(legend[0], hasAttr("class", "swatch ok"))) != 1 || len(find(legend[0], hasAttr("class", "swatch rej"))) != 1 ||
		text(legend[0]) != "stored callbacks refused requests" {
		t.Errorf("the chart's legend: %d, want one naming stored callbacks and refused requests", len(legend))
	}
	if svgText := find(find(doc, tag("svg"))[0], tag("text")); len(svgText) != 0 {
		t.Errorf("%d texts inside the chart's SVG: they shrink with it on a phone", len(svgText))
	}
	bars := find(doc, func(n *html.Node) bool { c, _ := attr(n, "class"); return n.Data == "rect" && c == "ok" })
	if len(bars) != 1 {
		t.Errorf("bars with callbacks: %d, want 1 (all arrived in one minute)", len(bars))
	}
	if rows := find(doc, func(n *html.Node) bool { c, _ := attr(n, "class"); return n.Data == "table" && c == "events" }); len(rows) != 1 ||
		len(find(rows[0], tag("tr"))) != 11 {
		t.Errorf("latest callbacks table: want a header and 10 rows")
	}
}

func TestRecordingsListAndFilters(t *testing.T) {
	st := newSite(t, fill(t, now), "", now)
	ids := func(q string) []string {
		t.Helper()
		code, doc, body := fetch(t, nil, st.URL+"/recordings"+q)
		if code != 200 {
			t.Fatalf("%s: %d\n%s", q, code, body)
		}
		var out []string
		for _, n := range find(doc, func(n *html.Node) bool { _, ok := attr(n, "data-record-id"); return ok && n.Data == "tr" }) {
			v, _ := attr(n, "data-record-id")
			out = append(out, v)
		}
		return out
	}
	for _, tt := range []struct{ query, want string }{
		{"", hostileID + " rec-live rec-stuck rec-done"},
		{"?status=ended", "rec-stuck"},
		{"?uploadState=failed", "rec-stuck"},
		{"?uploadState=complete&status=complete", "rec-done"},
		{"?roomId=room&status=recording", "rec-live"},
		{"?userId=u", hostileID},
		{"?mode=3", ""},
		{"?since=" + url.QueryEscape(time.UnixMilli(1530027865231).UTC().Add(30*time.Minute).Format("2006-01-02T15:04")), hostileID + " rec-live"},
		{"?until=1530027865231", "rec-stuck rec-done"},
	} {
		if got := strings.Join(ids(tt.query), " "); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.query, got, tt.want)
		}
	}
	for query, want := range map[string]string{
		"":              "4 recordings, newest first seen first",
		"?status=ended": "1 recording, newest first seen first, filtered",
	} {
		if _, doc, _ := fetch(t, nil, st.URL+"/recordings"+query); caption(doc) != want {
			t.Errorf("%s: caption %q, want %q", query, caption(doc), want)
		}
	}
	for _, bad := range []string{"?status=done", "?mode=9", "?since=yesterday", "?uploadState=x", "?cursor=zzz"} {
		if code, _, _ := fetch(t, nil, st.URL+"/recordings"+bad); code != 400 {
			t.Errorf("%s: %d, want 400", bad, code)
		}
	}
	// The filter form keeps what was asked.
	_, doc, _ := fetch(t, nil, st.URL+"/recordings?status=ended&roomId=room")
	if sel := find(doc, func(n *html.Node) bool {
		_, s := attr(n, "selected")
		v, _ := attr(n, "value")
		return s && v == "ended"
	}); len(sel) != 1 {
		t.Error("status select does not keep ended")
	}
	if in := find(doc, hasAttr("id", "f-room")); len(in) != 1 || func() string { v, _ := attr(in[0], "value"); return v }() != "room" {
		t.Error("room input does not keep its value")
	}
}

func TestPagination(t *testing.T) {
	s := fill(t, now)
	for i := range 55 {
		cb := ledgertest.Callback(t, fmt.Sprintf("page-%02d", i), rc.TypeStart, 0, "", 200)
		if _, err := s.Append(context.Background(), ledger.Incoming{Callback: cb, ReceivedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	st := newSite(t, s, "", now)
	_, doc, _ := fetch(t, nil, st.URL+"/recordings?status=recording")
	rows := find(doc, func(n *html.Node) bool { _, ok := attr(n, "data-record-id"); return ok })
	next := find(doc, hasAttr("rel", "next"))
	if len(rows) != 50 || len(next) != 1 {
		t.Fatalf("first page: %d rows, %d next links", len(rows), len(next))
	}
	// The caption counts what matches, not the page's size.
	if got := caption(doc); got != "50 shown of 57 recordings, newest first seen first, filtered" {
		t.Errorf("first page's caption %q", got)
	}
	href, _ := attr(next[0], "href")
	_, doc, _ = fetch(t, nil, st.URL+href)
	rows = find(doc, func(n *html.Node) bool { _, ok := attr(n, "data-record-id"); return ok })
	if len(rows) != 7 || len(find(doc, hasAttr("rel", "next"))) != 0 { // 55 + rec-live + the hostile one
		t.Errorf("second page: %d rows", len(rows))
	}
	if got := caption(doc); got != "7 older shown of 57 recordings, newest first seen first, filtered" {
		t.Errorf("second page's caption %q", got)
	}
	if body := find(doc, tag("body")); func() string { v, _ := attr(body[0], "data-live"); return v }() != "off" {
		t.Error("a later page follows the stream; rows would shift under the reader")
	}
}

// caption is the text of the page's count caption.
func caption(doc *html.Node) string {
	c := find(doc, hasAttr("data-count-caption", ""))
	if len(c) != 1 {
		return fmt.Sprintf("%d count captions", len(c))
	}
	return text(c[0])
}

// The list is in the order of the column it marks sorted: first seen (the
// server's clock), not RC's start time, which may run in another order.
func TestListOrderIsTheSortedColumn(t *testing.T) {
	s := fill(t, now)
	// late-stamped arrives first, stamped an hour after early-stamped.
	for i, cb := range []rc.Callback{
		ledgertest.Callback(t, "late-stamped", rc.TypeStart, time.Hour, "", 200),
		ledgertest.Callback(t, "early-stamped", rc.TypeStart, 0, "", 200),
	} {
		if _, err := s.Append(context.Background(), ledger.Incoming{Callback: cb, ReceivedAt: now.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	st := newSite(t, s, "", now)
	_, doc, _ := fetch(t, nil, st.URL+"/recordings")
	sorted := find(doc, func(n *html.Node) bool { _, ok := attr(n, "aria-sort"); return ok })
	if len(sorted) != 1 || !strings.HasPrefix(text(sorted[0]), "First seen") {
		t.Fatalf("sorted column header: %d headers marked, want First seen", len(sorted))
	}
	if v, _ := attr(sorted[0], "aria-sort"); v != "descending" {
		t.Errorf("aria-sort=%q, want descending", v)
	}
	var order []string
	var last time.Time
	for i, row := range find(doc, func(n *html.Node) bool { _, ok := attr(n, "data-record-id"); return ok && n.Data == "tr" }) {
		id, _ := attr(row, "data-record-id")
		order = append(order, id)
		cell := find(row, hasAttr("data-first-seen", ""))
		if len(cell) != 1 {
			t.Fatalf("%s: no first-seen cell", id)
		}
		times := find(cell[0], tag("time"))
		if len(times) == 0 {
			t.Fatalf("%s: the first-seen cell shows no time", id)
		}
		dt, _ := attr(times[0], "datetime")
		at, err := time.Parse(time.RFC3339Nano, dt)
		if err != nil {
			t.Fatalf("%s: first seen %q: %v", id, dt, err)
		}
		if i > 0 && at.After(last) {
			t.Errorf("%s first seen %s, after the row above (%s): the list is not in the sorted column's order", id, at, last)
		}
		last = at
	}
	if got := strings.Join(order[:2], " "); got != "early-stamped late-stamped" {
		t.Errorf("newest first seen first: %s", got)
	}
}

func TestRecordingDetail(t *testing.T) {
	st := newSite(t, fill(t, now), "", now)
	code, doc, _ := fetch(t, nil, st.URL+"/recordings/rec-stuck")
	if code != 200 {
		t.Fatalf("detail: %d", code)
	}
	files := find(doc, func(n *html.Node) bool { _, ok := attr(n, "data-file"); return ok })
	if len(files) != 3 {
		t.Fatalf("files: %d, want 3", len(files))
	}
	want := map[string]string{
		"sess_room_u1_rec-stuck_1.mp4": "failed",
		"sess_room_u1_rec-stuck_2.mp4": "uploaded",
		"sess_room_u1_rec-stuck_3.mp4": "uploaded",
	}
	for _, f := range files {
		name, _ := attr(f, "data-file")
		badge := find(f, func(n *html.Node) bool { c, _ := attr(n, "class"); return strings.HasPrefix(c, "badge file-") })
		if len(badge) != 1 || text(badge[0]) != want[name] {
			t.Errorf("%s: upload badge %v, want %s", name, badge, want[name])
		}
		links := find(f, hasAttr("class", "file-url"))
		videos := find(f, tag("video"))
		if want[name] == "uploaded" {
			if len(links) != 1 || text(links[0]) != "http://oss/"+name {
				t.Errorf("%s: link %v", name, links)
			}
			if src, _ := attr(videos[0], "src"); len(videos) != 1 || src != "http://oss/"+name {
				t.Errorf("%s: player %v", name, videos)
			}
			if p, _ := attr(videos[0], "preload"); p != "none" {
				t.Errorf("%s: the player preloads (%q): a page of files would download them all", name, p)
			}
		} else if len(links)+len(videos) != 0 {
			t.Errorf("%s: not uploaded but linked", name)
		}
	}
	events := find(doc, func(n *html.Node) bool { _, ok := attr(n, "data-seq"); return ok })
	if len(events) != 7 { // start, 3 files, a failed upload of the first, uploads of the others
		t.Errorf("timeline rows: %d", len(events))
	}
	failed := 0
	for _, e := range events {
		if c, _ := attr(e, "class"); strings.Contains(c, "failed") {
			failed++
		}
		raw := find(e, tag("pre"))
		if len(raw) != 1 || !strings.Contains(text(raw[0]), `"recordId": "rec-stuck"`) {
			t.Errorf("event row without its raw JSON")
		}
	}
	if failed != 1 {
		t.Errorf("failed callbacks marked: %d, want 1", failed)
	}
	if marks := find(doc, func(n *html.Node) bool {
		c, _ := attr(n, "class")
		return n.Data == "g" && strings.HasPrefix(c, "mark ")
	}); len(marks) != 7 {
		t.Errorf("timeline marks: %d", len(marks))
	}
	if alerts := find(doc, hasAttr("role", "alert")); len(alerts) != 1 || !strings.Contains(text(alerts[0]), "code 500") {
		t.Errorf("rec-stuck's standing upload failure is not an alert")
	}
	code, doc, _ = fetch(t, nil, st.URL+"/recordings/rec-done")
	dups := find(doc, func(n *html.Node) bool { c, _ := attr(n, "class"); return n.Data == "tr" && strings.Contains(c, "dup") })
	if code != 200 || len(dups) != 1 {
		t.Errorf("rec-done: %d, duplicate rows %d, want 1", code, len(dups))
	}
	// rec-done's failed upload was retried: told, not alarmed.
	if alerts := find(doc, hasAttr("role", "alert")); len(alerts) != 0 {
		t.Errorf("rec-done is complete but shows an alert: %s", text(alerts[0]))
	}
	if code, _, _ := fetch(t, nil, st.URL+"/recordings/nope"); code != 404 {
		t.Errorf("unknown recording: %d", code)
	}
}

func TestHostileInputIsText(t *testing.T) {
	st := newSite(t, fill(t, now), "", now)
	for _, p := range []string{"/", "/recordings", "/recordings/" + url.PathEscape(hostileID), "/quarantine"} {
		code, doc, body := fetch(t, nil, st.URL+p)
		if code != 200 {
			t.Fatalf("%s: %d", p, code)
		}
		// (javascript:alert(4) may show as text; it must not be a link.)
		for _, bad := range []string{"<script>alert", "<img src=x", "<b>bold"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s: %q reaches the page unescaped", p, bad)
			}
		}
		if n := len(find(doc, tag("script"))); n != 1 {
			t.Errorf("%s: %d script elements, want only the dashboard's", p, n)
		}
		for _, key := range []string{"href", "src"} {
			for _, a := range find(doc, func(n *html.Node) bool { _, ok := attr(n, key); return ok }) {
				if h, _ := attr(a, key); strings.Contains(strings.ToLower(h), "javascript") {
					t.Errorf("%s: %s=%q", p, key, h)
				}
			}
		}
	}
	_, doc, _ := fetch(t, nil, st.URL+"/recordings/"+url.PathEscape(hostileID))
	if h1 := find(doc, tag("h1")); len(h1) != 1 || !strings.Contains(text(h1[0]), hostileID) {
		t.Errorf("the hostile id is not shown as text")
	}
	if files := find(doc, hasAttr("data-file", "evil.mp4")); len(files) != 1 || !strings.Contains(text(files[0]), "not an http link") {
		t.Errorf("a javascript: URL should be shown as text, not linked")
	}
}

func TestQuarantinePage(t *testing.T) {
	st := newSite(t, fill(t, now), "", now)
	_, doc, _ := fetch(t, nil, st.URL+"/quarantine")
	rows := find(doc, func(n *html.Node) bool { _, ok := attr(n, "data-id"); return ok })
	if len(rows) != 2 {
		t.Fatalf("rows: %d", len(rows))
	}
	if !strings.Contains(text(rows[0]), "invalid_json") || !strings.Contains(text(rows[1]), "bad_signature") {
		t.Errorf("newest first, with reasons: %q / %q", text(rows[0]), text(rows[1]))
	}
	if !strings.Contains(text(rows[0]), "192.0.2.7:4000") || !strings.Contains(text(rows[0]), `{"x":"<b>bold</b>"}`) {
		t.Errorf("row lacks sender or body: %q", text(rows[0]))
	}
	if got := caption(doc); got != "2 refused requests, newest first" {
		t.Errorf("caption %q", got)
	}
	if !strings.Contains(text(rows[1]), "app key app_bad_signature") {
		t.Errorf("row lacks the app key the request claimed: %q", text(rows[1]))
	}
}

func TestSearch(t *testing.T) {
	st := newSite(t, fill(t, now), "", now)
	c := &http.Client{CheckRedirect: noRedirect}
	for _, tt := range []struct{ q, location string }{
		{"rec-done", "/recordings/rec-done"},
		{"sess_room_u1_rec-stuck_2.mp4", "/recordings/rec-stuck#files"},
		{"room", "/recordings?found=roomId&roomId=room"},
		{"u1", "/recordings?found=userId&userId=u1"},
		{"sess", "/recordings?found=sessionId&sessionId=sess"},
		{"", "/recordings"},
	} {
		resp, err := c.Get(st.URL + "/search?q=" + url.QueryEscape(tt.q))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != tt.location {
			t.Errorf("%q: %d %s, want %s", tt.q, resp.StatusCode, resp.Header.Get("Location"), tt.location)
		}
	}
	if code, _, body := fetch(t, nil, st.URL+"/search?q=nothing-here"); code != 404 || !strings.Contains(body, "Nothing matches") {
		t.Errorf("no match: %d", code)
	}
	_, doc, _ := fetch(t, nil, st.URL+"/recordings?found=roomId&roomId=room")
	if n := find(doc, hasAttr("class", "notice")); len(n) != 1 || !strings.Contains(text(n[0]), `room is "room"`) {
		t.Error("the search notice is missing")
	}
}

func TestLoginWithToken(t *testing.T) {
	const token = "tok-3f9a1c"
	st := newSite(t, fill(t, now), token, now)
	c := &http.Client{CheckRedirect: noRedirect}
	resp, err := c.Get(st.URL + "/recordings?status=ended")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?next=%2Frecordings%3Fstatus%3Dended" {
		t.Fatalf("without a session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	code, doc, _ := fetch(t, c, st.URL+"/login?next=%2Frecordings")
	if code != 200 || len(find(doc, hasAttr("type", "password"))) != 1 {
		t.Fatalf("login form: %d", code)
	}
	post := func(c *http.Client, form url.Values, header map[string]string) *http.Response {
		req, _ := http.NewRequest("POST", st.URL+"/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := post(c, url.Values{"token": {"wrong"}}, nil); resp.StatusCode != 401 || len(resp.Cookies()) != 0 {
		t.Errorf("wrong token: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	if resp := post(c, url.Values{"token": {token}}, map[string]string{"Sec-Fetch-Site": "cross-site"}); resp.StatusCode != 403 {
		t.Errorf("cross-site login post: %d, want 403", resp.StatusCode)
	}
	resp = post(c, url.Values{"token": {token}, "next": {"//evil.example/x"}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Errorf("next off the site: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp = post(c, url.Values{"token": {token}, "next": {"/recordings?status=ended"}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/recordings?status=ended" {
		t.Errorf("login: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 || !cookies[0].Secure || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode ||
		strings.Contains(cookies[0].Value, token) {
		t.Fatalf("session cookie: %+v", cookies)
	}
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(st.URL)
	jar.SetCookies(u, cookies) // a jar keeps Secure cookies for http://127.0.0.1 as browsers do
	withSession := &http.Client{Jar: jar, CheckRedirect: noRedirect}
	for _, p := range []string{"/", "/recordings", "/recordings/rec-done", "/quarantine", "/v1/recordings"} {
		if code, _, _ := fetch(t, withSession, st.URL+p); code != 200 {
			t.Errorf("%s with the session: %d", p, code)
		}
	}
	// The page script's refresh gets 401, not the login page.
	req, _ := http.NewRequest("GET", st.URL+"/recordings", nil)
	req.Header.Set("X-Recledger-Live", "1")
	if resp, err := c.Do(req); err != nil || resp.StatusCode != 401 {
		t.Errorf("live refresh without a session: %v %v", resp, err)
	}
	// Log out ends it (the cookie is cleared).
	req, _ = http.NewRequest("POST", st.URL+"/logout", nil)
	resp, err = withSession.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code, _, _ := fetch(t, withSession, st.URL+"/"); code != http.StatusSeeOther {
		t.Errorf("after logout: %d, want a redirect to the login", code)
	}
	if strings.Contains(st.logs.String(), token) {
		t.Errorf("the token reached the log:\n%s", st.logs.String())
	}
	if !strings.Contains(st.logs.String(), "dashboard login refused") {
		t.Errorf("a refused login is not logged")
	}
}

func TestLoopbackOnlyWithoutToken(t *testing.T) {
	st := newSite(t, fill(t, now), "", now)
	req, _ := http.NewRequest("GET", st.URL+"/", nil)
	req.Header.Set("X-Forwarded-For", "192.0.2.9")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(b), "--api-token") {
		t.Errorf("forwarded request without a token: %d", resp.StatusCode)
	}
	// A page on a rebound DNS name reaches it from loopback under its own
	// name: refused, with a page saying what to do.
	req, _ = http.NewRequest("GET", st.URL+"/recordings", nil)
	req.Host = "evil.example"
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(b), "--allowed-hosts") || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("rebound Host without a token: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// No login is needed, so the form sends you home.
	c := &http.Client{CheckRedirect: noRedirect}
	if resp, err := c.Get(st.URL + "/login"); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Errorf("login without a token: %v %v", resp, err)
	}
}

func TestHeadersAndAssets(t *testing.T) {
	st := newSite(t, fill(t, now), "", now)
	resp, err := http.Get(st.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if resp.Header.Get("Referrer-Policy") != "no-referrer" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("headers: %v", resp.Header)
	}
	// The pages name each asset by its content's hash: kept a year.
	_, doc, _ := fetch(t, nil, st.URL+"/")
	var assets []string
	for _, n := range find(doc, func(n *html.Node) bool { return n.Data == "link" || n.Data == "script" }) {
		for _, k := range []string{"href", "src"} {
			if v, ok := attr(n, k); ok {
				assets = append(assets, v)
			}
		}
	}
	if len(assets) != 3 {
		t.Fatalf("the page links %d assets (%v), want app.css, icon.svg and app.js", len(assets), assets)
	}
	get := func(u string, header map[string]string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", st.URL+u, nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	for _, u := range assets {
		m := regexp.MustCompile(`^/static/(\w+)\.([0-9a-f]{16})\.(\w+)$`).FindStringSubmatch(u)
		if m == nil {
			t.Errorf("asset URL %s carries no content hash", u)
			continue
		}
		resp, body := get(u, nil)
		sum := sha256.Sum256(body)
		if resp.StatusCode != 200 || m[2] != hex.EncodeToString(sum[:8]) {
			t.Errorf("%s: %d, content hash %x", u, resp.StatusCode, sum[:8])
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
			t.Errorf("%s: Cache-Control %q, want a year, immutable", u, cc)
		}
		etag := resp.Header.Get("ETag")
		if resp, _ := get(u, map[string]string{"If-None-Match": etag}); etag == "" || resp.StatusCode != 304 {
			t.Errorf("%s revalidation with %q: %d", u, etag, resp.StatusCode)
		}
		// Its plain name, or another build's hash: this build's content,
		// asked again each time.
		for _, other := range []string{"/static/" + m[1] + "." + m[3], "/static/" + m[1] + ".0123456789abcdef." + m[3], "/static/" + m[1] + ".x." + m[3]} {
			resp, b := get(other, nil)
			if cc := resp.Header.Get("Cache-Control"); resp.StatusCode != 200 || cc != "no-cache" || !bytes.Equal(b, body) {
				t.Errorf("%s: %d, Cache-Control %q, want this build's content under no-cache", other, resp.StatusCode, cc)
			}
		}
	}
	for _, u := range []string{"/static/nope.js", "/static/nope.0123456789abcdef.js", "/static/"} {
		// (The one 404 page of the dashboard, not Go's plain text.)
		if resp, _ := get(u, nil); resp.StatusCode != 404 || strings.Contains(resp.Header.Get("Cache-Control"), "max-age") ||
			(u != "/static/" && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html")) { // (no route has /static/: api.Front's)
			t.Errorf("unknown asset %s: %d, Cache-Control %q, Content-Type %q", u, resp.StatusCode, resp.Header.Get("Cache-Control"), resp.Header.Get("Content-Type"))
		}
	}
}

func TestStoreDown(t *testing.T) {
	s := fill(t, now)
	st := newSite(t, s, "", now)
	s.Close()
	for _, p := range []string{"/", "/recordings", "/recordings/rec-done", "/quarantine"} {
		code, _, body := fetch(t, nil, st.URL+p)
		if code != 503 || !strings.Contains(body, "could not answer") || strings.Contains(body, "sql") {
			t.Errorf("%s with the store closed: %d\n%s", p, code, body)
		}
	}
}

// Every time a page shows follows display's rule with its zone: the server
// writes UTC ("2026-11-27 09:30:00 +00:00") inside <time datetime=...
// data-local> for the page's script to show in the browser's zone; no
// time is written without its offset.
func TestTimesFollowTheRule(t *testing.T) {
	st := newSite(t, fill(t, now), "", now)
	wall := regexp.MustCompile(`\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d)?( [+-]\d\d:\d\d)?`)
	for _, p := range []string{"/", "/recordings", "/recordings/rec-stuck", "/recordings/rec-done", "/files", "/quarantine", "/destinations", "/destinations/dst_test"} {
		code, doc, _ := fetch(t, nil, st.URL+p)
		if code != 200 {
			t.Fatalf("%s: %d", p, code)
		}
		times := find(doc, func(n *html.Node) bool { _, ok := attr(n, "data-local"); return ok })
		if len(times) == 0 {
			t.Errorf("%s: no time marked for the browser's zone", p)
		}
		for _, n := range times {
			dt, _ := attr(n, "datetime")
			at, err := time.Parse(time.RFC3339Nano, dt)
			if err != nil {
				t.Errorf("%s: datetime %q: %v", p, dt, err)
				continue
			}
			if want := display.Time(at.UnixMilli(), time.UTC); n.Data != "time" || text(n) != want {
				t.Errorf("%s: <%s datetime=%q> shows %q, want %q", p, n.Data, dt, text(n), want)
			}
		}
		// Any wall-clock time in the page's text, in an element or not,
		// carries its offset.
		for _, m := range wall.FindAllStringSubmatch(text(find(doc, tag("body"))[0]), -1) {
			if m[2] == "" {
				t.Errorf("%s: %q is shown without its zone", p, m[0])
			}
		}
		for _, n := range find(doc, func(n *html.Node) bool { return n.Data == "title" || n.Data == "desc" }) {
			for _, m := range wall.FindAllStringSubmatch(text(n), -1) {
				if m[2] == "" {
					t.Errorf("%s: <%s> has %q without its zone", p, n.Data, m[0])
				}
			}
		}
	}
}

package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/api"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/ledger/ledgertest"
	"github.com/recledger/recledger/internal/sqlitestore"
	"github.com/recledger/recledger/internal/storetest"
	"github.com/recledger/recledger/rc"
)

// fill stores three recordings: a complete one with two files, one still
// recording in another room, and a failed one.
func fill(t *testing.T) *sqlitestore.Store {
	t.Helper()
	s, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "r.db"), sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	cbs := ledgertest.Recording(t, "rec-done", 2, false)
	cbs = append(cbs, ledgertest.Callback(t, "rec-live", rc.TypeStart, time.Hour, "", 200),
		ledgertest.Callback(t, "rec-failed", rc.TypeStart, 2*time.Hour, "", 500))
	for i, cb := range cbs {
		if _, err := s.Append(context.Background(), ledger.Incoming{Callback: cb, ReceivedAt: time.UnixMilli(1_700_000_000_000 + int64(i))}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func server(t *testing.T, s api.Store, token string) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	api.New(s, api.Options{Token: token}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url, token string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q", url, ct)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s: %v: %s", url, err, b)
		}
	}
	return resp.StatusCode
}

type apiError struct {
	Error struct{ Code, Message string }
}

func TestRecordingsListAndDetail(t *testing.T) {
	srv := server(t, fill(t), "")
	var list api.RecordingList
	if code := get(t, srv.URL+"/v1/recordings", "", &list); code != 200 {
		t.Fatalf("list: %d", code)
	}
	var got []string
	for _, r := range list.Items {
		got = append(got, r.RecordID+":"+string(r.Status))
	}
	if want := "rec-failed:failed rec-live:recording rec-done:complete"; strings.Join(got, " ") != want {
		t.Errorf("list = %v, want %s", got, want)
	}
	if list.NextCursor != "" {
		t.Errorf("nextCursor on the only page: %q", list.NextCursor)
	}
	if code := get(t, srv.URL+"/v1/recordings?status=failed", "", &list); code != 200 || len(list.Items) != 1 || list.Items[0].RecordID != "rec-failed" {
		t.Errorf("status filter: %d %+v", code, list)
	}
	if code := get(t, srv.URL+"/v1/recordings?uploadState=complete", "", &list); code != 200 || len(list.Items) != 1 || list.Items[0].RecordID != "rec-done" {
		t.Errorf("uploadState filter: %d %+v", code, list)
	}
	var page1, page2 api.RecordingList
	get(t, srv.URL+"/v1/recordings?limit=2", "", &page1)
	get(t, srv.URL+"/v1/recordings?limit=2&cursor="+page1.NextCursor, "", &page2)
	if len(page1.Items) != 2 || page1.NextCursor == "" || len(page2.Items) != 1 || page2.Items[0].RecordID != "rec-done" {
		t.Errorf("pages: %+v then %+v", page1, page2)
	}

	var rec ledger.Recording
	if code := get(t, srv.URL+"/v1/recordings/rec-done", "", &rec); code != 200 {
		t.Fatalf("detail: %d", code)
	}
	if rec.FileCount != 2 || len(rec.Files) != 2 || rec.Files[0].FileURL == nil || len(rec.Events) != 6 || rec.UploadState != ledger.UploadComplete {
		t.Errorf("detail: %+v", rec)
	}
	if len(rec.Events) > 0 && !json.Valid(rec.Events[0].Body) {
		t.Errorf("event body is not the JSON received: %s", rec.Events[0].Body)
	}
}

func TestFileAndEvents(t *testing.T) {
	srv := server(t, fill(t), "")
	var f ledger.File
	name := "sess_room_u1_rec-done_2.mp4"
	if code := get(t, srv.URL+"/v1/files/"+name, "", &f); code != 200 || f.RecordID != "rec-done" || f.Kind != ledger.KindFinal ||
		f.FileURL == nil || *f.FileURL != "http://oss/"+name {
		t.Errorf("file: %d %+v", code, f)
	}
	var e apiError
	if code := get(t, srv.URL+"/v1/files/nope.mp4", "", &e); code != 404 || e.Error.Code != "not_found" {
		t.Errorf("unknown file: %d %+v", code, e)
	}
	var evs api.EventList
	if code := get(t, srv.URL+"/v1/events?after=2&limit=3", "", &evs); code != 200 || len(evs.Items) != 3 || evs.Items[0].Seq != 3 || evs.Last != 5 {
		t.Errorf("events: %d %+v", code, evs)
	}
	if code := get(t, srv.URL+"/v1/events?tail=2", "", &evs); code != 200 || len(evs.Items) != 2 || evs.Items[0].Seq != 7 || evs.Last != 8 {
		t.Errorf("tail: %d %+v", code, evs)
	}
	if code := get(t, srv.URL+"/v1/events?tail=0", "", &evs); code != 200 || len(evs.Items) != 0 || evs.Last != 8 {
		t.Errorf("tail=0 (where the log ends): %d %+v", code, evs)
	}
	get(t, srv.URL+"/v1/events?after=100", "", &evs)
	if len(evs.Items) != 0 || evs.Last != 100 {
		t.Errorf("events past the end: %+v", evs)
	}
}

func TestErrorsNameTheParameter(t *testing.T) {
	srv := server(t, fill(t), "")
	for _, tt := range []struct{ query, param string }{
		{"/v1/recordings?limit=0", "limit"},
		{"/v1/recordings?limit=501", "limit"},
		{"/v1/recordings?status=done", "status"},
		{"/v1/recordings?mode=9", "mode"},
		{"/v1/recordings?uploadState=stuck", "uploadState"},
		{"/v1/recordings?since=yesterday", "since"},
		{"/v1/recordings?cursor=xyz", "cursor"},
		{"/v1/events?after=-1", "after"},
		{"/v1/quarantine?limit=x", "limit"},
	} {
		var e apiError
		if code := get(t, srv.URL+tt.query, "", &e); code != 400 || e.Error.Code != "bad_parameter" || !strings.Contains(e.Error.Message, tt.param) {
			t.Errorf("%s: %d %+v, want 400 naming %s", tt.query, code, e, tt.param)
		}
	}
	var e apiError
	if code := get(t, srv.URL+"/v1/recordings/unknown", "", &e); code != 404 {
		t.Errorf("unknown recording: %d %+v", code, e)
	}
}

func TestAuth(t *testing.T) {
	s := fill(t)
	srv := server(t, s, "s3cret")
	for _, path := range []string{"/v1/recordings", "/v1/recordings/rec-done", "/v1/events", "/v1/quarantine", "/readyz"} {
		var e apiError
		if code := get(t, srv.URL+path, "", &e); code != 401 || e.Error.Code != "unauthorized" {
			t.Errorf("%s without a token: %d", path, code)
		}
		if code := get(t, srv.URL+path, "wrong", nil); code != 401 {
			t.Errorf("%s with a wrong token: %d", path, code)
		}
		if code := get(t, srv.URL+path, "s3cret", nil); code != 200 {
			t.Errorf("%s with the token: %d", path, code)
		}
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Authorization", "bearer s3cret") // the scheme is case-insensitive
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
			t.Errorf("%s with a lower-case scheme: %v %v", path, resp.StatusCode, err)
		} else {
			resp.Body.Close()
		}
	}
	if code := get(t, srv.URL+"/healthz", "", nil); code != 200 {
		t.Errorf("/healthz must stay open: %d", code)
	}
	withMetrics := http.NewServeMux()
	api.New(s, api.Options{Token: "s3cret", Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "up 1\n")
	})}).Register(withMetrics)
	for token, want := range map[string]int{"": 401, "s3cret": 200} {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.RemoteAddr = "127.0.0.1:1"
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		withMetrics.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("/metrics with token %q: %d, want %d", token, rec.Code, want)
		}
	}

	// Without a token: loopback clients only.
	mux := http.NewServeMux()
	api.New(s, api.Options{}).Register(mux)
	for _, h := range []string{"X-Forwarded-For", "Forwarded", "X-Real-IP"} {
		req := httptest.NewRequest(http.MethodGet, "/v1/recordings", nil)
		req.RemoteAddr = "127.0.0.1:5000" // a reverse proxy on the same host
		req.Host = "127.0.0.1:8080"
		req.Header.Set(h, "203.0.113.9")
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != 403 {
			t.Errorf("no token, proxied (%s) from loopback: %d, want 403", h, rec.Code)
		}
	}
	for remote, want := range map[string]int{"127.0.0.1:5000": 200, "[::1]:5000": 200, "[::ffff:127.0.0.1]:5000": 200, "192.0.2.7:5000": 403, "garbage": 403} {
		req := httptest.NewRequest(http.MethodGet, "/v1/recordings", nil)
		req.RemoteAddr = remote
		req.Host = "localhost:8080"
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("no token, client %s: %d, want %d", remote, rec.Code, want)
		}
	}
}

func TestQuarantinePages(t *testing.T) {
	s := fill(t)
	for i := range 3 {
		if err := s.Quarantine(context.Background(), ledger.Rejection{At: int64(i), Status: 401, Reason: "bad_signature",
			Message: fmt.Sprint("r", i), Header: http.Header{}, Body: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	srv := server(t, s, "")
	var p1, p2 api.QuarantineList
	get(t, srv.URL+"/v1/quarantine?limit=2", "", &p1)
	get(t, srv.URL+"/v1/quarantine?limit=2&cursor="+p1.NextCursor, "", &p2)
	if len(p1.Items) != 2 || p1.Items[0].Message != "r2" || p1.NextCursor == "" || len(p2.Items) != 1 || p2.Items[0].Message != "r0" || p2.NextCursor != "" {
		t.Errorf("quarantine pages: %+v then %+v", p1, p2)
	}
}

// downStore fails every read, as a store whose disk went away.
type downStore struct{ api.Store }

func (downStore) ListRecordings(context.Context, ledger.RecordingFilter) (ledger.RecordingPage, error) {
	return ledger.RecordingPage{}, fmt.Errorf("list: disk I/O error at /secret/path")
}
func (downStore) Ping(context.Context) error { return fmt.Errorf("database is locked") }

func TestStoreFailuresAnswer503WithoutDetail(t *testing.T) {
	srv := server(t, downStore{fill(t)}, "")
	var e apiError
	if code := get(t, srv.URL+"/v1/recordings", "", &e); code != 503 || strings.Contains(e.Error.Message, "/secret") {
		t.Errorf("store failure: %d %+v", code, e)
	}
	if code := get(t, srv.URL+"/readyz", "", nil); code != 503 {
		t.Errorf("/readyz with an unwritable store: %d, want 503", code)
	}
}

// TestInternalReadyzHidesCause: the token-less listener of --metrics-addr
// (RegisterInternal) answers a failing /readyz 503 without the store's
// error, which can name database hosts, users and files; the guarded main
// /readyz still gives it to the operator.
func TestInternalReadyzHidesCause(t *testing.T) {
	a := api.New(secretPing{fill(t)}, api.Options{Token: "tok"})
	internal := http.NewServeMux()
	a.RegisterInternal(internal)
	isrv := httptest.NewServer(internal)
	defer isrv.Close()
	var body map[string]string
	if code := get(t, isrv.URL+"/readyz", "", &body); code != 503 || body["status"] == "" {
		t.Errorf("internal /readyz with an unwritable store: %d %v, want 503 and a status", code, body)
	}
	if _, ok := body["cause"]; ok {
		t.Errorf("internal /readyz shows the store's error without a token: %v", body)
	}
	main := http.NewServeMux()
	a.Register(main)
	msrv := httptest.NewServer(main)
	defer msrv.Close()
	body = nil
	if code := get(t, msrv.URL+"/readyz", "tok", &body); code != 503 || !strings.Contains(body["cause"], "db.internal") {
		t.Errorf("guarded /readyz: %d %v, want 503 with the cause", code, body)
	}
}

// secretPing fails Ping as a PostgreSQL store that cannot connect does.
type secretPing struct{ api.Store }

func (secretPing) Ping(context.Context) error {
	return fmt.Errorf("failed to connect to `user=recledger database=prod host=db.internal`: dial error")
}

// TestEventStream reads the stream live, sees a heartbeat, a new callback
// arrive, and resumes from Last-Event-ID without gaps or repeats.
func TestEventStream(t *testing.T) {
	s := fill(t)
	mux := http.NewServeMux()
	api.New(s, api.Options{StreamPoll: 10 * time.Millisecond, StreamHeartbeat: 50 * time.Millisecond}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	open := func(lastID string) (*bufio.Reader, func()) {
		// from=0: the whole log; on a reconnect Last-Event-ID wins over it.
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/events/stream?from=0", nil)
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
			t.Fatalf("stream: %d %s", resp.StatusCode, ct)
		}
		return bufio.NewReader(resp.Body), func() { resp.Body.Close() }
	}
	// next returns the next event's id, noting heartbeats on the way.
	heartbeats := 0
	next := func(r *bufio.Reader) (id string, data string) {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("stream ended: %v", err)
			}
			switch {
			case strings.HasPrefix(line, ": heartbeat"):
				heartbeats++
			case strings.HasPrefix(line, "id: "):
				id = strings.TrimSpace(strings.TrimPrefix(line, "id: "))
			case strings.HasPrefix(line, "data: "):
				data = strings.TrimPrefix(line, "data: ")
			case line == "\n" && data != "":
				return id, data
			case line == "\n": // a block without data (the opening one) is no event
				id = ""
			}
		}
	}
	r, closeStream := open("")
	for want := 1; want <= 8; want++ { // the eight callbacks fill stored
		if id, data := next(r); id != fmt.Sprint(want) || !strings.Contains(data, `"seq":`+id) {
			t.Fatalf("event %d: id %s data %s", want, id, data)
		}
	}
	time.Sleep(120 * time.Millisecond) // idle long enough for a heartbeat
	if _, err := s.Append(ctx, ledger.Incoming{Callback: ledgertest.Callback(t, "rec-new", rc.TypeStart, 3*time.Hour, "", 200), ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if id, data := next(r); id != "9" || !strings.Contains(data, "rec-new") {
		t.Fatalf("live event: id %s data %s", id, data)
	}
	if heartbeats == 0 {
		t.Error("no heartbeat while idle")
	}
	closeStream()
	r, closeStream = open("7")
	defer closeStream()
	if id, _ := next(r); id != "8" {
		t.Errorf("resumed after Last-Event-ID 7 with %s, want 8", id)
	}
}

func TestDetailShapeAndBodiesAsReceived(t *testing.T) {
	s, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "r.db"), sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	body := `{"timestamp":1530027865231,"type":1,"appKey":"app","recordId":"only-start","roomId":"r","sessionId":"s","userId":"u","mode":0,"code":200,"extra":"a&b<c>"}`
	cb, err := rc.Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(context.Background(), ledger.Incoming{Callback: cb, ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	srv := server(t, s, "")
	resp, err := http.Get(srv.URL + "/v1/recordings/only-start")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(raw), `"files":[]`) {
		t.Errorf("the detail view of a recording without files lacks \"files\":[]: %s", raw)
	}
	if !strings.Contains(string(raw), `"extra":"a&b<c>"`) || strings.Contains(string(raw), `\u0026`) {
		t.Errorf("the answer escapes & < > (bodies must read as received): %s", raw)
	}
}

// fillFilters stores recordings that each differ from "base" in exactly
// one of the list's filters, so that a filter the API (or the store)
// ignored lets its odd one out through.
func fillFilters(t *testing.T, s ledger.Store) {
	t.Helper()
	type fields struct {
		app, room, session, user string
		mode, code               int
		at                       int64
	}
	base := fields{"app", "r1", "s1", "u1", 0, 200, filterT0}
	variants := map[string]func(*fields){
		"base":    func(*fields) {},
		"room":    func(f *fields) { f.room = "r2" },
		"session": func(f *fields) { f.session = "s2" },
		"user":    func(f *fields) { f.user = "u2" },
		"app":     func(f *fields) { f.app = "app2" },
		"mode":    func(f *fields) { f.mode = 3 },
		"status":  func(f *fields) { f.code = 500 },          // a failed start: status failed, uploads none
		"early":   func(f *fields) { f.at -= 10 * 3600_000 }, // started ten hours before the others
		"late":    func(f *fields) { f.at += 10 * 3600_000 },
		"upload":  func(*fields) {}, // a segment too: uploads pending, status still recording
	}
	i := 0
	for id, edit := range variants {
		f := base
		edit(&f)
		bodies := []string{fmt.Sprintf(`{"timestamp":%d,"type":1,"appKey":%q,"recordId":%q,"roomId":%q,"sessionId":%q,"userId":%q,"mode":%d,"code":%d,"config":{"slicesMin":30}}`,
			f.at, f.app, id, f.room, f.session, f.user, f.mode, f.code)}
		if id == "upload" {
			bodies = append(bodies, fmt.Sprintf(`{"timestamp":%d,"type":2,"appKey":%q,"recordId":%q,"roomId":%q,"sessionId":%q,"userId":%q,"mode":%d,"code":200,"output":{"fileName":"a.mp4","fileSize":10}}`,
				f.at+1000, f.app, id, f.room, f.session, f.user, f.mode))
		}
		for _, b := range bodies {
			cb, err := rc.Parse([]byte(b))
			if err != nil {
				t.Fatal(err)
			}
			i++
			if _, err := s.Append(context.Background(), ledger.Incoming{Callback: cb, ReceivedAt: time.UnixMilli(1_700_000_000_000 + int64(i))}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// onBothStores runs test on a fresh SQLite store and, where
// RECLEDGER_TEST_POSTGRES_URL names a database, on PostgreSQL in a schema
// of its own.
func onBothStores(t *testing.T, test func(t *testing.T, s ledger.Store)) {
	storetest.Each(t, func(t *testing.T, _ string, s ledger.Store) { test(t, s) })
}

const filterT0 = int64(1_700_000_000_000)

// TestRecordingFilters asks for each filter's value in "base" (every
// recording but the one that differs in that filter must come back) and
// for the odd one's value (only it).
func TestRecordingFilters(t *testing.T) {
	onBothStores(t, testRecordingFilters)
}

func testRecordingFilters(t *testing.T, s ledger.Store) {
	fillFilters(t, s)
	srv := server(t, s, "")
	all := []string{"app", "base", "early", "late", "mode", "room", "session", "status", "upload", "user"}
	except := func(odd ...string) []string {
		var out []string
		for _, id := range all {
			if !slices.Contains(odd, id) {
				out = append(out, id)
			}
		}
		return out
	}
	for _, tt := range []struct {
		query string
		want  []string
	}{
		{"", all},
		{"roomId=r1", except("room")},
		{"roomId=r2", []string{"room"}},
		{"sessionId=s1", except("session")},
		{"sessionId=s2", []string{"session"}},
		{"userId=u1", except("user")},
		{"userId=u2", []string{"user"}},
		{"appKey=app", except("app")},
		{"appKey=app2", []string{"app"}},
		{"mode=0", except("mode")},
		{"mode=3", []string{"mode"}},
		{"status=recording", except("status")},
		{"status=failed", []string{"status"}},
		{"uploadState=none", except("upload")},
		{"uploadState=pending", []string{"upload"}},
		{fmt.Sprintf("since=%d", filterT0-3600_000), except("early")},
		{fmt.Sprintf("since=%d", filterT0+3600_000), []string{"late"}},
		{fmt.Sprintf("until=%d", filterT0+3600_000), except("late")},
		{fmt.Sprintf("until=%d", filterT0-3600_000), []string{"early"}},
		{fmt.Sprintf("since=%d&until=%d", filterT0, filterT0), except("early", "late")},
		{"roomId=r1&userId=u2", []string{"user"}},
		{"roomId=r2&userId=u2", nil},
	} {
		var list api.RecordingList
		if code := get(t, srv.URL+"/v1/recordings?limit=500&"+tt.query, "", &list); code != 200 {
			t.Errorf("%s: answered %d", tt.query, code)
			continue
		}
		var got []string
		for _, r := range list.Items {
			got = append(got, r.RecordID)
		}
		slices.Sort(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("?%s gives %v, want %v", tt.query, got, tt.want)
		}
	}
}

// firstStreamedID opens the event stream with the query and header given
// and returns the id of the first event it sends.
func firstStreamedID(t *testing.T, url, lastEventID string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%s: answered %d", url, resp.StatusCode)
	}
	r := bufio.NewReader(resp.Body)
	block := "" // an event is a block with data (the opening block has an id only)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("%s: the stream ended before an event: %v", url, err)
		}
		if id, ok := strings.CutPrefix(line, "id: "); ok {
			block = strings.TrimSpace(id)
		}
		if strings.HasPrefix(line, "data: ") {
			return block
		}
		if line == "\n" {
			block = ""
		}
	}
}

// TestEventStreamStartsAfter checks the stream starts at the event after
// ?after= and after Last-Event-ID, which the CLI's events tail and the
// dashboard rely on to resume without repeats.
func TestEventStreamStartsAfter(t *testing.T) {
	srv := server(t, fill(t), "") // eight events
	for _, tt := range []struct {
		query, lastEventID, want string
	}{
		{"?from=0", "", "1"},
		{"?from=1", "", "1"},
		{"?from=8", "", "8"},
		{"?after=0", "", "1"},
		{"?after=5", "", "6"},
		{"?after=7", "", "8"},
		{"", "3", "4"},
		{"", "6", "7"},
	} {
		if got := firstStreamedID(t, srv.URL+"/v1/events/stream"+tt.query, tt.lastEventID); got != tt.want {
			t.Errorf("stream%s with Last-Event-ID %q starts at %s, want %s", tt.query, tt.lastEventID, got, tt.want)
		}
	}
}

package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/access"
	"github.com/recledger/recledger/internal/api"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/ledger/ledgertest"
	"github.com/recledger/recledger/internal/pgstore"
	"github.com/recledger/recledger/internal/sqlitestore"
	"github.com/recledger/recledger/internal/storetest"
	"github.com/recledger/recledger/rc"
)

// backend opens an empty store of one kind for a test.
type backend struct {
	name string
	open func(t *testing.T) ledger.Store
}

// backends are SQLite always and PostgreSQL when RECLEDGER_TEST_POSTGRES_URL
// is set (each test in its own schema, dropped afterwards).
func backends() []backend {
	return []backend{
		{"sqlite", func(t *testing.T) ledger.Store { return storetest.SQLite(t, sqlitestore.Options{}) }},
		{"postgres", func(t *testing.T) ledger.Store { return storetest.Postgres(t, pgstore.Options{}) }},
	}
}

// bigStore stores n callbacks whose extra field holds size bytes each, in
// SQLite.
func bigStore(t *testing.T, n, size int) ledger.Store {
	t.Helper()
	return fillBig(t, backends()[0].open(t), n, size)
}

// fillBig appends n callbacks whose extra field holds size bytes each.
func fillBig(t *testing.T, s ledger.Store, n, size int) ledger.Store {
	t.Helper()
	extra := strings.Repeat("x", size)
	for i := range n {
		body := fmt.Sprintf(`{"timestamp":%d,"type":2,"appKey":"app","recordId":"big-%d","roomId":"r","sessionId":"s","userId":"u","mode":0,"code":200,"extra":%q,"output":{"fileName":"f%d.mp4","fileSize":1}}`,
			1_700_000_000_000+i, i, extra, i)
		cb, err := rc.Parse([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(context.Background(), ledger.Incoming{Callback: cb, ReceivedAt: time.UnixMilli(1_700_000_000_000 + int64(i))}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// streamServer serves the API over s on 127.0.0.1 with ConnContext set, as
// recledger serve does.
func streamServer(t *testing.T, s api.Store, o api.Options) (*api.API, *httptest.Server) {
	t.Helper()
	a := api.New(s, o)
	mux := http.NewServeMux()
	a.Register(mux)
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ConnContext = api.ConnContext
	srv.Start()
	t.Cleanup(srv.Close)
	return a, srv
}

// openStream asks for the stream and returns the answer, its body unread.
func openStream(t *testing.T, ctx context.Context, url string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// eventIDs reads n events from a stream and returns their ids.
func eventIDs(t *testing.T, r *bufio.Reader, n int) []int64 {
	t.Helper()
	var (
		ids   []int64
		block int64 = -1 // the id of the block being read; an event is a block with data
	)
	for len(ids) < n {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended after %d events: %v", len(ids), err)
		}
		if v, ok := strings.CutPrefix(line, "id: "); ok {
			id, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Fatalf("id line %q", line)
			}
			block = id
		}
		if strings.HasPrefix(line, "data: ") {
			ids = append(ids, block)
		}
		if line == "\n" {
			block = -1
		}
	}
	return ids
}

// eventually waits (bounded) for cond; it reports what it saw if it never holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("still not %s after 10 s", what)
		}
	}
}

// TestStreamCap: with MaxStreams open, one more stream is refused with 503,
// Retry-After and the API's error body; once one closes, a stream is
// served again.
func TestStreamCap(t *testing.T) {
	a, srv := streamServer(t, fill(t), api.Options{MaxStreams: 2, StreamPoll: 10 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	first, firstCancel := context.WithCancel(ctx)
	defer firstCancel()
	for i, c := range []context.Context{first, ctx} {
		if resp := openStream(t, c, srv.URL+"/v1/events/stream"); resp.StatusCode != 200 {
			t.Fatalf("stream %d of 2: %d", i+1, resp.StatusCode)
		}
	}
	if n := a.OpenStreams(); n != 2 {
		t.Fatalf("OpenStreams = %d with two open", n)
	}
	resp := openStream(t, ctx, srv.URL+"/v1/events/stream")
	if resp.StatusCode != 503 {
		t.Fatalf("a stream beyond the cap: %d, want 503", resp.StatusCode)
	}
	var e apiError
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != 503 || e.Error.Code != "too_many_streams" ||
		resp.Header.Get("Retry-After") == "" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("third stream: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if a.StreamsRefused() != 1 {
		t.Errorf("StreamsRefused = %d, want 1", a.StreamsRefused())
	}
	firstCancel()
	eventually(t, "down to one open stream", func() bool { return a.OpenStreams() == 1 })
	if resp := openStream(t, ctx, srv.URL+"/v1/events/stream"); resp.StatusCode != 200 {
		t.Fatalf("a stream after one closed: %d", resp.StatusCode)
	}
}

// TestStreamDropsSlowReader: a client that asks for a backlog and never
// reads is dropped once a write cannot complete within the write timeout;
// the handler ends and the server closes the connection.
func TestStreamDropsSlowReader(t *testing.T) {
	s := bigStore(t, 64, 16<<10) // about 1 MiB: more than the socket buffers hold
	a, srv := streamServer(t, s, api.Options{StreamWriteTimeout: 100 * time.Millisecond, StreamSocketBuffer: 4096})
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(c, "GET /v1/events/stream?from=0 HTTP/1.1\r\nHost: %s\r\n\r\n", srv.Listener.Addr())
	eventually(t, "dropped", func() bool { return a.StreamsDropped() == 1 && a.OpenStreams() == 0 })
	// The server closed its end: what it had sent, then EOF.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, c)
	if err != nil {
		t.Errorf("after the drop: %v after %d bytes, want EOF", err, n)
	}
	if n >= 64*16<<10 {
		t.Errorf("read %d bytes, the whole log: the stream was not cut", n)
	}
}

// TestStreamHonoursAfter: ?after=N and Last-Event-ID start the stream past
// seq N; no event at or before it is sent.
func TestStreamHonoursAfter(t *testing.T) {
	_, srv := streamServer(t, fill(t), api.Options{StreamPoll: 10 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, tt := range []struct {
		name, query, lastID string
		want                []int64
	}{
		{"after", "?after=5", "", []int64{6, 7, 8}},
		{"after 0", "?after=0", "", []int64{1, 2, 3, 4, 5, 6, 7, 8}},
		{"Last-Event-ID wins", "?after=1", "6", []int64{7, 8}},
		{"from 0", "?from=0", "", []int64{1, 2, 3, 4, 5, 6, 7, 8}},
		{"from", "?from=6", "", []int64{6, 7, 8}},
		{"Last-Event-ID wins over from", "?from=0", "6", []int64{7, 8}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/events/stream"+tt.query, nil)
			if tt.lastID != "" {
				req.Header.Set("Last-Event-ID", tt.lastID)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got := eventIDs(t, bufio.NewReader(resp.Body), len(tt.want))
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("ids %v, want %v", got, tt.want)
			}
		})
	}
}

// TestStreamStartsAtTheEnd: without a position the stream starts at the
// end of the log (a new reader wants what happens next), tells the client
// its reconnection delay, and sends the next event logged.
func TestStreamStartsAtTheEnd(t *testing.T) {
	s := fill(t) // eight events
	_, srv := streamServer(t, s, api.Options{StreamPoll: 10 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp := openStream(t, ctx, srv.URL+"/v1/events/stream")
	r := bufio.NewReader(resp.Body)
	var preamble []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\n" {
			break
		}
		preamble = append(preamble, line)
	}
	if !slices.Contains(preamble, "retry: 5000\n") {
		t.Errorf("no retry field before the events: %q", preamble)
	}
	// The opening block's id is where a client dropped before its first
	// event resumes (EventSource sends it as Last-Event-ID): what arrived
	// while it was away is not lost to "start at the end".
	if !slices.Contains(preamble, "id: 8\n") {
		t.Errorf("the opening block has no id at the log's end (8): %q", preamble)
	}
	resp.Body.Close()
	if _, err := s.Append(ctx, ledger.Incoming{Callback: ledgertest.Callback(t, "rec-new", rc.TypeStart, 3*time.Hour, "", 200), ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/events/stream", nil)
	req.Header.Set("Last-Event-ID", "8")
	again, err := http.DefaultClient.Do(req)
	if err != nil || again.StatusCode != 200 {
		t.Fatalf("reconnect: %v %v", again, err)
	}
	defer again.Body.Close()
	if got := eventIDs(t, bufio.NewReader(again.Body), 1); fmt.Sprint(got) != "[9]" {
		t.Errorf("first event after reconnecting %v, want [9]: the one that came while away", got)
	}
	// A new reader (no position) starts at the new end: 9.
	fresh := openStream(t, ctx, srv.URL+"/v1/events/stream")
	fr := bufio.NewReader(fresh.Body)
	if _, err := s.Append(ctx, ledger.Incoming{Callback: ledgertest.Callback(t, "rec-newer", rc.TypeStart, 3*time.Hour, "", 200), ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if got := eventIDs(t, fr, 1); fmt.Sprint(got) != "[10]" {
		t.Errorf("first event of a new reader %v, want [10]: the new one, not a replay", got)
	}
}

// TestStreamReplaysAcrossPages: a backlog of many pages (each bounded in
// bytes) arrives complete, in order, each event once.
func TestStreamReplaysAcrossPages(t *testing.T) {
	_, srv := streamServer(t, bigStore(t, 40, 16<<10), api.Options{StreamPoll: 10 * time.Millisecond, StreamReaders: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp := openStream(t, ctx, srv.URL+"/v1/events/stream?from=0")
	got := eventIDs(t, bufio.NewReader(resp.Body), 40)
	for i, id := range got {
		if id != int64(i+1) {
			t.Fatalf("ids %v: want 1 to 40 in order", got)
		}
	}
}

// TestEventsPageByteBudget: GET /v1/events stops a page before its events
// would pass the byte budget (4 MiB), keeps at least one event however
// large, says more, and following last returns every event once.
func TestEventsPageByteBudget(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { testEventsPageByteBudget(t, fillBig(t, b.open(t), 12, 600<<10)) }) // 7 MiB in all
	}
}

func testEventsPageByteBudget(t *testing.T, s ledger.Store) {
	_, srv := streamServer(t, s, api.Options{})
	var seen []int64
	pages := 0
	for after := int64(0); ; pages++ {
		var page api.EventList
		if code := get(t, srv.URL+"/v1/events?limit=1000&after="+strconv.FormatInt(after, 10), "", &page); code != 200 {
			t.Fatalf("page after %d: %d", after, code)
		}
		bytes := 0
		for _, e := range page.Items {
			seen = append(seen, e.Seq)
			bytes += len(e.Body)
		}
		if len(page.Items) > 1 && bytes > 4<<20 {
			t.Errorf("page after %d: %d events, %d bytes of bodies: over the 4 MiB budget", after, len(page.Items), bytes)
		}
		if len(page.Items) == 0 && page.More {
			t.Fatalf("page after %d: empty but more", after)
		}
		if !page.More {
			if len(page.Items) > 0 && page.Items[len(page.Items)-1].Seq != 12 {
				t.Errorf("page after %d ends at %d without more", after, page.Last)
			}
			break
		}
		if pages > 12 {
			t.Fatal("more than 12 pages for 12 events")
		}
		after = page.Last
	}
	if pages < 1 {
		t.Errorf("7 MiB of events in one page")
	}
	for i, seq := range seen {
		if seq != int64(i+1) || len(seen) != 12 {
			t.Fatalf("seqs %v: want 1 to 12, each once", seen)
		}
	}
}

// TestEventsPageHoldsOneHugeEvent: an event larger than the budget is
// answered alone, never skipped.
func TestEventsPageHoldsOneHugeEvent(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			_, srv := streamServer(t, fillBig(t, b.open(t), 2, 5<<20), api.Options{})
			var page api.EventList
			if code := get(t, srv.URL+"/v1/events?limit=10", "", &page); code != 200 || len(page.Items) != 1 || !page.More || page.Last != 1 {
				t.Fatalf("first page: %d, %d events, more %v, last %d", code, len(page.Items), page.More, page.Last)
			}
			if code := get(t, srv.URL+"/v1/events?limit=10&after=1", "", &page); code != 200 || len(page.Items) != 1 || page.More || page.Last != 2 {
				t.Fatalf("second page: %d, %d events, more %v, last %d", code, len(page.Items), page.More, page.Last)
			}
		})
	}
}

// TestStreamRefusesHostilePositions: a position that is not a seq is a
// 400 naming the parameter, before any stream is opened.
func TestStreamRefusesHostilePositions(t *testing.T) {
	a, srv := streamServer(t, fill(t), api.Options{})
	for _, tt := range []struct{ query, lastID, param string }{
		{"?after=-1", "", "after"},
		{"?after=1%00", "", "after"},
		{"?after=" + strings.Repeat("9", 4096), "", "after"},
		{"", "x", "Last-Event-ID"},
		{"", "99999999999999999999999", "Last-Event-ID"},
		{"?from=x", "", "from"},
		{"?from=1&after=1", "", "from"},
		// Positions past the newest event (seq 8): ids of another log.
		{"", "9", "Last-Event-ID: 9 is past the newest event (seq 8)"},
		{"?after=9", "", "after: 9 is past the newest event (seq 8)"},
		{"?from=10", "", "from: 10 is past the newest event (seq 8)"},
	} {
		// Bounded: a stream wrongly answered 200 would never end.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/events/stream"+tt.query, nil)
		if tt.lastID != "" {
			req.Header.Set("Last-Event-ID", tt.lastID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e apiError
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		cancel()
		if resp.StatusCode != 400 || !strings.Contains(e.Error.Message, tt.param) {
			t.Errorf("%q Last-Event-ID %q: %d %+v, want 400 naming %s", tt.query, tt.lastID, resp.StatusCode, e, tt.param)
		}
	}
	if n := a.OpenStreams(); n != 0 {
		t.Errorf("OpenStreams = %d after refusals", n)
	}
}

// TestEventsMoreByRows: a page cut by its limit in rows says more; the
// last page does not.
func TestEventsMoreByRows(t *testing.T) {
	srv := server(t, fill(t), "")
	for _, tt := range []struct {
		query string
		more  bool
		last  int64
	}{
		{"after=2&limit=3", true, 5},
		{"after=5&limit=3", false, 8},
		{"after=0&limit=8", false, 8},
		{"after=0&limit=7", true, 7},
		{"after=8", false, 8},
	} {
		var page api.EventList
		if code := get(t, srv.URL+"/v1/events?"+tt.query, "", &page); code != 200 || page.More != tt.more || page.Last != tt.last {
			t.Errorf("%s: %d more %v last %d, want more %v last %d", tt.query, code, page.More, page.Last, tt.more, tt.last)
		}
	}
}

// TestEventsTailByteBudget: ?tail=N answers the newest events within the
// byte budget too, contiguous and ending at the newest, in arrival order;
// an event over the budget is answered alone.
func TestEventsTailByteBudget(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			_, srv := streamServer(t, fillBig(t, b.open(t), 12, 600<<10), api.Options{}) // 7 MiB in all
			cases := []struct {
				tail      string
				first     int64 // the oldest seq answered; the newest is always 12
				maxBodies int
			}{
				{"3", 10, 3 * (600<<10 + 1024)},
				{"1000", 0, 4 << 20}, // as many of the newest as fit
			}
			for _, c := range cases {
				var page api.EventList
				if code := get(t, srv.URL+"/v1/events?tail="+c.tail, "", &page); code != 200 {
					t.Fatalf("tail=%s: %d", c.tail, code)
				}
				bytes := 0
				for i, e := range page.Items {
					bytes += len(e.Body)
					if want := page.Items[len(page.Items)-1].Seq - int64(len(page.Items)-1-i); e.Seq != want {
						t.Fatalf("tail=%s: seqs not contiguous: %d at %d, want %d", c.tail, e.Seq, i, want)
					}
				}
				if len(page.Items) < 2 || page.Items[len(page.Items)-1].Seq != 12 || page.Last != 12 {
					t.Fatalf("tail=%s: %d events, last %d; want the newest ones, ending at 12", c.tail, len(page.Items), page.Last)
				}
				if c.first != 0 && page.Items[0].Seq != c.first {
					t.Errorf("tail=%s: starts at %d, want %d", c.tail, page.Items[0].Seq, c.first)
				}
				if bytes > c.maxBodies {
					t.Errorf("tail=%s: %d events, %d bytes of bodies: over %d", c.tail, len(page.Items), bytes, c.maxBodies)
				}
			}
		})
	}
	t.Run("one huge event", func(t *testing.T) {
		_, srv := streamServer(t, fillBig(t, backends()[0].open(t), 2, 5<<20), api.Options{})
		var page api.EventList
		if code := get(t, srv.URL+"/v1/events?tail=10", "", &page); code != 200 || len(page.Items) != 1 || page.Last != 2 {
			t.Fatalf("tail=10 over a 5 MiB event: %d, %d events, last %d; want the newest alone", code, len(page.Items), page.Last)
		}
	})
}

// TestStreamEndsWhenItsTokenChanges: a stream let in under a token ends
// once a reload puts another in force (it would otherwise keep serving the
// old token's holder for as long as it stays open); under the same token it
// goes on.
func TestStreamEndsWhenItsTokenChanges(t *testing.T) {
	const oldToken, newToken = "old-token-0123456789abcdef", "new-token-0123456789abcdef"
	rule := access.New(oldToken, nil)
	s := fill(t)
	_, srv := streamServer(t, s, api.Options{Access: rule, StreamPoll: 10 * time.Millisecond, StreamHeartbeat: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	open := func() *bufio.Reader {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/events/stream?from=0", nil)
		req.Header.Set("Authorization", "Bearer "+oldToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("stream: %v %v", resp, err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return bufio.NewReader(resp.Body)
	}
	r := open()
	eventIDs(t, r, 8)
	rule.SetToken(oldToken) // a reload that keeps the token
	if _, err := s.Append(ctx, ledger.Incoming{Callback: ledgertest.Callback(t, "rec-same", rc.TypeStart, 3*time.Hour, "", 200), ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if got := eventIDs(t, r, 1); fmt.Sprint(got) != "[9]" {
		t.Fatalf("after a reload with the same token: %v, want [9]", got)
	}
	rule.SetToken(newToken)
	if _, err := io.Copy(io.Discard, r); err != nil { // returns at the stream's end
		t.Fatalf("the stream did not end cleanly: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the stream under the old token did not end")
	}
}

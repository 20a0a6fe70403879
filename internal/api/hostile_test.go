package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/api"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/ledger/ledgertest"
	"github.com/recledger/recledger/internal/storetest"
	"github.com/recledger/recledger/rc"
)

// hostileStore is a store of either backend holding fill's recordings.
type hostileStore interface {
	api.Store
	Append(context.Context, ledger.Incoming) (ledger.Appended, error)
}

// onBothFilledStores runs test on a filled SQLite store and, where
// RECLEDGER_TEST_POSTGRES_URL names a database, on a filled PostgreSQL
// store in a schema of its own.
func onBothFilledStores(t *testing.T, test func(t *testing.T, backend string, s api.Store)) {
	storetest.Each(t, func(t *testing.T, backend string, s ledger.Store) { test(t, backend, fillStore(t, s)) })
}

func fillStore(t *testing.T, s hostileStore) api.Store {
	t.Helper()
	cbs := ledgertest.Recording(t, "rec-done", 2, false)
	cbs = append(cbs, ledgertest.Callback(t, "rec-live", rc.TypeStart, time.Hour, "", 200))
	for i, cb := range cbs {
		if _, err := s.Append(context.Background(), ledger.Incoming{Callback: cb, ReceivedAt: time.UnixMilli(1_700_000_000_000 + int64(i))}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// hostileValues are sent, percent-encoded as given, to every filter and
// path id. The valid ones (emoji, quotes, SQL) must simply match nothing.
var hostileValues = []struct {
	name, raw string
	valid     bool // passes ledger.CheckLookup's rule
}{
	{"NUL", "a%00b", false},
	{"invalid UTF-8", "a%FFb", false},
	{"100 KB", strings.Repeat("a", 100<<10), false},
	{"C1 control", "a%C2%85b", false},
	{"emoji", "%F0%9F%98%80", true},
	{"quotes and SQL", url.PathEscape(`x' OR '1'='1"; DROP TABLE recordings; --`), true},
}

// TestHostileFiltersAndIDs sends each hostile value to every API filter
// and path id, on both backends, and checks the answer: never 5xx, the
// same status on both, 400 bad_parameter naming the parameter for a
// filter no stored value can equal, 404 for such a path id, and 200 with
// nothing found for a valid value.
func TestHostileFiltersAndIDs(t *testing.T) {
	type target struct {
		url   func(raw string) string
		param string
		kind  string // "filter": id filter; "path": path id; "strict": any of these values is refused
	}
	query := func(path, param string) func(string) string {
		return func(raw string) string { return path + "?" + param + "=" + raw }
	}
	var targets []target
	for _, p := range []string{"appKey", "roomId", "sessionId", "userId"} {
		targets = append(targets, target{query("/v1/recordings", p), p, "filter"})
	}
	for _, p := range []string{"cursor", "status", "uploadState", "verification", "mode", "limit", "since", "until"} {
		targets = append(targets, target{query("/v1/recordings", p), p, "strict"})
	}
	for _, p := range []string{"appKey", "roomId"} {
		targets = append(targets, target{query("/v1/files", p), p, "filter"})
	}
	for _, p := range []string{"cursor", "uploadState", "limit", "since", "until"} {
		targets = append(targets, target{query("/v1/files", p), p, "strict"})
	}
	for _, p := range []string{"after", "limit", "tail"} {
		targets = append(targets, target{query("/v1/events", p), p, "strict"})
	}
	for _, p := range []string{"cursor", "limit"} {
		targets = append(targets, target{query("/v1/quarantine", p), p, "strict"})
	}
	targets = append(targets, target{query("/v1/events/stream", "after"), "after", "strict"})
	targets = append(targets,
		target{func(raw string) string { return "/v1/recordings/" + raw }, "recordId", "path"},
		target{func(raw string) string { return "/v1/files/" + raw }, "fileName", "path"})

	var mu sync.Mutex
	statuses := map[string]map[string]int{} // backend -> request -> status
	onBothFilledStores(t, func(t *testing.T, backend string, s api.Store) {
		srv := server(t, s, "")
		got := map[string]int{}
		for _, tg := range targets {
			for _, hv := range hostileValues {
				u := tg.url(hv.raw)
				name := u
				if len(name) > 80 {
					name = name[:80] + "…"
				}
				status, body := getRaw(t, srv.URL+u)
				got[name] = status
				var want int
				switch {
				case tg.kind == "path":
					want = http.StatusNotFound
				case tg.kind == "filter" && hv.valid:
					want = http.StatusOK
				default:
					want = http.StatusBadRequest
				}
				var e apiError
				json.Unmarshal(body, &e)
				switch {
				case status != want:
					t.Errorf("%s: %d %.200s, want %d", name, status, body, want)
				case want == 400 && (e.Error.Code != "bad_parameter" || !strings.Contains(e.Error.Message, tg.param)):
					t.Errorf("%s: %s, want bad_parameter naming %s", name, body, tg.param)
				case want == 404 && e.Error.Code != "not_found":
					t.Errorf("%s: %s, want not_found", name, body)
				case want == 200:
					var list api.RecordingList
					if err := json.Unmarshal(body, &list); err != nil || len(list.Items) != 0 {
						t.Errorf("%s: %.200s, want an empty list", name, body)
					}
				}
				if len(body) > 1000 {
					t.Errorf("%s: the answer is %d bytes; it echoes the value", name, len(body))
				}
			}
		}
		// A value that passes still finds what it names (the check does not
		// refuse everything).
		if status, body := getRaw(t, srv.URL+"/v1/recordings?roomId="+url.QueryEscape(ledgertest.Callback(t, "x", rc.TypeStart, 0, "", 200).RoomID)); status != 200 || !strings.Contains(string(body), "rec-done") {
			t.Errorf("a real roomId: %d %.200s", status, body)
		}
		mu.Lock()
		statuses[backend] = got
		mu.Unlock()
	})
	if pg, ok := statuses["postgres"]; ok {
		for req, st := range statuses["sqlite"] {
			if pg[req] != st {
				t.Errorf("%s: SQLite answers %d, PostgreSQL %d", req, st, pg[req])
			}
		}
	}
}

func getRaw(t *testing.T, u string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 500 {
		t.Errorf("%.100s: %d %.200s", u, resp.StatusCode, b)
	}
	return resp.StatusCode, b
}

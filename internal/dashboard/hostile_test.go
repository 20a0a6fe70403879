package dashboard_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/dashboard"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/ledger/ledgertest"
	"github.com/recledger/recledger/internal/storetest"
)

type appendStore interface {
	dashboard.Store
	Append(context.Context, ledger.Incoming) (ledger.Appended, error)
}

// onBothStores runs test on a SQLite store holding rec-done and, where
// RECLEDGER_TEST_POSTGRES_URL names a database, on a PostgreSQL one in a
// schema of its own.
func onBothStores(t *testing.T, test func(t *testing.T, backend string, s dashboard.Store)) {
	fillDone := func(t *testing.T, s appendStore) dashboard.Store {
		for i, cb := range ledgertest.Recording(t, "rec-done", 2, false) {
			if _, err := s.Append(context.Background(), ledger.Incoming{Callback: cb, ReceivedAt: now.Add(time.Duration(i-100) * time.Millisecond)}); err != nil {
				t.Fatal(err)
			}
		}
		return s
	}
	storetest.Each(t, func(t *testing.T, backend string, s ledger.Store) { test(t, backend, fillDone(t, s)) })
}

// TestHostileFiltersAndSearch sends NUL, %FF, 100 KB, a C1 control, an
// emoji and SQL text to the dashboard's list filters, its recording path
// and its search box, on both backends: never 5xx, the same status on
// both, a 400 "Check the filter" page for a filter or a search no stored
// value can equal, 404 for such a recordId, and no page echoes the value.
func TestHostileFiltersAndSearch(t *testing.T) {
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
		prefix   string
		kind     string // "filter", "search", "path" or "strict" (refuses each of these values)
		validWin int    // the status for a valid value
	}
	var targets []target
	for _, p := range []string{"appKey", "roomId", "sessionId", "userId"} {
		targets = append(targets, target{"/recordings?" + p + "=", "filter", 200})
	}
	for _, p := range []string{"cursor", "status", "uploadState", "verification", "mode", "since", "until"} {
		targets = append(targets, target{"/recordings?" + p + "=", "strict", 400})
	}
	targets = append(targets,
		target{"/quarantine?cursor=", "strict", 400},
		target{"/search?q=", "search", 404}, // "Nothing found"
		target{"/recordings/", "path", 404})

	var mu sync.Mutex
	statuses := map[string]map[string]int{}
	onBothStores(t, func(t *testing.T, backend string, s dashboard.Store) {
		st := newSite(t, s, "", now)
		got := map[string]int{}
		for _, tg := range targets {
			for _, v := range values {
				name := tg.prefix + v.name
				code, _, body := fetch(t, nil, st.URL+tg.prefix+v.raw)
				got[name] = code
				want := tg.validWin
				switch {
				case tg.kind == "path":
					want = http.StatusNotFound
				case !v.valid:
					want = http.StatusBadRequest
				}
				if code >= 500 || code != want {
					t.Errorf("%s: %d, want %d\n%.300s", name, code, want, body)
				}
				if code == 400 && !strings.Contains(body, "Check the filter") {
					t.Errorf("%s: 400 without the filter page", name)
				}
				if strings.Contains(body, strings.Repeat("a", 300)) || strings.Contains(body, "\x00") || strings.Contains(body, "\u0085") {
					t.Errorf("%s: the page echoes the hostile value", name)
				}
			}
		}
		// The check refuses only what cannot match.
		if code, _, _ := fetch(t, nil, st.URL+"/search?q=rec-done"); code != http.StatusSeeOther {
			t.Errorf("search for rec-done: %d, want 303", code)
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

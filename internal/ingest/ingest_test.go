package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/ingest"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/pgstore"
	"github.com/recledger/recledger/internal/sqlitestore"
	"github.com/recledger/recledger/internal/storetest"
	"github.com/recledger/recledger/rc"
)

const (
	app    = "your_appkey"
	secret = "Y1W2MeFwwwRxa0"
)

func seed(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "rc", "testdata", "seed", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newServer(t *testing.T, store ingest.Store, replay rc.ReplayMemory, insecure bool) string {
	t.Helper()
	v, err := rc.NewVerifier(rc.VerifierConfig{Apps: map[string][]string{app: {secret}}, Replay: replay})
	if err != nil {
		t.Fatal(err)
	}
	h, err := ingest.New(store, ingest.Options{Verifier: v, InsecureSkipSignature: insecure, MaxBodyBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// runOnStores runs test against SQLite and, where RECLEDGER_TEST_POSTGRES_URL
// names a database, against PostgreSQL in a schema of its own.
func runOnStores(t *testing.T, test func(t *testing.T, store ledger.Store)) {
	storetest.Each(t, func(t *testing.T, _ string, s ledger.Store) { test(t, s) })
}

func sqliteStore(t *testing.T) *sqlitestore.Store {
	return storetest.SQLite(t, sqlitestore.Options{})
}

type answer struct {
	status int
	body   map[string]any
	header http.Header
}

func post(t *testing.T, url string, body []byte, sign func(*http.Request), contentType string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if sign != nil {
		sign(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("answer %d is not JSON: %q", resp.StatusCode, raw)
	}
	return answer{resp.StatusCode, m, resp.Header}
}

func signer() func(*http.Request) {
	s := rc.Signer{AppKey: app, Secret: secret}
	return func(r *http.Request) { s.Apply(r, s.Sign()) }
}

func errorCode(a answer) string {
	e, _ := a.body["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

func TestIngestStoresAndAnswers(t *testing.T) {
	runOnStores(t, func(t *testing.T, store ledger.Store) {
		url := newServer(t, store, store, false)
		for i, name := range []string{"type1-start.json", "type2-segment.json", "type3-end.json", "type4-upload.json"} {
			a := post(t, url, seed(t, name), signer(), "application/json")
			if seq, known := a.body["seq"]; a.status != 200 || known && seq != float64(i+1) {
				t.Fatalf("%s: %d %v", name, a.status, a.body)
			}
		}
		a := post(t, url, seed(t, "type3-end.json"), signer(), "application/json")
		if a.status != 200 {
			t.Errorf("redelivery: %d %v, want 200", a.status, a.body)
		}
		evs, err := store.RecordingEvents(context.Background(), "8329208b99410743dcfeb80548e2c0ec")
		if err != nil || len(evs) != 5 || !evs[4].Duplicate || evs[2].Duplicate {
			t.Errorf("events after a redelivery: %d (%v); want 5, the last a duplicate", len(evs), err)
		}
		st, err := store.Recording(context.Background(), "8329208b99410743dcfeb80548e2c0ec")
		if err != nil {
			t.Fatal(err)
		}
		r := st.View(time.Now())
		if r.Status != ledger.StatusComplete || len(r.Files) != 1 || r.Files[0].FileURL == nil || *r.Files[0].FileURL != "http://oss/record/XXXXXXXX.mp4?abc" {
			t.Errorf("recording after the seeds: %+v", r)
		}
	})
}

func TestIngestRefusesAndQuarantines(t *testing.T) {
	runOnStores(t, func(t *testing.T, store ledger.Store) {
		url := newServer(t, store, store, false)
		body := seed(t, "type1-start.json")
		wrongSig := func(r *http.Request) {
			signer()(r)
			r.Header.Set("signature", strings.Repeat("ab", 20))
		}
		tests := []struct {
			name        string
			body        []byte
			sign        func(*http.Request)
			contentType string
			status      int
			code        string
		}{
			{"unsigned", body, nil, "application/json", 401, "missing_signature"},
			{"forged", body, wrongSig, "application/json", 401, "bad_signature"},
			{"not JSON", []byte(`{"appKey":"your_appkey"`), signer(), "application/json", 400, "invalid_json"},
			{"no recordId", []byte(`{"type":1,"appKey":"your_appkey"}`), signer(), "application/json", 400, "missing_field"},
			{"form", body, signer(), "application/x-www-form-urlencoded", 415, "unsupported_media_type"},
			{"too large", bytes.Repeat([]byte(" "), 5000), signer(), "application/json", 413, "body_too_large"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				a := post(t, url, tt.body, tt.sign, tt.contentType)
				if a.status != tt.status || errorCode(a) != tt.code {
					t.Fatalf("got %d %v, want %d %s", a.status, a.body, tt.status, tt.code)
				}
				q, err := store.QuarantineList(context.Background(), 0, 1)
				if err != nil || len(q) != 1 {
					t.Fatalf("quarantine: %v, %v", q, err)
				}
				r := q[0]
				if r.Status != tt.status || r.Reason != tt.code || r.Remote == "" || r.Path != "/" || r.Method != "POST" {
					t.Errorf("quarantined %+v", r)
				}
				if tt.status != 413 && tt.status != 415 && !bytes.Equal(r.Body, tt.body) {
					t.Errorf("quarantined body %q, want %q", r.Body, tt.body)
				}
				if sig := r.Header.Get("Signature"); sig != "" && sig != "***" {
					t.Errorf("signature kept in the quarantine: %q", sig)
				}
			})
		}
		evs, err := store.Events(context.Background(), 0, 10)
		if err != nil || len(evs) != 0 {
			t.Errorf("refused requests reached the log: %d events, %v", len(evs), err)
		}
	})
}

func TestIngestRefusesReplayWithAnotherBody(t *testing.T) {
	runOnStores(t, func(t *testing.T, store ledger.Store) {
		url := newServer(t, store, store, false)
		start := seed(t, "type1-start.json")
		var captured http.Header
		capture := func(r *http.Request) {
			signer()(r)
			captured = r.Header.Clone()
		}
		if a := post(t, url, start, capture, "application/json"); a.status != 200 {
			t.Fatalf("first: %d %v", a.status, a.body)
		}
		replay := func(r *http.Request) {
			for _, k := range []string{"Nonce", "Timestamp", "Signature"} {
				r.Header.Set(k, captured.Get(k))
			}
		}
		if a := post(t, url, start, replay, "application/json"); a.status != 200 {
			t.Errorf("same signature, same body: %d %v; want 200 (a redelivery)", a.status, a.body)
		}
		if a := post(t, url, seed(t, "type3-end.json"), replay, "application/json"); a.status != 401 || errorCode(a) != "replayed_signature" {
			t.Errorf("same signature, other body: %d %v; want 401 replayed_signature", a.status, a.body)
		}
	})
}

func TestIngestInsecureMode(t *testing.T) {
	runOnStores(t, func(t *testing.T, store ledger.Store) {
		url := newServer(t, store, store, true)
		if a := post(t, url, seed(t, "type1-start.json"), nil, "application/json"); a.status != 200 {
			t.Errorf("unsigned in insecure mode: %d %v, want 200", a.status, a.body)
		}
		forged := func(r *http.Request) {
			signer()(r)
			r.Header.Set("signature", strings.Repeat("cd", 20))
		}
		if a := post(t, url, seed(t, "type2-segment.json"), forged, "application/json"); a.status != 401 {
			t.Errorf("a wrong signature in insecure mode: %d, want 401", a.status)
		}
	})
}

// flakyStore fails while down is set: a full disk, a locked database.
type flakyStore struct {
	mu   sync.Mutex
	down bool
	log  []ledger.Incoming
}

func (f *flakyStore) Append(_ context.Context, in ledger.Incoming) (ledger.Appended, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return ledger.Appended{}, errors.New("disk I/O error at /secret/path")
	}
	f.log = append(f.log, in)
	return ledger.Appended{Seq: int64(len(f.log))}, nil
}

func (f *flakyStore) Quarantine(context.Context, ledger.Rejection) error { return nil }

func (f *flakyStore) Remember(context.Context, rc.ReplayKey, [32]byte, time.Time) (rc.ReplayVerdict, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return 0, errors.New("replay memory unavailable")
	}
	return rc.ReplayFirst, nil
}

func TestIngestAnswers503UntilTheStoreRecovers(t *testing.T) {
	store := &flakyStore{}
	url := newServer(t, store, rc.NewMemoryReplay(nil), false)
	store.down = true
	a := post(t, url, seed(t, "type1-start.json"), signer(), "application/json")
	if a.status != 503 || errorCode(a) != "store_unavailable" || a.header.Get("Retry-After") == "" {
		t.Fatalf("store down: %d %v", a.status, a.body)
	}
	if strings.Contains(a.body["error"].(map[string]any)["message"].(string), "/secret/path") {
		t.Errorf("503 leaks the store's error: %v", a.body)
	}
	store.mu.Lock()
	store.down = false
	store.mu.Unlock()
	if a := post(t, url, seed(t, "type1-start.json"), signer(), "application/json"); a.status != 200 {
		t.Errorf("after recovery: %d %v", a.status, a.body)
	}
	if len(store.log) != 1 {
		t.Errorf("log holds %d callbacks, want 1", len(store.log))
	}
}

func TestIngestAnswers503WhenReplayMemoryFails(t *testing.T) {
	store := &flakyStore{down: true}
	url := newServer(t, store, store, false)
	if a := post(t, url, seed(t, "type1-start.json"), signer(), "application/json"); a.status != 503 {
		t.Errorf("replay memory down: %d %v, want 503", a.status, a.body)
	}
}

func TestMaskHeader(t *testing.T) {
	h := http.Header{"Signature": {"abc"}, "Rc-Signature": {"def"}, "Authorization": {"Bearer x"}, "Nonce": {"n"}}
	m := ingest.MaskHeader(h)
	for _, k := range []string{"Signature", "Rc-Signature", "Authorization"} {
		if m.Get(k) != "***" {
			t.Errorf("%s = %q, want masked", k, m.Get(k))
		}
	}
	if m.Get("Nonce") != "n" || h.Get("Signature") != "abc" {
		t.Errorf("MaskHeader changed what it should not: %v, original %v", m, h)
	}
}

// TestRefusalsAreKeptButLoggedSparingly sends a burst of unsigned requests:
// every one is quarantined, but the log gets one line a second with a count.
func TestRefusalsAreKeptButLoggedSparingly(t *testing.T) {
	runOnStores(t, func(t *testing.T, store ledger.Store) {
		v, err := rc.NewVerifier(rc.VerifierConfig{Apps: map[string][]string{app: {secret}}})
		if err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		var mu sync.Mutex
		h, err := ingest.New(store, ingest.Options{Verifier: v, Logger: slog.New(slog.NewTextHandler(&lockedWriter{&mu, &logs}, nil))})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		defer srv.Close()
		for range 50 {
			if a := post(t, srv.URL, []byte(`{}`), nil, "application/json"); a.status != 401 {
				t.Fatalf("unsigned: %d", a.status)
			}
		}
		q, err := store.QuarantineList(context.Background(), 0, 100)
		if err != nil || len(q) != 50 {
			t.Errorf("quarantine holds %d of 50 refusals (%v)", len(q), err)
		}
		mu.Lock()
		defer mu.Unlock()
		if n := strings.Count(logs.String(), "callback refused"); n < 1 || n > 5 {
			t.Errorf("%d log lines for a burst of 50 refusals, want one a second:\n%s", n, logs.String())
		}
	})
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestIngestRefusesReplayAcrossInstances posts a signature to one
// PostgreSQL instance and then the same signature to another on the same
// database. The second instance's verifier has not heard of it (its memory
// is its own); the commit finds it in the shared table: with another body
// the callback is refused as the verifier refuses a replay, and
// quarantined, not logged; with the same body (a redelivery that landed on
// the other instance) it is logged.
func TestIngestRefusesReplayAcrossInstances(t *testing.T) {
	stores := storetest.PostgresInstances(t, 2, pgstore.Options{})
	urls := []string{newServer(t, stores[0], stores[0], false), newServer(t, stores[1], stores[1], false)}
	var captured http.Header
	capture := func(r *http.Request) {
		signer()(r)
		captured = r.Header.Clone()
	}
	replay := func(r *http.Request) {
		for _, k := range []string{"Nonce", "Timestamp", "Signature"} {
			r.Header.Set(k, captured.Get(k))
		}
	}
	start, end := seed(t, "type1-start.json"), seed(t, "type3-end.json")
	if a := post(t, urls[0], start, capture, "application/json"); a.status != 200 {
		t.Fatalf("first instance: %d %v", a.status, a.body)
	}
	if a := post(t, urls[1], end, replay, "application/json"); a.status != 401 || errorCode(a) != "replayed_signature" {
		t.Fatalf("second instance, same signature, other body: %d %v; want 401 replayed_signature", a.status, a.body)
	}
	q, err := stores[1].QuarantineList(context.Background(), 0, 10)
	if err != nil || len(q) != 1 {
		t.Fatalf("quarantine: %v, %v; want the refused request", q, err)
	}
	if r := q[0]; r.Status != 401 || r.Reason != "replayed_signature" || !bytes.Equal(r.Body, end) || r.Header.Get("Signature") != "***" {
		t.Errorf("quarantined %+v", r)
	}
	// The same request redelivered, once to each instance: logged both times.
	upload := seed(t, "type4-upload.json")
	if a := post(t, urls[0], upload, capture, "application/json"); a.status != 200 {
		t.Fatalf("first instance, a new signature: %d %v", a.status, a.body)
	}
	if a := post(t, urls[1], upload, replay, "application/json"); a.status != 200 {
		t.Errorf("second instance, same signature, same body: %d %v; want 200 (a redelivery)", a.status, a.body)
	}
	var logged []string
	for _, s := range stores { // each waits for its own callbacks' projection
		evs, err := s.Events(context.Background(), 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		logged = logged[:0]
		for _, e := range evs {
			logged = append(logged, e.Type.String())
		}
	}
	if want := []string{rc.TypeStart.String(), rc.TypeUpload.String(), rc.TypeUpload.String()}; !slices.Equal(logged, want) {
		t.Errorf("logged %v, want %v (the refused body not among them)", logged, want)
	}
}

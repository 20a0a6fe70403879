package simulator_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/ingest"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/simulator"
	"github.com/recledger/recledger/internal/sqlitestore"
	"github.com/recledger/recledger/rc"
)

// TestDeliveryRules answers the first attempts badly: RC's rules say two
// retries, a fresh signature each time, and only a 200 counts.
func TestDeliveryRules(t *testing.T) {
	var (
		mu     sync.Mutex
		nonces []string
		fails  int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		nonces = append(nonces, r.Header.Get("Nonce"))
		if fails > 0 {
			fails--
			w.WriteHeader(http.StatusAccepted) // not 200: does not count
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	d := &simulator.Deliverer{URL: srv.URL, Signer: rc.Signer{AppKey: "app", Secret: "s"}}
	for _, tt := range []struct {
		fails    int
		attempts int
		ok       bool
	}{{0, 1, true}, {2, 3, true}, {3, 3, false}} {
		mu.Lock()
		fails, nonces = tt.fails, nil
		mu.Unlock()
		got := d.Deliver(context.Background(), []byte(`{}`))
		if got.Attempts != tt.attempts || got.OK != tt.ok {
			t.Errorf("%d failing answers: %+v, want %d attempts, ok %v", tt.fails, got, tt.attempts, tt.ok)
		}
		seen := map[string]bool{}
		for _, n := range nonces {
			if seen[n] || n == "" {
				t.Errorf("attempts reused or lacked a nonce: %v", nonces)
			}
			seen[n] = true
		}
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	}))
	defer slow.Close()
	d = &simulator.Deliverer{URL: slow.URL, Signer: rc.Signer{AppKey: "app", Secret: "s"}, Client: &http.Client{Timeout: 50 * time.Millisecond}}
	if got := d.Deliver(context.Background(), []byte(`{}`)); got.OK || got.Attempts != 3 || got.Statuses[0] != 0 {
		t.Errorf("a receiver slower than the timeout: %+v", got)
	}
}

// TestRunAgainstRecledger plays 60 recordings in every mode against the
// real ingest handler and store: every callback is answered 200 and the
// ledger holds every recording with every file.
func TestRunAgainstRecledger(t *testing.T) {
	store, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "r.db"), sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	v, err := rc.NewVerifier(rc.VerifierConfig{Apps: map[string][]string{"app": {"secret"}}, Replay: store})
	if err != nil {
		t.Fatal(err)
	}
	h, err := ingest.New(store, ingest.Options{Verifier: v})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	recs := simulator.Generate(simulator.Options{AppKey: "app", Recordings: 60, Seed: 5, Start: epoch, UploadFailures: 0.3, NeverUploaded: 0.1})
	for _, style := range []rc.Style{rc.StyleHeaders, rc.StyleQuerySeconds} {
		d := &simulator.Deliverer{URL: srv.URL, Signer: rc.Signer{AppKey: "app", Secret: "secret", Style: style}}
		sum := simulator.Run(context.Background(), d, "app", recs, simulator.RunOptions{Speed: 0}).Summary
		if sum.Delivered != sum.Callbacks || sum.Failed != 0 || sum.Statuses["200"] != sum.Callbacks {
			t.Fatalf("style %s: %+v", style, sum)
		}
	}
	for _, rec := range recs {
		st, err := store.Recording(context.Background(), rec.RecordID)
		if err != nil {
			t.Fatalf("%s: %v", rec.RecordID, err)
		}
		view := st.View(time.Now())
		wantFiles := len(rec.Files)
		if rec.StartCode != rc.StatusOK {
			wantFiles = 0
		}
		if view.FileCount != wantFiles || view.Mode != rec.Mode || view.RoomID != rec.RoomID {
			t.Errorf("%s: %d files in mode %d room %s; want %d, %d, %s", rec.RecordID, view.FileCount, view.Mode, view.RoomID, wantFiles, rec.Mode, rec.RoomID)
		}
		if rec.StartCode == rc.StatusOK && view.Status == ledger.StatusRecording {
			t.Errorf("%s: still recording after its end was delivered", rec.RecordID)
		}
	}
}

// TestSpeedCompressesSimulatedTime plays recordings whose callbacks span
// hours of simulated time at 20,000x: the run waits for the schedule (it
// cannot end before the last callback is due) and every callback keeps its
// simulated timestamp.
func TestSpeedCompressesSimulatedTime(t *testing.T) {
	var (
		mu    sync.Mutex
		stamp []int64
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Timestamp int64 }
		json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		stamp = append(stamp, body.Timestamp)
		mu.Unlock()
	}))
	defer srv.Close()
	recs := simulator.Generate(simulator.Options{AppKey: "app", Recordings: 5, Seed: 2, Start: epoch, Spread: time.Hour})
	var first, last time.Time
	want := map[int64]bool{}
	for _, r := range recs {
		for _, c := range r.Callbacks("app") {
			if first.IsZero() || c.At.Before(first) {
				first = c.At
			}
			if c.At.After(last) {
				last = c.At
			}
			want[c.At.UnixMilli()] = true
		}
	}
	const speed = 20000
	d := &simulator.Deliverer{URL: srv.URL, Signer: rc.Signer{AppKey: "app", Secret: "s"}}
	sum := simulator.Run(context.Background(), d, "app", recs, simulator.RunOptions{Speed: speed}).Summary
	if span := time.Duration(float64(last.Sub(first)) / speed); sum.Elapsed < span || span <= 0 {
		t.Errorf("a schedule of %s played in %s", span, sum.Elapsed)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, ts := range stamp {
		if !want[ts] {
			t.Fatalf("a callback carried timestamp %d, not a simulated time of the scenario", ts)
		}
	}
	if len(stamp) != sum.Callbacks {
		t.Errorf("received %d callbacks, sent %d", len(stamp), sum.Callbacks)
	}
}

// TestNoTimestampPastTheEnd plays a scenario placed to end at a time with
// every fault on: delays hold callbacks back, but every callback sent,
// the unknown ones beside them included, carries a time of the scenario,
// so none lies past its end.
func TestNoTimestampPastTheEnd(t *testing.T) {
	var (
		mu    sync.Mutex
		stamp []int64
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Timestamp int64 }
		if json.NewDecoder(r.Body).Decode(&body) != nil {
			return // the malformed fault's half body
		}
		mu.Lock()
		stamp = append(stamp, body.Timestamp)
		mu.Unlock()
	}))
	defer srv.Close()
	recs := simulator.Generate(simulator.Options{AppKey: "app", Recordings: 40, Seed: 8, End: epoch, UploadFailures: 0.3})
	times := map[int64]bool{}
	for _, r := range recs {
		for _, c := range r.Callbacks("app") {
			times[c.At.UnixMilli()] = true
		}
	}
	d := &simulator.Deliverer{URL: srv.URL, Signer: rc.Signer{AppKey: "app", Secret: "s"}}
	faults, err := simulator.ParseFaults("all=0.3")
	if err != nil {
		t.Fatal(err)
	}
	sum := simulator.Run(context.Background(), d, "app", recs, simulator.RunOptions{Faults: faults, Seed: 8}).Summary
	mu.Lock()
	defer mu.Unlock()
	if sum.Injected["delay"] == 0 || sum.Injected["unknown"] == 0 {
		t.Fatalf("the run injected no delay or unknown callback: %v", sum.Injected)
	}
	latest := int64(0)
	for _, ts := range stamp {
		if !times[ts] {
			t.Errorf("a callback carried timestamp %d, not a time of the scenario", ts)
		}
		latest = max(latest, ts)
	}
	if latest != epoch.UnixMilli() {
		t.Errorf("the latest timestamp sent is %d, want the scenario's end %d", latest, epoch.UnixMilli())
	}
}

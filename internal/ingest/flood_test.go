package ingest_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/ingest"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/sqlitestore"
	"github.com/recledger/recledger/rc"
)

// TestForgedHeaderFloodStaysWithinTheCap sends 300 forged requests over
// loopback, each with about 60 KB of headers (under serve.go's 64 KiB
// limit), to a server on a SQLite store whose quarantine is capped at
// 1 MiB: the bytes the store reports stay within the cap, and so does the
// log file on disk, give or take a fixed overhead. Before the cap counted
// headers (and bounded them), the file grew by the full header size per
// request (about 18 MB here) while the store said it held the bodies' few
// kilobytes.
func TestForgedHeaderFloodStaysWithinTheCap(t *testing.T) {
	const (
		capBytes = 1 << 20
		requests = 300
		overhead = 1 << 20 // empty tables, the page slack of a B-tree, the last batch before its cap
	)
	path := filepath.Join(t.TempDir(), "recledger.db")
	store, err := sqlitestore.Open(context.Background(), path, sqlitestore.Options{QuarantineMaxBytes: capBytes})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	v, err := rc.NewVerifier(rc.VerifierConfig{Apps: map[string][]string{app: {secret}}, Replay: store})
	if err != nil {
		t.Fatal(err)
	}
	h, err := ingest.New(store, ingest.Options{Verifier: v})
	if err != nil {
		t.Fatal(err)
	}
	url := loopbackServer(t, h)
	pad := strings.Repeat("p", 990)
	forge := func(n int) func(*http.Request) {
		return func(r *http.Request) {
			for i := range 60 {
				r.Header.Set(fmt.Sprintf("X-Pad-%02d", i), fmt.Sprintf("%d-%s", n, pad))
			}
			r.Header.Set("Signature", strings.Repeat("ab", 20)) // forged
		}
	}
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for n := range jobs {
				if a := post(t, url, []byte(`{"appKey":"x"}`), forge(n), "application/json"); a.status != 401 {
					t.Errorf("forged request %d: %d %v, want 401", n, a.status, a.body)
				}
			}
		})
	}
	for n := range requests {
		jobs <- n
	}
	close(jobs)
	wg.Wait()

	st, err := store.Stats(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if st.QuarantineBytes > capBytes || st.QuarantineCount == 0 {
		t.Errorf("quarantine reports %d rows, %d bytes; want some, within the %d-byte cap", st.QuarantineCount, st.QuarantineBytes, capBytes)
	}
	q, err := store.QuarantineList(context.Background(), 0, 1)
	if err != nil || len(q) != 1 || q[0].Header.Get(ledger.DroppedHeader) == "" || len(q[0].Header) > ledger.MaxRejectionHeaderFields+1 {
		t.Errorf("newest rejection: %d header fields, dropped %q (%v)", len(q[0].Header), q[0].Header.Get(ledger.DroppedHeader), err)
	}
	if err := store.Close(); err != nil { // checkpoints and truncates the WAL
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after %d forged requests of ~60 KB headers: %d rows, %d bytes reported, log file %d bytes", requests, st.QuarantineCount, st.QuarantineBytes, fi.Size())
	if fi.Size() > capBytes+overhead {
		t.Errorf("the log file holds %d bytes, want at most the cap %d + %d", fi.Size(), capBytes, overhead)
	}
}

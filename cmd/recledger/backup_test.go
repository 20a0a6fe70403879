package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/recledger/recledger/internal/simulator"
	"github.com/recledger/recledger/rc"
)

// getAPI reads the query API of a server without a token (loopback).
func getAPI(t *testing.T, addr, path string, out any) {
	t.Helper()
	resp, err := testClient.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// loggedRecordIDs returns the recordIds of every callback in the server's
// raw log (GET /v1/events, page by page).
func loggedRecordIDs(t *testing.T, addr string) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	for after := int64(0); ; {
		var page struct {
			Items []struct {
				Seq      int64  `json:"seq"`
				RecordID string `json:"recordId"`
			} `json:"items"`
		}
		getAPI(t, addr, fmt.Sprintf("/v1/events?after=%d&limit=500", after), &page)
		if len(page.Items) == 0 {
			return ids
		}
		for _, e := range page.Items {
			ids[e.RecordID] = true
		}
		after = page.Items[len(page.Items)-1].Seq
	}
}

// allRecordings returns every recording the server lists, as JSON values,
// newest first.
func allRecordings(t *testing.T, addr string) []map[string]any {
	t.Helper()
	var all []map[string]any
	cursor := ""
	for range 100 {
		var page struct {
			Items      []map[string]any `json:"items"`
			NextCursor string           `json:"nextCursor"`
		}
		getAPI(t, addr, "/v1/recordings?limit=500&cursor="+url.QueryEscape(cursor), &page)
		all = append(all, page.Items...)
		if page.NextCursor == "" {
			return all
		}
		cursor = page.NextCursor
	}
	t.Fatal("more than 100 pages of recordings")
	return nil
}

// TestBackupUnderLoadRestoresAcknowledged is the test: a seeded
// simulation is acknowledged, then callbacks keep arriving from 8 senders
// while `recledger backup` (another process, beside the running server)
// copies the store. The copy is restored into a new store and served:
// it holds every callback acknowledged before the backup began, the
// simulator's verification passes for the simulated recordings, and its
// ledger equals a rebuild of it from its log (`recledger replay`).
func TestBackupUnderLoadRestoresAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("load test skipped in -short mode")
	}
	ctx := context.Background()
	dir, restoredDir := t.TempDir(), t.TempDir()
	live := filepath.Join(dir, "data", "recledger.db")
	srv := startServer(t, dir, "--app", testApp+"="+testSecret)

	recs := simulator.Generate(simulator.Options{AppKey: testApp, Recordings: 40, Seed: 15, End: seededEnd,
		UploadFailures: 0.2, NeverUploaded: 0.05, FailedRecordings: 0.05})
	d := &simulator.Deliverer{URL: "http://" + srv.addr + "/v1/callbacks/recording", Signer: rc.Signer{AppKey: testApp, Secret: testSecret}}
	sim := simulator.Run(ctx, d, testApp, recs, simulator.RunOptions{Concurrency: 8})
	if sim.Failed > 0 || sim.Delivered == 0 {
		t.Fatalf("simulation: %d of %d callbacks failed", sim.Failed, sim.Callbacks)
	}

	var (
		mu    sync.Mutex
		acked = map[string]time.Time{} // recordId: when its 200 arrived
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	for g := range 8 {
		wg.Go(func() {
			for i := range 20000 {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("load-%d-%d", g, i)
				body := fmt.Appendf(nil, `{"timestamp":%d,"type":1,"appKey":%q,"recordId":%q,"roomId":"r","sessionId":"s","userId":"u","mode":0,"code":200}`,
					time.Now().UnixMilli(), testApp, id)
				if status, err := postSigned(srv.addr, body); err == nil && status == http.StatusOK {
					mu.Lock()
					acked[id] = time.Now()
					mu.Unlock()
				}
			}
		})
	}
	waitUntil(t, func() bool { return count() >= 300 })
	backup := filepath.Join(dir, "backups", "recledger-backup.db")
	began := time.Now()
	out, stderr, code := runBinary(t, "", "backup", "--db", "sqlite:"+live, "--to", backup)
	if code != 0 {
		close(stop)
		wg.Wait()
		t.Fatalf("backup beside the running server (exit %d): %s%s", code, out, stderr)
	}
	t.Log(strings.TrimSpace(out))
	atBackup := count()
	waitUntil(t, func() bool { return count() >= atBackup+200 }) // the load went on after it
	if _, stderr, code := runBinary(t, "", "restore", "--from", backup, "--db", "sqlite:"+live, "--force"); code != 1 || !strings.Contains(stderr, "in use") {
		t.Errorf("restore onto the running server's store: exit %d, %q; want a refusal", code, stderr)
	}
	close(stop)
	wg.Wait()
	srv.stop(t)

	restored := "sqlite:" + filepath.Join(restoredDir, "data", "recledger.db")
	if out, stderr, code := runBinary(t, "", "restore", "--from", backup, "--db", restored); code != 0 || !strings.Contains(out, "restored: log up to callback") {
		t.Fatalf("restore (exit %d): %s%s", code, out, stderr)
	}
	srv2 := startServer(t, restoredDir, "--app", testApp+"="+testSecret)
	logged := loggedRecordIDs(t, srv2.addr)
	before := 0
	for id, at := range acked {
		if at.Before(began) {
			before++
			if !logged[id] {
				t.Fatalf("%s was acknowledged before the backup began but the restored server's log lacks it", id)
			}
		}
	}
	if before < 300 || len(logged) >= len(acked)+len(recs) {
		t.Errorf("%d acknowledged before the backup, %d recordIds in it, %d acknowledged in all: the backup did not fall mid-load", before, len(logged), len(acked))
	}
	requireVerified(t, ctx, srv2.addr, recs, sim.Acked, "the restored server")
	served := allRecordings(t, srv2.addr)
	srv2.stop(t)

	if out, stderr, code := runBinary(t, "", "replay", "--db", restored); code != 0 {
		t.Fatalf("replay (exit %d): %s%s", code, out, stderr)
	}
	srv3 := startServer(t, restoredDir, "--app", testApp+"="+testSecret)
	rebuilt := allRecordings(t, srv3.addr)
	if len(served) < before {
		t.Errorf("the restored server lists %d recordings, fewer than the %d acknowledged before the backup", len(served), before)
	}
	if diff := cmp.Diff(served, rebuilt); diff != "" {
		t.Errorf("the restored ledger differs from a rebuild of its log (-served +rebuilt):\n%s", diff)
	}
	t.Logf("%d callbacks acknowledged before the backup, %d in all; the restored server lists %d recordings", before, len(acked), len(served))
}

// requireVerified runs the simulator's --verify against the server at addr
// for recs, of which acked were acknowledged, and fails the test on any
// mismatch (the first ten shown).
func requireVerified(t *testing.T, ctx context.Context, addr string, recs []simulator.Recording, acked map[string][]simulator.Callback, what string) {
	t.Helper()
	mismatches, err := simulator.Verify(ctx, "http://"+addr, "", recs, acked)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range mismatches {
		if i == 10 {
			t.Fatalf("... %d mismatches in all", len(mismatches))
		}
		t.Errorf("verify %s: %s", what, m)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 60 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

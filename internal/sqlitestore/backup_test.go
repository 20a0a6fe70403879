package sqlitestore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/ledger/ledgertest"
	"github.com/recledger/recledger/internal/sqlitestore"
	"github.com/recledger/recledger/rc"
)

// TestBackupUnderLoad takes a backup while callbacks are appended, restores
// it into another store, and opens that: every callback appended before the
// backup began is in the copy's log and projected, the copy's ledger never
// reached past its log, and the destination set up before survived (it
// lives in the ledger file, so a rebuild alone could not bring it back).
func TestBackupUnderLoad(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "live", "recledger.db")
	s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Delivery().AddDestination(ctx, &delivery.Destination{ID: "hooks", Kind: delivery.Webhook, URL: "http://127.0.0.1:9/hook", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		acked = map[string]time.Time{} // recordId: when Append returned
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	for g := range 4 {
		wg.Go(func() {
			for i := 0; i < 5000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("bk-%d-%d", g, i)
				cb := ledgertest.Callback(t, id, rc.TypeStart, 0, "", 200)
				if _, err := s.Append(ctx, ledger.Incoming{Callback: cb, ReceivedAt: time.Now()}); err != nil {
					t.Errorf("append: %v", err)
					return
				}
				mu.Lock()
				acked[id] = time.Now()
				mu.Unlock()
			}
		})
	}
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= 200 })
	began := time.Now()
	backup := filepath.Join(dir, "backups", "b.db")
	info, err := sqlitestore.Backup(ctx, path, backup, false)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= 400 }) // load went on after it
	close(stop)
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if info.Projected > info.Callbacks {
		t.Errorf("the backup's ledger projects seq %d, past its log's %d", info.Projected, info.Callbacks)
	}
	if _, err := sqlitestore.Backup(ctx, path, backup, false); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("a second backup onto the first: %v; want a refusal", err)
	}

	restored := filepath.Join(dir, "restored", "recledger.db")
	if _, err := sqlitestore.Restore(ctx, backup, restored, false); err != nil {
		t.Fatal(err)
	}
	r, err := sqlitestore.Open(ctx, restored, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	logged := map[string]bool{}
	for after := int64(0); ; {
		evs, err := r.Events(ctx, after, 5000)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			logged[e.RecordID] = true
		}
		after = evs[len(evs)-1].Seq
	}
	before := 0
	for id, at := range acked {
		if !at.Before(began) {
			continue
		}
		before++
		if !logged[id] {
			t.Fatalf("%s was appended before the backup began but is not in the restored log", id)
		}
		if _, err := r.Recording(ctx, id); err != nil {
			t.Fatalf("%s is in the restored log but not projected: %v", id, err)
		}
	}
	if before < 200 || len(logged) >= len(acked) {
		t.Errorf("%d callbacks before the backup, %d in it, %d in all: the backup did not fall mid-load", before, len(logged), len(acked))
	}
	dests, err := r.Delivery().Destinations(ctx)
	if err != nil || len(dests) != 1 || dests[0].ID != "hooks" {
		t.Errorf("destinations in the restored store: %+v, %v", dests, err)
	}
	t.Logf("backup of %d callbacks (ledger at %d) taken with %d acknowledged before it and %d in all", info.Callbacks, info.Projected, before, len(acked))
}

// openStore opens the store at path, closed when the test ends (Close may
// also be called earlier).
func openStore(t *testing.T, path string, o sqlitestore.Options) *sqlitestore.Store {
	t.Helper()
	s, err := sqlitestore.Open(context.Background(), path, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 60 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRestoreRefusals: a restore never runs beside a server's store, never
// replaces a store unless told to, and never installs a file that is no
// recledger store; and a forced restore drops the old store's WAL, which
// SQLite would otherwise apply to the restored file.
func TestRestoreRefusals(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	live := filepath.Join(dir, "live.db")
	s, err := sqlitestore.Open(ctx, live, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, ledger.Incoming{Callback: ledgertest.Callback(t, "kept", rc.TypeStart, 0, "", 200), ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(dir, "backup.db")
	if _, err := sqlitestore.Backup(ctx, live, backup, false); err != nil {
		t.Fatal(err)
	}
	for _, onto := range []string{live, sqlitestore.LedgerPath(live)} {
		if _, err := sqlitestore.Backup(ctx, live, onto, true); err == nil || !strings.Contains(err.Error(), "store's own files") {
			t.Errorf("backup onto the store's %s: %v; want a refusal", onto, err)
		}
	}
	if _, err := sqlitestore.Restore(ctx, live, live, true); err == nil || !strings.Contains(err.Error(), "store's own files") {
		t.Errorf("restore of the store onto itself: %v; want a refusal", err)
	}
	if _, err := sqlitestore.Restore(ctx, backup, live, true); !errors.Is(err, sqlitestore.ErrInUse) {
		t.Errorf("restore onto an open store: %v; want ErrInUse", err)
	}
	// The live store goes on past the backup, leaving its WAL behind as a
	// crash would (the store is closed cleanly here, so its WAL is kept
	// aside and put back).
	if _, err := s.Append(ctx, ledger.Incoming{Callback: ledgertest.Callback(t, "later", rc.TypeStart, 0, "", 200), ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	staleWAL, err := os.ReadFile(live + "-wal")
	if err != nil || len(staleWAL) == 0 {
		t.Fatalf("the live store's WAL: %d bytes, %v", len(staleWAL), err)
	}
	s.Close()
	if _, err := sqlitestore.Backup(ctx, live, filepath.Join(dir, "closed.db"), false); err != nil {
		t.Errorf("backup of a store no server has open: %v", err)
	}

	if _, err := sqlitestore.Restore(ctx, backup, live, false); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("restore onto an existing store without overwrite: %v", err)
	}
	notStore := filepath.Join(dir, "notes.db")
	os.WriteFile(notStore, []byte("hello"), 0o600)
	os.WriteFile(sqlitestore.LedgerPath(notStore), []byte("hello"), 0o600)
	target := filepath.Join(dir, "fresh.db")
	if _, err := sqlitestore.Restore(ctx, notStore, target, false); err == nil || !strings.Contains(err.Error(), "not a usable recledger") {
		t.Errorf("restore of a file that is not a store: %v", err)
	}
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused restore left %s behind: %v", target, err)
	}
	if _, err := sqlitestore.Restore(ctx, filepath.Join(dir, "missing.db"), target, false); err == nil {
		t.Error("restore of a missing backup succeeded")
	}

	if err := os.WriteFile(live+"-wal", staleWAL, 0o600); err != nil { // a leftover the restore must not keep
		t.Fatal(err)
	}
	info, err := sqlitestore.Restore(ctx, backup, live, true)
	if err != nil {
		t.Fatal(err)
	}
	if info.Callbacks != 1 {
		t.Errorf("restored %d callbacks, want the backup's 1", info.Callbacks)
	}
	r, err := sqlitestore.Open(ctx, live, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Recording(ctx, "kept"); err != nil {
		t.Errorf("the backup's recording after restore: %v", err)
	}
	if _, err := r.Recording(ctx, "later"); err == nil {
		t.Error("a recording newer than the backup survived the forced restore")
	}
}

// TestBackupLedgerNeverAheadOfLog holds Backup to its order: callbacks
// logged and projected between its two copies must not leave the copy's
// ledger projecting callbacks its log lacks (Open would then throw the
// ledger's projections away and rebuild them).
func TestBackupLedgerNeverAheadOfLog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "recledger.db")
	s := openStore(t, path, sqlitestore.Options{})
	appendProjected := func(id string) {
		t.Helper()
		if _, err := s.Append(ctx, ledger.Incoming{Callback: ledgertest.Callback(t, id, rc.TypeStart, 0, "", 200), ReceivedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { _, err := s.Recording(ctx, id); return err == nil })
	}
	appendProjected("first")
	sqlitestore.SetBetweenCopies(func() { appendProjected("between") })
	defer sqlitestore.SetBetweenCopies(nil)
	info, err := sqlitestore.Backup(ctx, path, filepath.Join(dir, "b.db"), false)
	if err != nil {
		t.Fatal(err)
	}
	if info.Projected > info.Callbacks || info.Callbacks != 2 {
		t.Errorf("backup: log up to %d, ledger projecting up to %d; want the log's 2 and the ledger not past it", info.Callbacks, info.Projected)
	}
}

// TestExternalCheckpoints: with CheckpointsExternal the store leaves the
// WAL to the replicator (Litestream): commits stay in the WAL and the
// database file does not change, where the store's own checkpointer copies
// them into the file within a fraction of a second.
func TestExternalCheckpoints(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []string{sqlitestore.CheckpointsOwn, sqlitestore.CheckpointsExternal} {
		path := filepath.Join(t.TempDir(), "recledger.db")
		s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{Checkpoints: mode})
		if err != nil {
			t.Fatal(err)
		}
		// Let the checkpoints Open's migrations left settle first.
		time.Sleep(300 * time.Millisecond)
		size := fileSize(t, path)
		for i := range 200 {
			cb := ledgertest.Callback(t, fmt.Sprintf("ck-%d-%s", i, strings.Repeat("x", 200)), rc.TypeStart, 0, "", 200)
			if _, err := s.Append(ctx, ledger.Incoming{Callback: cb, ReceivedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}
		if mode == sqlitestore.CheckpointsOwn {
			waitFor(t, func() bool { return fileSize(t, path) > size })
		} else {
			time.Sleep(time.Second) // ten of the store's own checkpoint periods
			if got := fileSize(t, path); got != size {
				t.Errorf("external checkpoints: the database file changed from %d to %d bytes: the store checkpointed", size, got)
			}
			if fileSize(t, path+"-wal") == 0 {
				t.Error("external checkpoints: the WAL is empty after 200 commits")
			}
			// An erasure's scrub leaves the WAL to its owner too.
			if err := s.Scrub(ctx); err != nil {
				t.Errorf("Scrub with external checkpoints: %v", err)
			}
			if got := fileSize(t, path); got != size {
				t.Errorf("Scrub with external checkpoints changed the database file from %d to %d bytes: it checkpointed", size, got)
			}
		}
		s.Close()
	}
	if _, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "x.db"), sqlitestore.Options{Checkpoints: "litestream"}); err == nil {
		t.Error("Open accepted checkpoints \"litestream\"")
	}
}

// TestBackupRefusesStoreSidecars: a backup is never written onto the
// files SQLite and the store keep beside the store's two (a database
// renamed onto the live -wal, or a new lock beside the server's), however
// the path is spelt (here through a symbolic link to the data directory),
// even when replacing is allowed; the store goes on unharmed.
func TestBackupRefusesStoreSidecars(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "data", "recledger.db")
	s := openStore(t, path, sqlitestore.Options{Checkpoints: sqlitestore.CheckpointsExternal})
	if _, err := s.Append(ctx, ledger.Incoming{Callback: ledgertest.Callback(t, "kept", rc.TypeStart, 0, "", 200), ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(filepath.Join(dir, "data"), link); err != nil {
		t.Fatal(err)
	}
	wal, err := os.ReadFile(path + "-wal")
	if err != nil || len(wal) == 0 {
		t.Fatalf("the store's WAL: %d bytes, %v", len(wal), err)
	}
	for _, onto := range []string{path + "-wal", path + "-shm", path + ".lock", sqlitestore.LedgerPath(path) + "-wal",
		path + "-journal", filepath.Join(link, "recledger.db"), filepath.Join(link, "recledger.db-wal")} {
		if _, err := sqlitestore.Backup(ctx, path, onto, true); err == nil || !strings.Contains(err.Error(), "store's own files") {
			t.Errorf("backup onto %s: %v; want a refusal", onto, err)
		}
	}
	if now, err := os.ReadFile(path + "-wal"); err != nil || !bytes.HasPrefix(now, wal[:32]) {
		t.Errorf("the store's WAL was replaced (%v)", err)
	}
	if _, err := s.Append(ctx, ledger.Incoming{Callback: ledgertest.Callback(t, "after", rc.TypeStart, 0, "", 200), ReceivedAt: time.Now()}); err != nil {
		t.Errorf("append after the refused backups: %v", err)
	}
}

// TestRestoreInterrupted: a restore that stops between putting its two
// files in place (a crash, a full disk) leaves a store whose ledger is its
// log's, projected afresh: never the backup's ledger over the old log,
// which would show recordings the log does not hold and miss ones it does.
// Run again, the restore completes.
func TestRestoreInterrupted(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fill := func(path string, ids ...string) {
		t.Helper()
		s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for _, id := range ids {
			if _, err := s.Append(ctx, ledger.Incoming{Callback: ledgertest.Callback(t, id, rc.TypeStart, 0, "", 200), ReceivedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, func() bool { _, err := s.Recording(ctx, ids[len(ids)-1]); return err == nil })
	}
	target := filepath.Join(dir, "recledger.db")
	fill(target, "old-1", "old-2", "old-3", "old-4", "old-5")
	other := filepath.Join(dir, "other", "recledger.db")
	fill(other, "new-1")
	backup := filepath.Join(dir, "backup.db")
	if _, err := sqlitestore.Backup(ctx, other, backup, false); err != nil {
		t.Fatal(err)
	}

	sqlitestore.SetBetweenInstalls(func() error { return errors.New("interrupted") })
	_, err := sqlitestore.Restore(ctx, backup, target, true)
	sqlitestore.SetBetweenInstalls(nil)
	if err == nil {
		t.Fatal("the interrupted restore succeeded")
	}
	all := []string{"old-1", "old-2", "old-3", "old-4", "old-5", "new-1"}
	consistent := func(want ...string) {
		t.Helper()
		s, err := sqlitestore.Open(ctx, target, sqlitestore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		logged := map[string]bool{}
		evs, err := s.Events(ctx, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			logged[e.RecordID] = true
		}
		for _, id := range want {
			if !logged[id] {
				t.Errorf("%s is not in the log", id)
			}
		}
		var projected map[string]bool
		deadline := time.Now().Add(30 * time.Second)
		for {
			projected = map[string]bool{}
			for _, id := range all {
				if _, err := s.Recording(ctx, id); err == nil {
					projected[id] = true
				}
			}
			if maps.Equal(projected, logged) || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if !maps.Equal(projected, logged) {
			t.Errorf("the ledger shows %v, the log holds %v", projected, logged)
		}
	}
	consistent()
	if _, err := sqlitestore.Restore(ctx, backup, target, true); err != nil {
		t.Fatalf("the restore run again: %v", err)
	}
	consistent("new-1")
}

// TestBackupToDirectory: a --to that names a directory is refused before
// anything is written (it used to leave a hidden ".ledger" file in it and
// fail on the log's rename).
func TestBackupToDirectory(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "recledger.db")
	openStore(t, path, sqlitestore.Options{}) // a live store to back up
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, to := range []string{out + string(filepath.Separator), out, filepath.Join(dir, "new") + string(filepath.Separator)} {
		if _, err := sqlitestore.Backup(ctx, path, to, true); err == nil || !strings.Contains(err.Error(), "is a directory") {
			t.Errorf("backup --to %s: %v; want a refusal naming the directory", to, err)
		}
	}
	if left, _ := os.ReadDir(out); len(left) != 0 {
		t.Errorf("a refused backup left %v in the directory", left)
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); err == nil {
		t.Error("a refused backup created the directory it named")
	}
}

package sqlitestore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/ledger/ledgertest"
	"github.com/recledger/recledger/internal/sqlitestore"
	"github.com/recledger/recledger/rc"
)

// TestPoisonCallbackFailsAlone installs a trigger that refuses one log row
// (RAISE(ABORT): a constraint error), then appends its callback at once with
// 39 good callbacks, all in one batch: only the poison fails, as
// ledger.ErrUnstorable, and every other callback is stored.
func TestPoisonCallbackFailsAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "recledger.db")
	const n = 40
	var (
		mu      sync.Mutex
		commits []string
	)
	s, err := sqlitestore.Open(context.Background(), path, sqlitestore.Options{MaxBatch: n, MaxWait: time.Minute,
		OnCommit: func(callbacks, _ int, _ time.Duration, err error) {
			mu.Lock()
			commits = append(commits, fmt.Sprintf("%d:%v", callbacks, err != nil))
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TRIGGER poison BEFORE INSERT ON log WHEN NEW.received_at = 12345
		BEGIN SELECT RAISE(ABORT, 'poison'); END`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	errs := make([]error, n)
	at := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		id := "poison"
		if i > 0 {
			id = fmt.Sprintf("good-%02d", i)
		}
		cb := ledgertest.Callback(t, id, rc.TypeStart, 0, "", 200)
		received := at
		if id == "poison" { // the log keeps bytes: the trigger knows the poison by its arrival time
			received = time.UnixMilli(12345)
		}
		wg.Go(func() {
			_, errs[i] = s.Append(context.Background(), ledger.Incoming{Callback: cb, ReceivedAt: received})
		})
	}
	wg.Wait()
	if !errors.Is(errs[0], ledger.ErrUnstorable) {
		t.Errorf("poison: %v, want ledger.ErrUnstorable", errs[0])
	}
	for i, err := range errs[1:] {
		if err != nil {
			t.Errorf("good callback %d failed with the poison: %v", i+1, err)
		}
	}
	evs, err := s.Events(context.Background(), 0, 2*n)
	if err != nil || len(evs) != n-1 {
		t.Errorf("log holds %d events (%v), want %d", len(evs), err, n-1)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(commits) == 0 || commits[0] != fmt.Sprintf("%d:true", n) {
		t.Errorf("commits %v: want the first to hold all %d callbacks and fail", commits, n)
	}
}

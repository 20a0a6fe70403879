package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/ledger/ledgertest"
	"github.com/recledger/recledger/internal/pgstore"
	"github.com/recledger/recledger/rc"
)

// TestPoisonCallbackFailsAlone installs a trigger that refuses one
// recordId the way a CHECK would (SQLSTATE 23514), then appends it at once
// with 39 good callbacks, all in one batch: only the poison fails, as
// ledger.ErrUnstorable (so ingest answers 400, not 503 forever), and every
// other callback is stored.
func TestPoisonCallbackFailsAlone(t *testing.T) {
	url := databaseURL(t)
	schema := freshSchema(t, url)
	const n = 40
	var (
		mu      sync.Mutex
		commits []string
	)
	s, err := pgstore.Open(context.Background(), url, pgstore.Options{Schema: schema, MaxBatch: n, MaxWait: time.Minute,
		OnCommit: func(callbacks, _ int, _ time.Duration, err error) {
			mu.Lock()
			commits = append(commits, fmt.Sprintf("%d:%v", callbacks, err != nil))
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	id := pgx.Identifier{schema}.Sanitize()
	if _, err := conn.Exec(context.Background(), `CREATE FUNCTION `+id+`.poison() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.received_at = 12345 THEN RAISE EXCEPTION 'poison' USING ERRCODE = 'check_violation'; END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER poison BEFORE INSERT ON `+id+`.log FOR EACH ROW EXECUTE FUNCTION `+id+`.poison()`); err != nil {
		t.Fatal(err)
	}
	errs := appendWithPoison(t, s, n)
	for i, err := range errs {
		if i == 0 {
			if !errors.Is(err, ledger.ErrUnstorable) {
				t.Errorf("poison: %v, want ledger.ErrUnstorable", err)
			}
			continue
		}
		if err != nil {
			t.Errorf("good callback %d failed with the poison: %v", i, err)
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

// appendWithPoison appends recordId "poison" (first) and n-1 good
// callbacks concurrently and returns their errors.
func appendWithPoison(t *testing.T, s ledger.Store, n int) []error {
	t.Helper()
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
		if id == "poison" { // the log keeps compressed bytes: a trigger knows the poison by its arrival time
			received = time.UnixMilli(12345)
		}
		wg.Go(func() {
			_, errs[i] = s.Append(context.Background(), ledger.Incoming{Callback: cb, ReceivedAt: received})
		})
	}
	wg.Wait()
	return errs
}

package pgstore_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
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
// other callback is stored. Signed, each good callback's signature is
// shared, and the poison's is not: it went with the failed commits.
func TestPoisonCallbackFailsAlone(t *testing.T) {
	for _, signed := range []bool{false, true} {
		t.Run(fmt.Sprintf("signed=%v", signed), func(t *testing.T) { testPoisonFailsAlone(t, signed) })
	}
}

func testPoisonFailsAlone(t *testing.T, signed bool) {
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
	var remember rc.ReplayMemory
	if signed {
		remember = s
	}
	errs := appendWithPoison(t, s, remember, n)
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
	var sigs []string
	rows, err := conn.Query(context.Background(), `SELECT nonce FROM `+id+`.replay ORDER BY nonce`)
	if err == nil {
		sigs, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := 1; signed && i < n; i++ {
		want = append(want, fmt.Sprintf("n%02d", i))
	}
	if !slices.Equal(sigs, want) {
		t.Errorf("shared signatures %v, want %v", sigs, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(commits) == 0 || commits[0] != fmt.Sprintf("%d:true", n) {
		t.Errorf("commits %v: want the first to hold all %d callbacks and fail", commits, n)
	}
}

// appendWithPoison appends recordId "poison" (first) and n-1 good
// callbacks concurrently and returns their errors. With a replay memory,
// each is signed first (nonce "n00" for the poison, "n01"... for the good).
func appendWithPoison(t *testing.T, s ledger.Store, replay rc.ReplayMemory, n int) []error {
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
		if replay != nil {
			k := rc.ReplayKey{AppKey: "app", Nonce: fmt.Sprintf("n%02d", i), Timestamp: fmt.Sprint(at.UnixMilli())}
			if v, err := replay.Remember(context.Background(), k, sha256.Sum256(cb.Raw), at.Add(time.Hour)); err != nil || v != rc.ReplayFirst {
				t.Fatalf("Remember %s = %v, %v", k.Nonce, v, err)
			}
		}
		wg.Go(func() {
			_, errs[i] = s.Append(context.Background(), ledger.Incoming{Callback: cb, ReceivedAt: received})
		})
	}
	wg.Wait()
	return errs
}

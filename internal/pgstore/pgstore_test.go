package pgstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/ledger/ledgertest"
	"github.com/recledger/recledger/internal/pgstore"
	"github.com/recledger/recledger/rc"
)

// databaseURL returns the test database, or skips: PostgreSQL tests run
// where RECLEDGER_TEST_POSTGRES_URL names one (.ci/run sets it).
func databaseURL(t *testing.T) string {
	t.Helper()
	url := os.Getenv("RECLEDGER_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("set RECLEDGER_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run the PostgreSQL tests")
	}
	return url
}

// freshSchema returns a schema name no other test uses, dropped afterwards.
func freshSchema(t *testing.T, url string) string {
	t.Helper()
	schema := fmt.Sprintf("t_%d_%x", os.Getpid(), rand.Uint64())
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), url)
		if err != nil {
			return
		}
		defer conn.Close(context.Background())
		conn.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`)
	})
	return schema
}

func TestConformance(t *testing.T) {
	url := databaseURL(t)
	ledgertest.ExerciseStore(t, func(t *testing.T) ledgertest.Opener {
		schema := freshSchema(t, url)
		return func() ledger.Store {
			s, err := pgstore.Open(context.Background(), url, pgstore.Options{Schema: schema})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			return s
		}
	})
}

func open(t *testing.T, url, schema string) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(context.Background(), url, pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestTwoInstancesOneLedger sends every callback of 30 recordings, each
// twice, to two instances on one database at once, alternating: the
// ledger must equal Apply over the callbacks (no lost update), each
// callback must be logged once as an original, and a reader following the
// feed while they write must see every event exactly once, in seq order.
func TestTwoInstancesOneLedger(t *testing.T) {
	url := databaseURL(t)
	schema := freshSchema(t, url)
	a, b := open(t, url, schema), open(t, url, schema)
	at := time.Now()
	all := map[string][]rc.Callback{}
	var work []rc.Callback
	for i := range 30 {
		id := fmt.Sprintf("multi-%02d", i)
		all[id] = ledgertest.Recording(t, id, 1+i%4, i%3 == 0)
		work = append(work, all[id]...)
		work = append(work, all[id]...)
	}
	stop := make(chan struct{})
	var (
		wg   sync.WaitGroup
		seen = map[int64]int{}
		last int64
	)
	readerDone := make(chan error, 1)
	go func() { // follows the feed the way GET /v1/events does
		for {
			evs, err := b.Events(context.Background(), last, 50)
			if err != nil {
				readerDone <- err
				return
			}
			for _, e := range evs {
				if e.Seq != last+1 {
					readerDone <- fmt.Errorf("after seq %d the feed gave %d", last, e.Seq)
					return
				}
				seen[e.Seq]++
				last = e.Seq
			}
			if len(evs) == 0 {
				select {
				case <-stop:
					readerDone <- nil
					return
				case <-time.After(2 * time.Millisecond):
				}
			}
		}
	}()
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < len(work); i += 16 {
				s := a
				if i%2 == 1 {
					s = b
				}
				if _, err := s.Append(context.Background(), ledger.Incoming{Callback: work[i], ReceivedAt: at}); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	time.Sleep(50 * time.Millisecond) // let the reader reach the end
	close(stop)
	if err := <-readerDone; err != nil {
		t.Fatal(err)
	}
	evs, err := a.Events(context.Background(), 0, 2*len(work))
	if err != nil {
		t.Fatal(err)
	}
	originals := 0
	for _, e := range evs {
		if !e.Duplicate {
			originals++
		}
	}
	if originals != len(work)/2 {
		t.Errorf("%d originals logged for %d distinct callbacks", originals, len(work)/2)
	}
	if int(last) != len(work) || len(seen) != len(work) {
		t.Errorf("the reader saw %d events up to seq %d; %d were logged", len(seen), last, len(work))
	}
	for id, cbs := range all {
		var want ledger.State
		for _, cb := range cbs {
			want = ledger.Apply(want, cb, at.UnixMilli())
		}
		got, err := a.Recording(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("%s (-Apply +stored):\n%s", id, diff)
		}
	}
}

// TestReplayMemoryIsShared checks a signature accepted by one instance is
// known to the other.
func TestReplayMemoryIsShared(t *testing.T) {
	url := databaseURL(t)
	schema := freshSchema(t, url)
	a, b := open(t, url, schema), open(t, url, schema)
	k := rc.ReplayKey{AppKey: "app", Nonce: "n", Timestamp: "1530027865231"}
	until := time.Now().Add(time.Minute)
	if v, err := a.Remember(context.Background(), k, [32]byte{1}, until); err != nil || v != rc.ReplayFirst {
		t.Fatalf("first: %v %v", v, err)
	}
	if v, err := b.Remember(context.Background(), k, [32]byte{2}, until); err != nil || v != rc.ReplayOtherBody {
		t.Errorf("the other instance, another body: %v %v; want ReplayOtherBody", v, err)
	}
	if v, err := b.Remember(context.Background(), k, [32]byte{1}, until); err != nil || v != rc.ReplaySameBody {
		t.Errorf("the other instance, the same body: %v %v; want ReplaySameBody", v, err)
	}
}

package pgstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/pgstore"
)

// TestCommitDeadlineCountsFromQueueing holds a lock that every commit of a
// rejection waits for (as a stuck session would): the commit gives up at
// the write timeout, and a rejection queued behind it is answered within
// the timeout from its own submission, not after the stuck commit's
// timeout plus its own. Once the lock is gone writes and Ping succeed.
func TestCommitDeadlineCountsFromQueueing(t *testing.T) {
	url := databaseURL(t)
	schema := freshSchema(t, url)
	const timeout = 3 * time.Second
	// A correctness bound (answered within the timeout of arriving), with
	// slack for a loaded machine; without it the second waits ~2x timeout.
	const bound = timeout + 1500*time.Millisecond
	ctx := context.Background()
	s, err := pgstore.Open(ctx, url, pgstore.Options{Schema: schema, WriteTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })

	// The quarantine's table, locked in this schema only, so other
	// schemas' commits do not wait.
	locker, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close(ctx)
	tx, err := locker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE `+pgx.Identifier{schema, "quarantine"}.Sanitize()+` IN EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}

	rejection := func(reason string) ledger.Rejection {
		return ledger.Rejection{At: time.Now().UnixMilli(), Status: 401, Reason: reason, Message: "m", Remote: "127.0.0.1:1", Method: "POST", Path: "/"}
	}
	var (
		wg   sync.WaitGroup
		took [2]time.Duration
		errs [2]error
	)
	for i, reason := range []string{"stuck", "queued_behind"} {
		wg.Go(func() {
			start := time.Now()
			errs[i] = s.Quarantine(ctx, rejection(reason))
			took[i] = time.Since(start)
		})
		time.Sleep(200 * time.Millisecond) // the first commit has begun
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * bound):
		t.Errorf("no answer within %s: the commits wait for the lock without a deadline", 2*bound)
		tx.Rollback(ctx) // let them finish
		<-done
	}
	for i, name := range []string{"the stuck commit's", "the one queued behind it"} {
		if errs[i] == nil || took[i] > bound {
			t.Errorf("%s rejection: %v after %s; want an error within %s", name, errs[i], took[i].Round(time.Millisecond), bound)
		}
	}
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping succeeded right after commits timed out")
	}

	tx.Rollback(ctx)
	if err := s.Quarantine(ctx, rejection("after")); err != nil {
		t.Fatalf("a rejection after the lock was released: %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping after a commit succeeded again: %v", err)
	}
}

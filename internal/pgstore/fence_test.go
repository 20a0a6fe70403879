package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/recledger/recledger/internal/engine"
)

// TestSaveIsFenced: a step computed on a watermark that is not the stored
// one is refused (engine.ErrMoved) and writes nothing; of two projectors
// saving from the same watermark at once, one wins and the other is
// refused, so no feed seq is given twice.
func TestSaveIsFenced(t *testing.T) {
	url := os.Getenv("RECLEDGER_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("set RECLEDGER_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run the PostgreSQL tests")
	}
	ctx := context.Background()
	schema := fmt.Sprintf("t_%d_%x", os.Getpid(), rand.Uint64())
	s, err := Open(ctx, url, Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		if conn, err := pgx.Connect(ctx, url); err == nil {
			conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`)
			conn.Close(ctx)
		}
	})
	step := func(from engine.Position, logID int64) *engine.Batch {
		to := engine.Position{Seq: from.Seq + 1, Log: engine.LogPos{Tx: 1, ID: logID}}
		return &engine.Batch{From: from, To: to, Events: []engine.Logged{{Seq: to.Seq, Log: to.Log}}}
	}
	feed := func() int {
		var n int
		if err := s.pool.QueryRow(ctx, `SELECT COUNT(*) FROM feed`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	if err := s.drv.Save(ctx, step(engine.Position{Seq: 7}, 1)); !errors.Is(err, engine.ErrMoved) {
		t.Errorf("a step from a watermark never stored: %v, want ErrMoved", err)
	}
	if n := feed(); n != 0 {
		t.Errorf("the refused step wrote %d feed rows", n)
	}

	var (
		wg   sync.WaitGroup
		errs [2]error
	)
	for i := range errs {
		wg.Go(func() { errs[i] = s.drv.Save(ctx, step(engine.Position{}, int64(10+i))) })
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, engine.ErrMoved):
			t.Errorf("the losing projector: %v, want ErrMoved", err)
		}
	}
	if won != 1 || feed() != 1 {
		t.Errorf("two projectors from one watermark: %d saved, %d feed rows; want 1 and 1 (%v)", won, feed(), errs)
	}
	if p, err := s.drv.Watermark(ctx); err != nil || p.Seq != 1 {
		t.Errorf("watermark %+v, %v; want seq 1", p, err)
	}
}

package pgstore_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
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
func databaseURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("RECLEDGER_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("set RECLEDGER_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run the PostgreSQL tests")
	}
	return url
}

// freshSchema returns a schema name no other test uses, dropped afterwards.
func freshSchema(t testing.TB, url string) string {
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

func open(t testing.TB, url, schema string) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(context.Background(), url, pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestTwoInstancesOneLedger has 16 workers send the callbacks of 60
// recordings to two instances on one database at once, alternating the
// instance callback by callback, with redeliveries (some to the other
// instance), while a reader on a third instance follows the feed. A 17th
// worker plays an instance whose commits are slow: it logs each callback
// in a transaction it keeps open a while, so that commits of the others
// with later transaction ids land before its row. The
// reader must see every callback exactly once, at seqs 1..N without gaps;
// each worker's callbacks in the order it sent them (each Append returned
// before the next was sent, so that is commit order); the first copy of
// each callback as the original and every other copy marked duplicate;
// and both instances must show every recording as Apply gives it.
func TestTwoInstancesOneLedger(t *testing.T) { twoInstances(t, false) }

// TestTwoInstancesProjectorKilled is TestTwoInstancesOneLedger with the
// projector's session terminated every 100 ms while the callbacks arrive:
// the lock moves between the instances (or back), and still every callback
// is projected once, in commit order.
func TestTwoInstancesProjectorKilled(t *testing.T) { twoInstances(t, true) }

func twoInstances(t *testing.T, killProjector bool) {
	url := databaseURL(t)
	schema := freshSchema(t, url)
	a, b := open(t, url, schema), open(t, url, schema)
	c := open(t, url, schema) // the reader's instance: it appends nothing
	at := time.Now()
	const workers = 16
	all := map[string][]rc.Callback{}
	sends := make([][]rc.Callback, workers+1) // per worker, in sending order; the last is the slow one
	total := 0
	for i := 60; i < 63; i++ {
		id := fmt.Sprintf("multi-%02d", i)
		all[id] = ledgertest.Recording(t, id, 1, false)
		sends[workers] = append(sends[workers], all[id]...)
	}
	for i := range 60 {
		id := fmt.Sprintf("multi-%02d", i)
		cbs := ledgertest.Recording(t, id, 1+i%4, i%5 == 0)
		all[id] = cbs
		w := i % workers
		for j, cb := range cbs {
			sends[w] = append(sends[w], cb)
			if (i+j)%3 == 0 { // a redelivery, at once
				sends[w] = append(sends[w], cb)
			}
		}
		if i%4 == 0 { // the whole recording again, later
			sends[w] = append(sends[w], cbs...)
		}
	}
	for _, ws := range sends {
		total += len(ws)
	}

	// The reader follows the feed the way GET /v1/events does.
	var feed []feedEntry
	readerDone := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a bound, not a speed: a lost row never comes
		defer cancel()
		var last int64
		for len(feed) < total {
			evs, err := c.Events(ctx, last, 50)
			if err != nil {
				readerDone <- err
				return
			}
			for _, e := range evs {
				if e.Seq != last+1 {
					readerDone <- fmt.Errorf("after seq %d the feed gave %d", last, e.Seq)
					return
				}
				feed = append(feed, feedEntry{e.Seq, e.RecordID, string(e.Body), e.Duplicate})
				last = e.Seq
			}
			if len(evs) == 0 {
				select {
				case <-ctx.Done():
					readerDone <- fmt.Errorf("the reader saw %d of %d callbacks: %w", len(feed), total, ctx.Err())
					return
				case <-time.After(2 * time.Millisecond):
				}
			}
		}
		readerDone <- nil
	}()

	var wg sync.WaitGroup
	stopKilling := make(chan struct{})
	killed := make(chan int, 1)
	go func() {
		n := 0
		defer func() { killed <- n }()
		if !killProjector {
			return
		}
		conn, err := pgx.Connect(context.Background(), url)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(context.Background())
		for {
			select {
			case <-stopKilling:
				return
			case <-time.After(100 * time.Millisecond):
			}
			var k int
			if err := conn.QueryRow(context.Background(), `SELECT COUNT(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory'
				AND classid = hashtext('recledger_projector')::oid AND objid = hashtext($1)::oid AND objsubid = 2`, schema).Scan(&k); err != nil {
				t.Error(err)
				return
			}
			n += k
		}
	}()
	for w := range workers {
		wg.Go(func() {
			for i, cb := range sends[w] {
				s := a
				if (w+i)%2 == 1 {
					s = b
				}
				if _, err := s.Append(context.Background(), ledger.Incoming{Callback: cb, ReceivedAt: at}); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		conn, err := pgx.Connect(context.Background(), url)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), `SET search_path TO `+pgx.Identifier{schema}.Sanitize()); err != nil {
			t.Error(err)
			return
		}
		for _, cb := range sends[workers] {
			err := pgx.BeginFunc(context.Background(), conn, func(tx pgx.Tx) error {
				if _, err := tx.Exec(context.Background(), `INSERT INTO log (received_at, body) VALUES ($1, $2)`, at.UnixMilli(), cb.Raw); err != nil {
					return err
				}
				time.Sleep(100 * time.Millisecond) // the others commit meanwhile
				return nil
			})
			if err != nil {
				t.Errorf("slow append: %v", err)
				return
			}
		}
	})
	wg.Wait()
	close(stopKilling)
	if n := <-killed; killProjector {
		t.Logf("terminated the projector's session %d times", n)
		if n == 0 {
			t.Error("the projector was never killed")
		}
	}
	if err := <-readerDone; err != nil {
		t.Fatal(err)
	}
	// Nothing more than was sent: the feed ends where the sends do.
	if more, err := c.Events(context.Background(), int64(total), 10); err != nil || len(more) != 0 {
		t.Errorf("after the %d callbacks sent the feed holds %d more (%v)", total, len(more), err)
	}

	byRecord := map[string][]feedEntry{}
	for _, e := range feed {
		byRecord[e.RecordID] = append(byRecord[e.RecordID], e)
	}
	for w, ws := range sends {
		// The worker's recordings' events, in feed order, are its sends.
		mine := map[string]bool{}
		for _, cb := range ws {
			mine[cb.RecordID] = true
		}
		var got []feedEntry
		for _, e := range feed {
			if mine[e.RecordID] {
				got = append(got, e)
			}
		}
		if len(got) != len(ws) {
			t.Errorf("worker %d sent %d callbacks; the feed holds %d of its recordings", w, len(ws), len(got))
			continue
		}
		logged := map[string]bool{}
		for i, e := range got {
			if e.Body != string(ws[i].Raw) {
				t.Errorf("worker %d: its callback #%d is at seq %d behind one it sent later", w, i, e.Seq)
				break
			}
			if e.Duplicate != logged[e.Body] {
				t.Errorf("worker %d: callback #%d at seq %d: duplicate %v, want %v", w, i, e.Seq, e.Duplicate, logged[e.Body])
			}
			logged[e.Body] = true
		}
	}
	for id, cbs := range all {
		want := fold(cbs, at)
		for name, s := range map[string]*pgstore.Store{"a": a, "b": b, "c": c} {
			got, err := s.Recording(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("%s on instance %s (-Apply +stored):\n%s", id, name, diff)
			}
		}
		evs, err := a.RecordingEvents(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(byRecord[id], eventsSeen(evs)); diff != "" {
			t.Errorf("%s: its events differ from the feed's (-feed +RecordingEvents):\n%s", id, diff)
		}
	}
	for name, s := range map[string]*pgstore.Store{"a": a, "b": b, "c": c} {
		st, err := s.Stats(context.Background(), at)
		if err != nil {
			t.Fatal(err)
		}
		if st.ProjectedSeq != int64(total) || st.LoggedSeq != int64(total) {
			t.Errorf("instance %s: projected %d, logged %d; want %d both", name, st.ProjectedSeq, st.LoggedSeq, total)
		}
	}
}

// feedEntry is what TestTwoInstancesOneLedger compares of an event.
type feedEntry struct {
	Seq       int64
	RecordID  string
	Body      string
	Duplicate bool
}

func eventsSeen(evs []ledger.Event) []feedEntry {
	out := make([]feedEntry, len(evs))
	for i, e := range evs {
		out[i] = feedEntry{e.Seq, e.RecordID, string(e.Body), e.Duplicate}
	}
	return out
}

func fold(cbs []rc.Callback, at time.Time) ledger.State {
	var st ledger.State
	for _, cb := range cbs {
		st = ledger.Apply(st, cb, at.UnixMilli())
	}
	return st
}

// TestReplayMemoryIsShared checks a signature logged by one instance is
// known to the other. Remember answers from the instance's own memory, so
// the other instance's Remember may say ReplayFirst: the check happens when
// the callback commits, and the signature is shared (durable) only once
// its callback is. So this goes through Append, as ingest does.
func TestReplayMemoryIsShared(t *testing.T) {
	url := databaseURL(t)
	schema := freshSchema(t, url)
	a, b := open(t, url, schema), open(t, url, schema)
	ctx := context.Background()
	now := time.Now()
	until := now.Add(time.Minute)
	bodyA := ledgertest.Callback(t, "rec-a", rc.TypeStart, 0, "", 200)
	bodyB := ledgertest.Callback(t, "rec-b", rc.TypeStart, 0, "", 200)
	remember := func(s *pgstore.Store, k rc.ReplayKey, cb rc.Callback, until time.Time, want rc.ReplayVerdict) {
		t.Helper()
		if v, err := s.Remember(ctx, k, sha256.Sum256(cb.Raw), until); err != nil || v != want {
			t.Fatalf("Remember %s with %s = %v, %v; want %v", k.Nonce, cb.RecordID, v, err, want)
		}
	}
	appendCb := func(s *pgstore.Store, cb rc.Callback) error {
		_, err := s.Append(ctx, ledger.Incoming{Callback: cb, ReceivedAt: now})
		return err
	}

	// A logs a signed callback; B, which has not heard of it, accepts the
	// signature with another body, but its Append is refused.
	k := rc.ReplayKey{AppKey: "app", Nonce: "n", Timestamp: "1530027865231"}
	remember(a, k, bodyA, until, rc.ReplayFirst)
	if err := appendCb(a, bodyA); err != nil {
		t.Fatal(err)
	}
	remember(b, k, bodyB, until, rc.ReplayFirst)
	if err := appendCb(b, bodyB); !errors.Is(err, rc.ErrReplayed) {
		t.Fatalf("B appends another body under A's signature: %v; want rc.ErrReplayed", err)
	}
	// B has learnt the signature's body from the refusal.
	remember(b, k, bodyB, until, rc.ReplayOtherBody)
	remember(b, k, bodyA, until, rc.ReplaySameBody)
	// The same request redelivered to B is logged (a duplicate).
	if err := appendCb(b, bodyA); err != nil {
		t.Errorf("B appends a redelivery of A's request: %v", err)
	}

	// Both instances accept a signature at once, each with its own body:
	// the first commit wins.
	k2 := rc.ReplayKey{AppKey: "app", Nonce: "n2", Timestamp: "1530027865231"}
	remember(a, k2, bodyB, until, rc.ReplayFirst)
	remember(b, k2, bodyA, until, rc.ReplayFirst)
	if err := appendCb(b, bodyA); err != nil {
		t.Fatal(err)
	}
	if err := appendCb(a, bodyB); !errors.Is(err, rc.ErrReplayed) {
		t.Errorf("A appends after B committed the signature with another body: %v; want rc.ErrReplayed", err)
	}

	// An expired signature is taken over.
	k3 := rc.ReplayKey{AppKey: "app", Nonce: "n3", Timestamp: "1530027865231"}
	remember(a, k3, bodyA, now.Add(-time.Second), rc.ReplayFirst)
	if err := appendCb(a, bodyA); err != nil {
		t.Fatal(err)
	}
	remember(b, k3, bodyB, until, rc.ReplayFirst)
	if err := appendCb(b, bodyB); err != nil {
		t.Errorf("B appends under a signature whose memory expired: %v", err)
	}

	// A third instance, started now, knows the logged signatures at once.
	c := open(t, url, schema)
	remember(c, k, bodyB, until, rc.ReplayOtherBody)
	remember(c, k2, bodyB, until, rc.ReplayOtherBody)
	remember(c, k3, bodyA, until, rc.ReplayOtherBody)

	// What was logged: A's body twice under k (first delivery and
	// redelivery), then k2's and k3's winners; nothing refused.
	if _, err := a.Events(ctx, 0, 100); err != nil { // waits for A's rows
		t.Fatal(err)
	}
	if _, err := b.Events(ctx, 0, 100); err != nil { // and B's
		t.Fatal(err)
	}
	evs, err := c.Events(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		got = append(got, e.RecordID)
	}
	want := []string{"rec-a", "rec-a", "rec-a", "rec-a", "rec-b"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("logged callbacks (-want +got):\n%s", diff)
	}
}

// TestReplayRaceAcrossInstances has two instances append, at once, callbacks
// signed with the same signatures but different bodies, in batches that
// overlap: each signature's row is judged on its latest version (a
// commit the other instance made after this statement began included), so
// exactly one body of each pair is logged and the other refused, never
// both, never neither.
func TestReplayRaceAcrossInstances(t *testing.T) {
	url := databaseURL(t)
	schema := freshSchema(t, url)
	const n = 60
	// Each instance commits its n callbacks in one batch, the two batches
	// at about the same time.
	var stores []*pgstore.Store
	for range 2 {
		s, err := pgstore.Open(context.Background(), url, pgstore.Options{Schema: schema, MaxBatch: n, MaxWait: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	ctx := context.Background()
	now := time.Now()
	errs := make([][2]error, n)
	var wg sync.WaitGroup
	for i := range n {
		k := rc.ReplayKey{AppKey: "app", Nonce: fmt.Sprint("n", i), Timestamp: "1530027865231"}
		for j, s := range stores {
			cb := ledgertest.Callback(t, fmt.Sprintf("rec-%d-%d", i, j), rc.TypeStart, 0, "", 200)
			if v, err := s.Remember(ctx, k, sha256.Sum256(cb.Raw), now.Add(time.Minute)); err != nil || v != rc.ReplayFirst {
				t.Fatalf("Remember = %v, %v", v, err)
			}
			wg.Go(func() {
				_, errs[i][j] = s.Append(ctx, ledger.Incoming{Callback: cb, ReceivedAt: now})
			})
		}
	}
	wg.Wait()
	logged := 0
	for i, e := range errs {
		switch {
		case e[0] == nil && errors.Is(e[1], rc.ErrReplayed), e[1] == nil && errors.Is(e[0], rc.ErrReplayed):
			logged++
		default:
			t.Errorf("signature %d: appends answered %v and %v; want one logged and one rc.ErrReplayed", i, e[0], e[1])
		}
	}
	for _, s := range stores { // each waits for its own callbacks' projection
		evs, err := s.Events(ctx, 0, 2*n)
		if err != nil {
			t.Fatal(err)
		}
		if s == stores[1] && len(evs) != logged {
			t.Errorf("%d events logged, want %d", len(evs), logged)
		}
	}
}

// TestRefusedReplayIsNotCounted: a callback refused because another
// instance logged its signature with another body was not logged, so the
// commit report (the committed-callbacks metric) does not count it.
func TestRefusedReplayIsNotCounted(t *testing.T) {
	url := databaseURL(t)
	schema := freshSchema(t, url)
	a := open(t, url, schema)
	var committed atomic.Int64
	b, err := pgstore.Open(context.Background(), url, pgstore.Options{Schema: schema,
		OnCommit: func(callbacks, _ int, _ time.Duration, err error) {
			if err == nil {
				committed.Add(int64(callbacks))
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ctx, now := context.Background(), time.Now()
	k := rc.ReplayKey{AppKey: "app", Nonce: "counted", Timestamp: "1530027865231"}
	bodyA := ledgertest.Callback(t, "rec-a", rc.TypeStart, 0, "", 200)
	bodyB := ledgertest.Callback(t, "rec-b", rc.TypeStart, 0, "", 200)
	if _, err := a.Remember(ctx, k, sha256.Sum256(bodyA.Raw), now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Append(ctx, ledger.Incoming{Callback: bodyA, ReceivedAt: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Remember(ctx, k, sha256.Sum256(bodyB.Raw), now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Append(ctx, ledger.Incoming{Callback: bodyB, ReceivedAt: now}); !errors.Is(err, rc.ErrReplayed) {
		t.Fatalf("B's append: %v, want rc.ErrReplayed", err)
	}
	if _, err := b.Append(ctx, ledger.Incoming{Callback: ledgertest.Callback(t, "rec-c", rc.TypeStart, 0, "", 200), ReceivedAt: now}); err != nil {
		t.Fatal(err)
	}
	if n := committed.Load(); n != 1 {
		t.Errorf("B reported %d callbacks committed, want 1 (the refused one is not)", n)
	}
}

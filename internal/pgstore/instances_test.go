package pgstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/ledger/ledgertest"
	"github.com/recledger/recledger/internal/pgstore"
	"github.com/recledger/recledger/rc"
)

// TestProjectorHandover kills the projecting instance (its projector
// stops, and its lock's session is terminated as a dead process's would
// end): the other instance takes over and projects new callbacks, the feed
// continuing without a gap.
func TestProjectorHandover(t *testing.T) {
	url := databaseURL(t)
	schema := freshSchema(t, url)
	ctx := context.Background()
	a := open(t, url, schema) // opened first: it projects
	b := open(t, url, schema)
	if !pgstore.Projecting(a) || pgstore.Projecting(b) {
		t.Fatalf("projecting: a %v, b %v; want a only", pgstore.Projecting(a), pgstore.Projecting(b))
	}
	at := time.Now()
	first := ledgertest.Recording(t, "before", 2, false)
	for i, cb := range first {
		s := []*pgstore.Store{a, b}[i%2]
		if _, err := s.Append(ctx, ledger.Incoming{Callback: cb, ReceivedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Recording(ctx, "before"); err != nil {
		t.Fatal(err)
	}

	pgstore.Crash(a)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var killed int
	if err := conn.QueryRow(ctx, `SELECT COUNT(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory'
		AND classid = hashtext('recledger_projector')::oid AND objid = hashtext($1)::oid AND objsubid = 2`, schema).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Fatalf("terminated %d holders of the projector's lock, want 1", killed)
	}

	after := ledgertest.Recording(t, "after", 2, false)
	for _, cb := range after {
		if _, err := b.Append(ctx, ledger.Incoming{Callback: cb, ReceivedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	// A bound, not a speed: without a handover nothing projects them.
	wait, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	got, err := b.Recording(wait, "after")
	if err != nil {
		t.Fatalf("the surviving instance after the projector died: %v", err)
	}
	if diff := cmp.Diff(fold(after, at), got); diff != "" {
		t.Errorf("after the handover (-Apply +stored):\n%s", diff)
	}
	if !pgstore.Projecting(b) {
		t.Error("b does not say it projects")
	}
	evs, err := b.Events(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(first) + len(after); len(evs) != n || evs[n-1].Seq != int64(n) {
		t.Errorf("the feed holds %d events, want %d at seqs 1..%d", len(evs), n, n)
	}
}

// TestReadsAreFresh: on the instance that acknowledged a callback, a read
// right after the acknowledgement sees it, whether that instance projects
// or not; on the other instance, a read sees it within a second.
func TestReadsAreFresh(t *testing.T) {
	url := databaseURL(t)
	schema := freshSchema(t, url)
	ctx := context.Background()
	leader := open(t, url, schema)
	follower := open(t, url, schema)
	at := time.Now()
	for _, tt := range []struct {
		name        string
		acks, other *pgstore.Store
	}{
		{"acknowledged by the projecting instance", leader, follower},
		{"acknowledged by the other instance", follower, leader},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cb := ledgertest.Callback(t, "fresh-"+tt.name, rc.TypeStart, 0, "", 200)
			if _, err := tt.acks.Append(ctx, ledger.Incoming{Callback: cb, ReceivedAt: at}); err != nil {
				t.Fatal(err)
			}
			if _, err := tt.acks.Recording(ctx, cb.RecordID); err != nil {
				t.Errorf("right after the acknowledgement, on its instance: %v", err)
			}
			evs, err := tt.acks.LatestEvents(ctx, 1)
			if err != nil || len(evs) != 1 || evs[0].RecordID != cb.RecordID {
				t.Errorf("the latest event right after the acknowledgement: %+v, %v", evs, err)
			}
			// Another callback, read on the other instance only (a read on
			// the acknowledging one would hurry the projector along).
			cb = ledgertest.Callback(t, "fresh-other-"+tt.name, rc.TypeStart, 0, "", 200)
			if _, err := tt.acks.Append(ctx, ledger.Incoming{Callback: cb, ReceivedAt: at}); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(time.Second) // the rule the docs promise
			for {
				_, err := tt.other.Recording(ctx, cb.RecordID)
				if err == nil {
					break
				}
				if !errors.Is(err, ledger.ErrNotFound) || time.Now().After(deadline) {
					t.Fatalf("on the other instance after a second: %v", err)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

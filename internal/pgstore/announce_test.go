package pgstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/engine"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/ledger/ledgertest"
)

// TestAnnounceFileOnFollower: only the projecting instance announces a
// file's verification; the other says so (engine.ErrNotLeader) and writes
// nothing, and the storage verifier retries it there.
func TestAnnounceFileOnFollower(t *testing.T) {
	url := databaseURL(t)
	schema := freshSchema(t, url)
	ctx := context.Background()
	leader := open(t, url, schema)
	follower := open(t, url, schema)
	leader.Announce(true)
	follower.Announce(true)
	for _, cb := range ledgertest.Recording(t, "fa", 1, false) {
		if _, err := leader.Append(ctx, ledger.Incoming{Callback: cb, ReceivedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := leader.Recording(ctx, "fa"); err != nil {
		t.Fatal(err)
	}
	if !leader.Projecting() || follower.Projecting() {
		t.Fatalf("projecting: leader %v, follower %v", leader.Projecting(), follower.Projecting())
	}
	v := ledger.Verification{State: ledger.VerifyMissing}
	name := "sess_room_u1_fa_1.mp4"
	if err := follower.AnnounceFile(ctx, "fa", name, delivery.FileMissing, v); !errors.Is(err, engine.ErrNotLeader) {
		t.Fatalf("the follower announced: %v, want ErrNotLeader", err)
	}
	has := func() bool {
		evs, err := leader.Delivery().Outbox(ctx, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Type == delivery.FileMissing {
				return true
			}
		}
		return false
	}
	if has() {
		t.Fatal("the follower's refused announcement is in the outbox")
	}
	if err := leader.AnnounceFile(ctx, "fa", name, delivery.FileMissing, v); err != nil {
		t.Fatal(err)
	}
	if !has() {
		t.Fatal("the leader's announcement is not in the outbox")
	}
}

package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/ledger/ledgertest"
	"github.com/recledger/recledger/internal/pgstore"
)

// TestForgetOnAnotherInstance: a recording removed by an instance that
// does not project stays removed although the projector had it cached:
// the projector's next Save is fenced on the count of removals, so a
// later callback of it makes the recording again from that callback
// alone, not from the cached record.
func TestForgetOnAnotherInstance(t *testing.T) {
	url := databaseURL(t)
	schema := freshSchema(t, url)
	ctx := context.Background()
	a := open(t, url, schema) // opened first: it projects
	b := open(t, url, schema)
	if !pgstore.Projecting(a) {
		t.Fatal("a does not project")
	}
	at := time.Now().Add(-time.Hour)
	cbs := ledgertest.UserRecording(t, "cached", "leaver", 2)
	for _, cb := range cbs {
		if _, err := a.Append(ctx, ledger.Incoming{Callback: cb, ReceivedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Recording(ctx, "cached"); err != nil { // projected, and cached by a's engine
		t.Fatal(err)
	}
	got, err := b.Forget(ctx, []string{"cached"})
	if err != nil || got.Recordings != 1 || got.LogRows != int64(len(cbs)) {
		t.Fatalf("Forget on b = %+v, %v; want 1 recording, %d rows", got, err, len(cbs))
	}
	late := cbs[len(cbs)-1]
	lateAt := time.Now()
	if _, err := a.Append(ctx, ledger.Incoming{Callback: late, ReceivedAt: lateAt}); err != nil {
		t.Fatal(err)
	}
	st, err := a.Recording(ctx, "cached")
	if err != nil {
		t.Fatal(err)
	}
	want := ledger.Apply(ledger.State{}, late, lateAt.UnixMilli())
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("after a late callback, the recording is not made from it alone (-want +got):\n%s", diff)
	}
}

package storesql

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// TestReplayMemoryPendingSignatures walks a signature through the memory:
// the verdicts, what Take gives the append of each body (the signature on
// a first use and on a redelivery, nothing for a body nobody signed), a
// refusal learnt from the store (Restore) and an expired entry taken over.
func TestReplayMemoryPendingSignatures(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_700_000_000, 0)
	m := NewReplayMemory(func() time.Time { return now })
	k := rc.ReplayKey{AppKey: "app", Nonce: "n", Timestamp: "1"}
	a, b := []byte(`{"a":1}`), []byte(`{"b":2}`)
	in := func(body []byte) *ledger.Incoming { return &ledger.Incoming{Callback: rc.Callback{Raw: body}} }
	remember := func(body []byte, until time.Time, want rc.ReplayVerdict) {
		t.Helper()
		if v, err := m.Remember(ctx, k, sha256.Sum256(body), until); err != nil || v != want {
			t.Fatalf("Remember %s = %v, %v; want %v", body, v, err, want)
		}
	}
	take := func(body []byte, want bool) {
		t.Helper()
		sig := m.Take(in(body))
		if (sig != nil) != want || sig != nil && (sig.Key != k || sig.Digest != sha256.Sum256(body)) {
			t.Fatalf("Take %s = %+v; want a signature: %v", body, sig, want)
		}
	}
	until := now.Add(time.Minute)
	remember(a, until, rc.ReplayFirst)
	take(b, false)
	take(a, true)
	take(a, false) // taken
	remember(a, until, rc.ReplaySameBody)
	remember(b, until, rc.ReplayOtherBody)
	take(b, false) // refused: nothing pending
	take(a, true)  // the redelivery carries the signature too

	// The store found the signature logged elsewhere with body b.
	sig := Signature{Key: k, Digest: sha256.Sum256(b)}
	m.Restore(sig.Compact(), until)
	remember(a, until, rc.ReplayOtherBody)
	remember(b, until, rc.ReplaySameBody)

	// Expired: a new signing of the same key is a first use.
	now = until
	remember(a, now.Add(time.Minute), rc.ReplayFirst)
	m.Restore(sig.Compact(), now) // expired: ignored
	remember(a, now.Add(time.Minute), rc.ReplaySameBody)
}

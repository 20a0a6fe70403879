package ledgertest

import (
	"context"
	"testing"
	"time"

	"github.com/recledger/recledger/rc"
)

// Replay memory: the signatures the verifier accepted.

func testReplayMemory(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	ctx := context.Background()
	now := time.Now()
	k := rc.ReplayKey{AppKey: "app", Nonce: "abc", Timestamp: "1530027865231"}
	steps := []struct {
		key    rc.ReplayKey
		digest byte
		want   rc.ReplayVerdict
	}{
		{k, 1, rc.ReplayFirst}, {k, 1, rc.ReplaySameBody}, {k, 2, rc.ReplayOtherBody},
		{rc.ReplayKey{AppKey: "app", Nonce: "abd", Timestamp: k.Timestamp}, 2, rc.ReplayFirst},
		{rc.ReplayKey{AppKey: "other", Nonce: "abc", Timestamp: k.Timestamp}, 2, rc.ReplayFirst},
	}
	for i, st := range steps {
		if v, err := s.Remember(ctx, st.key, [32]byte{st.digest}, now.Add(time.Minute)); err != nil || v != st.want {
			t.Errorf("step %d: Remember = %v, %v; want %v", i, v, err, st.want)
		}
	}
}

package simulator

import (
	"math/rand/v2"
	"testing"

	"github.com/recledger/recledger/rc"
)

// TestStreamsHaveDistinctUsers: even when the user ids drawn collide, the
// users of one recording are distinct, so no two of its files share a name.
func TestStreamsHaveDistinctUsers(t *testing.T) {
	several := 0
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 1))
		ss := streams(r, rc.Mode(0), func() string { return "same" })
		users := map[string]bool{}
		names := map[string]bool{}
		for _, s := range ss {
			users[s.UserID] = true
			name := s.UserID + "/" + s.Tag
			if names[name] {
				t.Fatalf("seed %d: streams %+v: two streams named %q", seed, ss, name)
			}
			names[name] = true
		}
		if len(users) > 1 {
			several++
		}
	}
	if several == 0 {
		t.Fatal("no recording with several users in 200 seeds: the test tests nothing")
	}
}

package ledgertest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// revocations is access.Revocations, which every store implements for the
// dashboard's logout (declared again here: the suite does not import the
// edges).
type revocations interface {
	RevokeSession(ctx context.Context, id string, until time.Time) error
	RevokedSessions(ctx context.Context, now time.Time) (map[string]time.Time, error)
}

// testRevokedSessions: a revoked session is listed until its expiry, on
// every instance (here: after a reopen), a second revocation of the same
// id keeps the later expiry, and expired ones are dropped.
func testRevokedSessions(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open()
	rv, ok := s.(revocations)
	if !ok {
		s.Close()
		t.Fatalf("%T does not keep revoked sessions (RevokeSession, RevokedSessions)", s)
	}
	now := time.Now().Truncate(time.Millisecond)
	long := strings.Repeat("x", 4096) // ids are 22 characters; the store must not care
	for id, until := range map[string]time.Time{
		"live-one": now.Add(time.Hour),
		"live-two": now.Add(12 * time.Hour),
		"expired":  now.Add(-time.Minute),
		long:       now.Add(time.Hour),
	} {
		if err := rv.RevokeSession(ctx, id, until); err != nil {
			t.Fatalf("RevokeSession(%.20s): %v", id, err)
		}
	}
	if err := rv.RevokeSession(ctx, "live-one", now.Add(time.Minute)); err != nil { // an earlier expiry: kept the later
		t.Fatal(err)
	}
	want := map[string]time.Time{"live-one": now.Add(time.Hour), "live-two": now.Add(12 * time.Hour), long: now.Add(time.Hour)}
	check := func(at time.Time, want map[string]time.Time) {
		t.Helper()
		got, err := rv.RevokedSessions(ctx, at)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
			t.Errorf("RevokedSessions at %v (-want +got):\n%s", at.Sub(now), diff)
		}
	}
	check(now, want)
	check(now.Add(2*time.Hour), map[string]time.Time{"live-two": now.Add(12 * time.Hour)})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open()
	defer s.Close()
	rv = s.(revocations)
	check(now, want)
}

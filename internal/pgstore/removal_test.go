package pgstore_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/ledger/ledgertest"
	"github.com/recledger/recledger/internal/pgstore"
	"github.com/recledger/recledger/internal/removal"
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
	// The watermarks a is told (its own too) would drop its cache before
	// the late callback's step, and hide a missing fence.
	pgstore.Deaf(a)
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

// TestEraseLeavesNoRow: after an erasure no row of any table of the
// schema holds the user's id, as text or as the hex of bytes, while the
// other user's id is still found (so the search finds what is there).
// Dead tuples stay in the files until VACUUM: see docs/operations.md.
func TestEraseLeavesNoRow(t *testing.T) {
	url := databaseURL(t)
	schema := freshSchema(t, url)
	ctx := context.Background()
	s := open(t, url, schema)
	s.Announce(true)
	const gone, kept = "leaver-7f3a9c", "keeper-51bd2e"
	at := time.Now().Add(-time.Hour)
	for i, id := range []string{"g1", "k1", "g2"} {
		user := []string{gone, kept, gone}[i]
		for _, cb := range ledgertest.UserRecording(t, id, user, 2) {
			if _, err := s.Append(ctx, ledger.Incoming{Callback: cb, ReceivedAt: at}); err != nil {
				t.Fatal(err)
			}
		}
	}
	body := []byte(`{"userId":"` + gone + `"}`)
	if err := s.Quarantine(ctx, ledger.Rejection{At: at.UnixMilli(), Status: 401, Reason: "bad_signature", Method: "POST",
		Path: "/v1/callbacks/recording", Header: http.Header{"X-User": {gone}}, Body: body, BodySize: int64(len(body))}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recording(ctx, "g2"); err != nil {
		t.Fatal(err)
	}
	// Storage checks of every file: their rows name the files too.
	for _, id := range []string{"g1", "k1", "g2"} {
		st, err := s.Recording(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for name := range st.Files {
			c := ledger.FileCheck{RecordID: id, FileName: name, AppKey: st.AppKey, URLHash: ledger.URLHash(name),
				Verification: ledger.Verification{State: ledger.VerifyPending}, NextAt: 1}
			if err := s.QueueVerifications(ctx, []ledger.FileCheck{c}, 1); err != nil {
				t.Fatal(err)
			}
			c.State, c.Error = ledger.VerifyMissing, "404 for "+name
			if _, err := s.SaveVerification(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := removal.Erase(ctx, s, gone, "", time.Now())
	if err != nil || got.Recordings != 2 || got.Quarantine != 1 {
		t.Fatalf("Erase = %+v, %v; want 2 recordings, 1 quarantine row", got, err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE'`, schema)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(tables) < 10 {
		t.Fatalf("tables of %s: %v, %v", schema, tables, err)
	}
	count := func(needle string) int {
		n := 0
		for _, table := range tables {
			var k int
			q := `SELECT COUNT(*) FROM ` + pgx.Identifier{schema, table}.Sanitize() + ` t WHERE strpos(t::text, $1) > 0 OR strpos(t::text, encode($2::bytea, 'hex')) > 0`
			if err := conn.QueryRow(ctx, q, needle, []byte(needle)).Scan(&k); err != nil {
				t.Fatalf("%s: %v", table, err)
			}
			if k > 0 && needle == gone {
				t.Errorf("table %s: %d rows still hold the erased id", table, k)
			}
			n += k
		}
		return n
	}
	count(gone)
	if count(kept) == 0 {
		t.Errorf("no row holds the kept id: the search finds nothing")
	}
}

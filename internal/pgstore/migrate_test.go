package pgstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/ledger/ledgertest"
	"github.com/recledger/recledger/rc"
)

// TestMigrateOldLog builds a database as version 5 left it (callbacks in
// the old events table, a redelivery among them, projections and activity
// counted by the old commit) and opens it: migration 6 moves the log, and
// the engine rebuilds the feed, the duplicate mark and the recording from
// it, keeping the quarantine's counts.
func TestMigrateOldLog(t *testing.T) {
	url := databaseURL(t)
	schema := freshSchema(t, url)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	q := pgx.Identifier{schema}.Sanitize()
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+q+`; SET search_path TO `+q+`;
		CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for v, name := range []string{"0001_init", "0002_activity", "0003_totals", "0004_quarantine_size", "0005_sessions"} {
		sql, err := os.ReadFile("migrations/" + name + ".sql")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, string(sql)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO schema_migrations VALUES ($1, $2, 0)`, v+1, name); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Now()
	cbs := ledgertest.Recording(t, "old", 2, false)
	logged := append(cbs[:2:2], cbs[0]) // start, segment, the start again
	logged = append(logged, cbs[2:]...)
	var old ledger.State
	for i, cb := range logged {
		dup := i == 2
		key := ledger.IdentityHash(cb.Key())
		if _, err := conn.Exec(ctx, `INSERT INTO events (seq, received_at, app_key, record_id, type, timestamp, file_name, code,
			error_message, duplicate, dedupe_key, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '', $9, $10, $11)`,
			i+1, at.UnixMilli(), cb.AppKey, cb.RecordID, int(cb.Type), cb.Timestamp, cb.Output.FileName, cb.Code, dup, key, cb.Raw); err != nil {
			t.Fatal(err)
		}
		if !dup {
			old = ledger.Apply(old, cb, at.UnixMilli())
		}
	}
	blob, err := json.Marshal(old) // version 1: ledger.State as JSON
	if err != nil {
		t.Fatal(err)
	}
	minute := ledger.MinuteOf(at.UnixMilli())
	for _, st := range []struct {
		sql  string
		args []any
	}{
		{`UPDATE feed SET last = $1`, []any{len(logged)}},
		{`INSERT INTO recordings (record_id, first_seq, app_key, room_id, session_id, user_id, mode, status, upload_state,
			first_seen_at, last_event_at, state) VALUES ('old', 1, '', '', '', '', 0, 'complete', 'complete', 0, 0, $1)`, []any{blob}},
		{`INSERT INTO totals VALUES ('complete', 'complete', 1, 0)`, nil},
		{`INSERT INTO activity VALUES ($1, $2, 1, 2)`, []any{minute, len(logged)}},
	} {
		if _, err := conn.Exec(ctx, st.sql, st.args...); err != nil {
			t.Fatal(err)
		}
	}

	s := open(t, url, schema)
	evs, err := s.Events(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != len(logged) {
		t.Fatalf("after migrating, %d events; want %d", len(evs), len(logged))
	}
	for i, e := range evs {
		if e.Seq != int64(i+1) || e.Duplicate != (i == 2) || string(e.Body) != string(logged[i].Raw) {
			t.Errorf("event %d: seq %d, duplicate %v, body %.40s; want seq %d, duplicate %v, the old body", i, e.Seq, e.Duplicate, e.Body, i+1, i == 2)
		}
	}
	got, err := s.Recording(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(old, got); diff != "" {
		t.Errorf("the rebuilt recording (-before +after):\n%s", diff)
	}
	revs, err := s.RecordingEvents(ctx, "old")
	if err != nil || len(revs) != len(logged) {
		t.Errorf("the recording's events: %d, %v; want %d", len(revs), err, len(logged))
	}
	st, err := s.Stats(ctx, at)
	if err != nil {
		t.Fatal(err)
	}
	if st.RecordingsByStatus[ledger.StatusComplete] != 1 || st.ProjectedSeq != int64(len(logged)) || st.LoggedSeq != st.ProjectedSeq {
		t.Errorf("stats after migrating: %+v", st)
	}
	act, err := s.Activity(ctx, minute)
	if want := []ledger.Minute{{Start: minute, Callbacks: int64(len(logged)), Duplicates: 1, Rejected: 2}}; err != nil || !cmp.Equal(act, want) {
		t.Errorf("activity after migrating: %+v, %v; want %+v", act, err, want)
	}
	// New callbacks follow the old ones.
	next := ledgertest.Callback(t, "new", rc.TypeStart, 0, "", 200)
	if _, err := s.Append(ctx, ledger.Incoming{Callback: next, ReceivedAt: at}); err != nil {
		t.Fatal(err)
	}
	evs, err = s.Events(ctx, int64(len(logged)), 10)
	if err != nil || len(evs) != 1 || evs[0].RecordID != "new" {
		t.Errorf("after the old events: %+v, %v; want the new one", evs, err)
	}
}

// TestVersion1RecordStillReads puts a record as the store wrote it before
// the engine (ledger.State as JSON) in the recordings table: it reads.
func TestVersion1RecordStillReads(t *testing.T) {
	url := databaseURL(t)
	schema := freshSchema(t, url)
	ctx := context.Background()
	s := open(t, url, schema)
	at := time.Now()
	want := fold(ledgertest.Recording(t, "v1", 2, false), at)
	blob, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, fmt.Sprintf(`INSERT INTO %s.recordings (record_id, first_seq, app_key, room_id, session_id, user_id, mode,
		status, upload_state, first_seen_at, last_event_at, state) VALUES ('v1', 1, '', '', '', '', 0, 'complete', 'complete', 0, 0, $1)`,
		pgx.Identifier{schema}.Sanitize()), blob); err != nil {
		t.Fatal(err)
	}
	got, err := s.Recording(ctx, "v1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("a version 1 record (-written +read):\n%s", diff)
	}
	page, err := s.ListRecordings(ctx, ledger.RecordingFilter{})
	if err != nil || len(page.Items) != 1 || !cmp.Equal(want, page.Items[0]) {
		t.Errorf("listed: %d items, %v; want the version 1 record", len(page.Items), err)
	}
}

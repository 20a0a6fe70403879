package sqlitestore_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/recledger/recledger/internal/engine"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/ledger/ledgertest"
	"github.com/recledger/recledger/internal/logbody"
	"github.com/recledger/recledger/internal/sqlitestore"
	"github.com/recledger/recledger/rc"
)

// TestUpgradeFromEventsTable opens a store as the build before the engine
// left it (the log in an events table with duplicates marked, the ledger
// holding states as plain JSON): the log keeps every row and its seq, and
// the engine derives the ledger again, duplicates included.
func TestUpgradeFromEventsTable(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "recledger.db")
	if err := sqlitestore.MigrateTo(ctx, path, sqlitestore.LogFile, 4); err != nil {
		t.Fatal(err)
	}
	if err := sqlitestore.MigrateTo(ctx, sqlitestore.LedgerPath(path), sqlitestore.LedgerFile, 5); err != nil {
		t.Fatal(err)
	}
	cbs := ledgertest.Recording(t, "old-rec", 2, false)
	cbs = append(cbs, cbs[1]) // a redelivery, marked duplicate by the old build
	at := time.UnixMilli(1_700_000_000_000)
	var want ledger.State
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for i, cb := range cbs {
		dup := i == len(cbs)-1
		if !dup {
			want = ledger.Apply(want, cb, at.UnixMilli()+int64(i))
		}
		if _, err := db.Exec(`INSERT INTO events (received_at, app_key, record_id, type, timestamp, file_name, code, error_message, duplicate, dedupe_key, body)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, at.UnixMilli()+int64(i), cb.AppKey, cb.RecordID, int(cb.Type), cb.Timestamp,
			cb.Output.FileName, cb.Code, cb.ErrorMessage, dup, ledger.IdentityHash(cb.Key()), cb.Raw); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	old, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	db, err = sql.Open("sqlite", "file:"+sqlitestore.LedgerPath(path))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO recordings (record_id, first_seq, app_key, room_id, session_id, user_id, mode, status, upload_state,
		first_seen_at, last_event_at, state) VALUES ('old-rec', 1, '', '', '', '', 0, 'complete', 'complete', 0, 0, ?)`, old); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE projection SET seq = ?`, len(cbs)); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Recording(ctx, "old-rec")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("recording after the upgrade (-want +got):\n%s", diff)
	}
	evs, err := s.RecordingEvents(ctx, "old-rec")
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != len(cbs) {
		t.Fatalf("%d events after the upgrade, want %d", len(evs), len(cbs))
	}
	for i, e := range evs {
		if e.Seq != int64(i+1) || e.Duplicate != (i == len(cbs)-1) || string(e.Body) != string(cbs[i].Raw) || e.Type != cbs[i].Type {
			t.Errorf("event %d = seq %d, duplicate %v, type %v; want seq %d, duplicate %v, the same body", i, e.Seq, e.Duplicate, e.Type, i+1, i == len(cbs)-1)
		}
	}
	a, err := s.Append(ctx, ledger.Incoming{Callback: ledgertest.Callback(t, "new-rec", rc.TypeStart, 0, "", 200), ReceivedAt: time.Now()})
	if err != nil || a.Seq != int64(len(cbs)+1) {
		t.Errorf("append after the upgrade = %+v, %v; want seq %d", a, err, len(cbs)+1)
	}
}

// TestLogStoresBodiesCompressed: the log keeps a body in logbody's form,
// smaller than the body, and gives the body back byte for byte.
func TestLogStoresBodiesCompressed(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "recledger.db")
	s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cb := ledgertest.Callback(t, "compressed", rc.TypeSegment, time.Minute, "sess_room_u1_compressed_1.mp4", 200)
	if _, err := s.Append(ctx, ledger.Incoming{Callback: cb, ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	evs, err := s.Events(ctx, 0, 10)
	if err != nil || len(evs) != 1 || string(evs[0].Body) != string(cb.Raw) {
		t.Fatalf("Events = %v, %v; want the body as appended", evs, err)
	}
	s.Close()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var stored []byte
	if err := db.QueryRow(`SELECT body FROM log`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if body, err := logbody.Decode(stored); err != nil || string(body) != string(cb.Raw) || len(stored) >= len(cb.Raw) {
		t.Errorf("stored %d bytes for a body of %d (decodes: %v)", len(stored), len(cb.Raw), err)
	}
}

// TestFileLookupChecksTheName: files are found by a hash of their name; a
// recording the hash points at that does not hold the name (a collision)
// is not an answer.
func TestFileLookupChecksTheName(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "recledger.db")
	s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cb := ledgertest.Callback(t, "holder", rc.TypeSegment, time.Minute, "real.mp4", 200)
	if _, err := s.Append(ctx, ledger.Incoming{Callback: cb, ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.FileRecordings(ctx, "real.mp4"); err != nil || len(got) != 1 {
		t.Fatalf("FileRecordings(real.mp4) = %d, %v; want the holder", len(got), err)
	}
	db, err := sql.Open("sqlite", "file:"+sqlitestore.LedgerPath(path))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO files (name_hash, recording) SELECT ?, id FROM recordings`, engine.NameHash("collides.mp4")); err != nil {
		t.Fatal(err)
	}
	if got, err := s.FileRecordings(ctx, "collides.mp4"); err != nil || len(got) != 0 {
		t.Errorf("FileRecordings(collides.mp4) = %d recordings, %v; want none", len(got), err)
	}
}

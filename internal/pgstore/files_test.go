package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/recledger/recledger/internal/engine"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/ledger/ledgertest"
	"github.com/recledger/recledger/rc"
)

// TestFileLookupChecksTheName: files are found by a hash of their name; a
// recording the hash points at that does not hold the name (a collision)
// is not an answer.
func TestFileLookupChecksTheName(t *testing.T) {
	url := databaseURL(t)
	schema := freshSchema(t, url)
	s := open(t, url, schema)
	ctx := context.Background()
	cb := ledgertest.Callback(t, "holder", rc.TypeSegment, time.Minute, "real.mp4", 200)
	if _, err := s.Append(ctx, ledger.Incoming{Callback: cb, ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.FileRecordings(ctx, "real.mp4"); err != nil || len(got) != 1 {
		t.Fatalf("FileRecordings(real.mp4) = %d, %v; want the holder", len(got), err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `INSERT INTO `+pgx.Identifier{schema, "files"}.Sanitize()+` (name_hash, record_id) VALUES ($1, 'holder')`,
		engine.NameHash("collides.mp4")); err != nil {
		t.Fatal(err)
	}
	if got, err := s.FileRecordings(ctx, "collides.mp4"); err != nil || len(got) != 0 {
		t.Errorf("FileRecordings(collides.mp4) = %d recordings, %v; want none", len(got), err)
	}
}

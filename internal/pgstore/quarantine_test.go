package pgstore_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/pgstore"
)

// TestQuarantineCapCountsHeaders quarantines 200 forged requests with about
// 60 KB of headers each (and a NUL in a header value and in the message,
// which PostgreSQL's JSONB and TEXT refuse as such) under a 1 MiB cap: the
// bytes the store reports, and the bytes its rows really hold, stay within
// the cap.
func TestQuarantineCapCountsHeaders(t *testing.T) {
	url := databaseURL(t)
	schema := freshSchema(t, url)
	const capBytes = 1 << 20
	s, err := pgstore.Open(context.Background(), url, pgstore.Options{Schema: schema, QuarantineMaxBytes: capBytes})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pad := strings.Repeat("p", 990)
	var wg sync.WaitGroup
	for n := range 200 {
		wg.Go(func() {
			h := http.Header{"Nul": {"a\x00b"}}
			for i := range 60 {
				h.Set(fmt.Sprintf("X-Pad-%02d", i), fmt.Sprintf("%d-%s", n, pad))
			}
			r := ledger.Rejection{At: time.Now().UnixMilli(), Status: 401, Reason: "bad_signature", Message: "forged\x00",
				Remote: "127.0.0.1:1", Method: "POST", Path: "/v1/callbacks/recording", Header: h, Body: []byte(`{}`), BodySize: 2}
			if err := s.Quarantine(context.Background(), r); err != nil {
				t.Errorf("Quarantine: %v", err)
			}
		})
	}
	wg.Wait()
	st, err := s.Stats(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// JSONB prints a space after each colon and comma: the text is a
	// little longer than the JSON the store counted.
	var held int64
	if err := conn.QueryRow(context.Background(), `SELECT COALESCE(SUM(length(body) + octet_length(header::text) + octet_length(message)
		+ octet_length(remote) + octet_length(path) + octet_length(reason) + octet_length(method)), 0) FROM `+pgx.Identifier{schema, "quarantine"}.Sanitize()).Scan(&held); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d rows, %d bytes reported, %d bytes held", st.QuarantineCount, st.QuarantineBytes, held)
	if st.QuarantineCount == 0 || st.QuarantineBytes > capBytes || held > capBytes*11/10 {
		t.Errorf("quarantine: %d rows, %d bytes reported, %d held; want some, within the %d-byte cap", st.QuarantineCount, st.QuarantineBytes, held, capBytes)
	}
}

// TestQuarantineSizeMigration: rows quarantined before migration 4 are
// measured by it, headers and all, so the cap counts them too.
func TestQuarantineSizeMigration(t *testing.T) {
	url := databaseURL(t)
	schema := freshSchema(t, url)
	s := open(t, url, schema)
	r := ledger.Rejection{Status: 401, Reason: "bad_signature", Header: http.Header{"X-Big": {strings.Repeat("h", 1000)}}, Body: []byte("{}")}
	if err := s.Quarantine(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	s.Close()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	q := pgx.Identifier{schema}.Sanitize()
	// Back to version 3: migration 6's tables give way to the old log's
	// (only what migration 6 reads and drops), and migrations 7 to 11 are undone.
	if _, err := conn.Exec(context.Background(), `ALTER TABLE `+q+`.quarantine DROP COLUMN stored_size, DROP COLUMN app_key; DROP TABLE `+q+`.revoked_sessions;
		DROP TABLE `+q+`.log, `+q+`.feed, `+q+`.projection;
		CREATE TABLE `+q+`.events (seq BIGINT PRIMARY KEY, received_at BIGINT NOT NULL, body BYTEA NOT NULL);
		CREATE TABLE `+q+`.feed (id INTEGER PRIMARY KEY);
		ALTER TABLE `+q+`.recordings DROP COLUMN due_at;
		DROP TABLE `+q+`.outbound, `+q+`.destinations, `+q+`.delivery_held, `+q+`.dead_letters, `+q+`.delivery_attempts;
		DROP INDEX `+q+`.recordings_not_uploaded_by_seq;
		DROP INDEX `+q+`.recordings_by_last_event; DROP TABLE `+q+`.erasures;
		DROP TABLE `+q+`.verifications, `+q+`.verification_cursor;
		DELETE FROM `+q+`.schema_migrations WHERE version >= 4`); err != nil {
		t.Fatal(err)
	}
	s = open(t, url, schema)
	st, err := s.Stats(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if st.QuarantineBytes < 1000 {
		t.Errorf("after migrating, the old row counts %d bytes; want its headers counted", st.QuarantineBytes)
	}
}

// Package storetest opens each ledger.Store backend for the tests of the
// packages that sit on a store (ingest, api, dashboard): SQLite in a temp
// dir always, PostgreSQL in a schema of its own where
// RECLEDGER_TEST_POSTGRES_URL names a database (CI sets it). Each store is
// closed, and its schema dropped, when the test ends.
package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/pgstore"
	"github.com/recledger/recledger/internal/sqlitestore"
)

// PostgresURLVar names the test database; tests that need it skip with a
// message naming it when it is unset (CI fails on such skips).
const PostgresURLVar = "RECLEDGER_TEST_POSTGRES_URL"

// SQLite opens a fresh SQLite store in a temp dir.
func SQLite(t testing.TB, o sqlitestore.Options) *sqlitestore.Store {
	t.Helper()
	s, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "recledger.db"), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Postgres opens a fresh PostgreSQL store in a schema of its own, or skips.
func Postgres(t testing.TB, o pgstore.Options) *pgstore.Store {
	t.Helper()
	return PostgresInstances(t, 1, o)[0]
}

// PostgresInstances opens n PostgreSQL stores on one fresh schema (n
// instances of recledger sharing a database), or skips.
func PostgresInstances(t testing.TB, n int, o pgstore.Options) []*pgstore.Store {
	t.Helper()
	url := os.Getenv(PostgresURLVar)
	if url == "" {
		t.Skip("set " + PostgresURLVar + " (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run this test on PostgreSQL too")
	}
	o.Schema = fmt.Sprintf("t_%d_%x", os.Getpid(), rand.Uint64())
	t.Cleanup(func() { // runs after the stores' own cleanups close them
		if conn, err := pgx.Connect(context.Background(), url); err == nil {
			conn.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+pgx.Identifier{o.Schema}.Sanitize()+` CASCADE`)
			conn.Close(context.Background())
		}
	})
	stores := make([]*pgstore.Store, n)
	for i := range stores {
		s, err := pgstore.Open(context.Background(), url, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	return stores
}

// Each runs test as a subtest on a fresh store of each backend, named
// "sqlite" and "postgres".
func Each(t *testing.T, test func(t *testing.T, backend string, s ledger.Store)) {
	t.Run("sqlite", func(t *testing.T) { test(t, "sqlite", SQLite(t, sqlitestore.Options{})) })
	t.Run("postgres", func(t *testing.T) { test(t, "postgres", Postgres(t, pgstore.Options{})) })
}

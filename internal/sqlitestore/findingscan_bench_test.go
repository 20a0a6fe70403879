package sqlitestore

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/recledger/recledger/internal/ledger/ledgertest"
)

// BenchmarkFindingScan: ledgertest.BenchFindingScan on SQLite
// (RECLEDGER_BENCH_FINDINGS recordings, default 10000).
func BenchmarkFindingScan(b *testing.B) {
	n := ledgertest.FindingScanSize(b)
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), Options{Synchronous: SyncNormal})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ledgertest.BenchFindingScan(b, s, n)
}

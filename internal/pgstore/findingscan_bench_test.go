package pgstore_test

import (
	"testing"

	"github.com/recledger/recledger/internal/ledger/ledgertest"
)

// BenchmarkFindingScan: ledgertest.BenchFindingScan on PostgreSQL
// (RECLEDGER_BENCH_FINDINGS recordings, default 10000).
func BenchmarkFindingScan(b *testing.B) {
	n := ledgertest.FindingScanSize(b)
	url := databaseURL(b)
	ledgertest.BenchFindingScan(b, open(b, url, freshSchema(b, url)), n)
}

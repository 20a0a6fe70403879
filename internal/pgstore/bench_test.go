package pgstore_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/ledger/ledgertest"
	"github.com/recledger/recledger/internal/pgstore"
	"github.com/recledger/recledger/rc"
)

// BenchmarkAppendParallel measures the acknowledged path (the group
// commit into the log) under concurrent callbacks, as ingest calls it.
func BenchmarkAppendParallel(b *testing.B) { benchAppend(b, 1, false) }

// BenchmarkSignedAppendParallel measures what a signed callback costs the
// store: Remember, then Append, whose commit logs the signature too.
func BenchmarkSignedAppendParallel(b *testing.B) { benchAppend(b, 1, true) }

// benchAppend appends from parallel goroutines to instances stores on one
// schema, in turn, remembering each callback's signature first if signed.
func benchAppend(b *testing.B, instances int, signed bool) {
	url := databaseURL(b)
	schema := freshSchema(b, url)
	stores := make([]*pgstore.Store, instances)
	for i := range stores {
		stores[i] = open(b, url, schema)
	}
	cbs := ledgertest.Recording(b, "bench", 4, false)
	var n atomic.Int64
	at := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			cb := cbs[i%int64(len(cbs))]
			cb.RecordID = fmt.Sprintf("bench-%d", i/int64(len(cbs)))
			s := stores[i%int64(instances)]
			if signed {
				k := rc.ReplayKey{AppKey: "app", Nonce: fmt.Sprint(i), Timestamp: "1530027865231"}
				if _, err := s.Remember(context.Background(), k, sha256.Sum256(cb.Raw), at.Add(time.Hour)); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := s.Append(context.Background(), ledger.Incoming{Callback: cb, ReceivedAt: at}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRememberParallel measures the replay memory as the verifier
// calls it: from RAM, no database call.
func BenchmarkRememberParallel(b *testing.B) {
	url := databaseURL(b)
	s := open(b, url, freshSchema(b, url))
	var n atomic.Int64
	until := time.Now().Add(time.Hour)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k := rc.ReplayKey{AppKey: "app", Nonce: fmt.Sprint(n.Add(1)), Timestamp: "1530027865231"}
			if _, err := s.Remember(context.Background(), k, [32]byte{1}, until); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAppendTwoInstances is BenchmarkAppendParallel with the
// callbacks spread over two instances on one database.
func BenchmarkAppendTwoInstances(b *testing.B) { benchAppend(b, 2, false) }

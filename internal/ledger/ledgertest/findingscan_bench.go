package ledgertest

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// FindingScanSize is how many recordings BenchFindingScan stores:
// RECLEDGER_BENCH_FINDINGS, or 10000.
func FindingScanSize(b *testing.B) int {
	n := 10_000
	if v := os.Getenv("RECLEDGER_BENCH_FINDINGS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	return n
}

// BenchFindingScan measures, on an empty store s, the scrape's count of
// recordings with findings (recledger_recordings_with_findings) at its
// worst: n recordings all still recording and past their limits, so every
// one is a candidate and has findings.
func BenchFindingScan(b *testing.B, s ledger.Store, n int) {
	long := time.Now().Add(-48 * time.Hour)
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range 64 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				body := fmt.Sprintf(`{"timestamp":%d,"type":1,"appKey":"app","recordId":"f%07d","roomId":"r%d","sessionId":"s%d","userId":"u","mode":0,"code":200,"errorMessage":"Success","config":{"slicesMin":30},"output":{"fileName":"s_r_u_1.mp4"}}`,
					long.UnixMilli(), i, i, i)
				cb, err := rc.Parse([]byte(body))
				if err != nil {
					b.Error(err)
					return
				}
				if _, err := s.Append(context.Background(), ledger.Incoming{Callback: cb, ReceivedAt: long}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	rules := ledger.FindingRules{}
	b.ResetTimer()
	for range b.N {
		f := ledger.RecordingFilter{Finding: ledger.FindingAny, Now: time.Now(), Limit: ledger.MaxPage}
		read := 0
		for {
			page, err := s.ListRecordings(context.Background(), f)
			if err != nil {
				b.Fatal(err)
			}
			for i := range page.Items {
				_ = rules.Findings(&page.Items[i], f.Now)
			}
			read += len(page.Items)
			if page.Next == "" {
				break
			}
			f.Cursor = page.Next
		}
		if read != n {
			b.Fatalf("read %d, want %d", read, n)
		}
	}
	b.ReportMetric(float64(n), "recordings")
}

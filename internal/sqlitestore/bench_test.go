package sqlitestore

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// BenchmarkAppend appends distinct callbacks (recordings of start, two
// segments, end and two uploads) from 64 goroutines, as ingest does under
// load: the figure is the store's share of the ingest path.
func BenchmarkAppend(b *testing.B) {
	for _, sync := range []string{SyncFull, SyncNormal} {
		b.Run(sync, func(b *testing.B) {
			var commits atomic.Int64
			s, err := Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), Options{Synchronous: sync,
				OnCommit: func(int, int, time.Duration, error) { commits.Add(1) }})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var worker atomic.Int64
			b.SetParallelism(32) // 64 goroutines on 2 cores
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				w := worker.Add(1)
				for i := 0; pb.Next(); i++ {
					cb := benchCallback(b, w, i)
					if _, err := s.Append(context.Background(), ledger.Incoming{Callback: cb, ReceivedAt: time.Now()}); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/float64(commits.Load()), "callbacks/commit")
		})
	}
}

func benchCallback(b *testing.B, w int64, i int) rc.Callback {
	types := []int{1, 2, 2, 3, 4, 4}
	rec, step := i/len(types), i%len(types)
	file := fmt.Sprintf("s%d_r%d_u_%d.mp4", w, rec, min(step, 3))
	out := fmt.Sprintf(`,"output":{"fileName":%q,"fileSize":1048576,"fileUrl":"http://oss/%s"}`, file, file)
	body := fmt.Sprintf(`{"timestamp":%d,"type":%d,"appKey":"app","recordId":"b-%d-%d","roomId":"r","sessionId":"s","userId":"u","mode":0,"code":200,"errorMessage":"Success"%s}`,
		1700000000000+int64(i), types[step], w, rec, out)
	cb, err := rc.Parse([]byte(body))
	if err != nil {
		b.Fatal(err)
	}
	return cb
}

package storagecheck

import (
	"context"
	"net/url"
	"strings"
	"testing"
)

// BenchmarkCheckS3 is checks per second against gofakes3 on loopback,
// with the per-host limits out of the way (the rate limit, 10 a second
// per host by default, is what bounds a real deployment): a plain URL
// (one HEAD) and a presigned one (HEAD refused, then a one-byte GET).
func BenchmarkCheckS3(b *testing.B) {
	srv, _, _ := newS3(b)
	u, _ := url.Parse(srv.URL)
	hosts, err := ParseHosts(u.Host)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct{ name, url string }{
		{"plain", srv.URL + "/rec/room1/a.mp4"},
		{"presigned", srv.URL + "/rec/room1/a.mp4?" + presigned},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c := New(Options{Hosts: hosts, PerHost: 64, RatePerHost: 1e9})
			want := int64(1000)
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if r := c.Check(context.Background(), tc.url, &want); r.State != Verified {
						b.Errorf("%s: %s %v", tc.name, r.State, r.Err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
			if strings.Contains(tc.url, "?") {
				b.ReportMetric(2, "requests/check")
			} else {
				b.ReportMetric(1, "requests/check")
			}
		})
	}
}

package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/recledger/recledger/rc"
)

type result struct {
	Requests  int
	Errors    int // non-200 answers and transport errors
	PerSecond float64
	P50ms     float64
	P99ms     float64
	MaxMs     float64
}

// workerIDs numbers workers across load runs, so every callback of the
// whole benchmark is distinct (a repeat would be a cheap duplicate).
var workerIDs atomic.Int64

// load runs clients workers posting signed callbacks (start, two segments,
// end, two uploads per recording), as bench/ingest does. With count > 0 it
// sends exactly count callbacks, unmeasured for speed; otherwise it measures
// duration after warmup.
func load(addr string, clients int, warmup, duration time.Duration, count int) result {
	transport := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	defer transport.CloseIdleConnections()
	var (
		measuring atomic.Bool
		stop      atomic.Bool
		left      atomic.Int64
		wg        sync.WaitGroup
		mu        sync.Mutex
		latencies []time.Duration
		errors    int
	)
	left.Store(int64(count))
	if count > 0 {
		measuring.Store(true)
	}
	signer := rc.Signer{AppKey: app, Secret: secret}
	url := "http://" + addr + "/v1/callbacks/recording"
	for range clients {
		w := int(workerIDs.Add(1))
		wg.Go(func() {
			var lat []time.Duration
			errs := 0
			for i := 0; !stop.Load(); i++ {
				if count > 0 && left.Add(-1) < 0 {
					break
				}
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(callback(w, i)))
				req.Header.Set("Content-Type", "application/json")
				signer.Apply(req, signer.Sign())
				t0 := time.Now()
				resp, err := client.Do(req)
				ok := err == nil && resp.StatusCode == 200
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if measuring.Load() {
					lat = append(lat, time.Since(t0))
					if !ok {
						errs++
					}
				}
			}
			mu.Lock()
			latencies = append(latencies, lat...)
			errors += errs
			mu.Unlock()
		})
	}
	began := time.Now()
	if count == 0 {
		time.Sleep(warmup)
		measuring.Store(true)
		began = time.Now()
		time.Sleep(duration)
		measuring.Store(false)
		stop.Store(true)
	}
	wg.Wait()
	elapsed := time.Since(began)
	if count == 0 {
		elapsed = duration
	}
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		if len(latencies) == 0 {
			return 0
		}
		return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds()) / 1000
	}
	return result{Requests: len(latencies), Errors: errors,
		PerSecond: float64(len(latencies)-errors) / elapsed.Seconds(), P50ms: pct(0.50), P99ms: pct(0.99), MaxMs: pct(1)}
}

var types = []int{1, 2, 2, 3, 4, 4}

// callback is worker w's i-th callback: recording i/6 of the worker, step i%6.
func callback(w, i int) []byte {
	rec, step := i/len(types), i%len(types)
	typ := types[step]
	ts := int64(1_700_000_000_000) + int64(i)*1000
	file := fmt.Sprintf("sess%d_room%d_user%d_%d.mp4", w, rec, w, ts-int64(step)*1000+int64(min(step, 3))*1000)
	out := ""
	switch typ {
	case 1:
		out = `,"config":{"trigger":1,"mixLayout":2,"slicesMin":30,"audioFormat":"aac","videoFormat":"mp4"},"output":{"fileName":"tmp.mp4","audioSample":48000,"videoResoulation":"640x480"}`
	case 2, 3:
		out = fmt.Sprintf(`,"output":{"fileName":%q,"fileSize":%d}`, file, 1<<20+i)
	case 4:
		out = fmt.Sprintf(`,"output":{"fileName":%q,"fileUrl":"http://oss/record/%s"}`, file, file)
	}
	return fmt.Appendf(nil, `{"timestamp":%d,"type":%d,"appKey":%q,"recordId":"bench-%d-%d","roomId":"room%d","sessionId":"sess%d","userId":"user%d","mode":0,"extra":"","code":200,"errorMessage":"Success"%s}`,
		ts, typ, app, w, rec, rec, w, w, out)
}

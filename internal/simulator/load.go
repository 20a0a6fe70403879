package simulator

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"time"
)

// LoadOptions shape a load run: callbacks at a steady rate, as a benchmark
// wants, instead of at their simulated times.
type LoadOptions struct {
	Rate        float64       // callbacks per second to offer; 0 sends as fast as the workers can
	Duration    time.Duration // how long to measure
	Concurrency int           // workers, each with one request in flight (default 64)
}

// LoadResult is what a load run measured.
type LoadResult struct {
	Offered   float64        `json:"offeredPerSecond"`
	Sent      int            `json:"sent"`
	Delivered int            `json:"delivered"`
	PerSecond float64        `json:"deliveredPerSecond"`
	Statuses  map[string]int `json:"statuses"`
	P50ms     float64        `json:"p50ms"`
	P90ms     float64        `json:"p90ms"`
	P99ms     float64        `json:"p99ms"`
	MaxMs     float64        `json:"maxMs"`
	Elapsed   time.Duration  `json:"elapsedNs"`
}

// Load sends the recordings' callbacks (recording after recording, each in
// its order) at the offered rate for the duration, one attempt each, and
// measures each answer's latency. It stops early if the callbacks run out.
func Load(ctx context.Context, d *Deliverer, appKey string, recs []Recording, o LoadOptions) LoadResult {
	if o.Concurrency <= 0 {
		o.Concurrency = 64
	}
	work := make(chan Callback, o.Concurrency)
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	go func() {
		defer close(work)
		var tick *time.Ticker
		if o.Rate > 0 {
			tick = time.NewTicker(time.Duration(float64(time.Second) / o.Rate))
			defer tick.Stop()
		}
		for _, rec := range recs {
			for _, c := range rec.Callbacks(appKey) {
				if tick != nil {
					select {
					case <-tick.C:
					case <-ctx.Done():
						return
					}
				}
				select {
				case work <- c:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	res := LoadResult{Offered: o.Rate, Statuses: map[string]int{}}
	var (
		mu        sync.Mutex
		latencies []time.Duration
		wg        sync.WaitGroup
	)
	began := time.Now()
	for range o.Concurrency {
		wg.Go(func() {
			for c := range work {
				start := time.Now()
				status := d.sendOnce(context.WithoutCancel(ctx), c.Body, d.Signer, d.Signer.Sign())
				took := time.Since(start)
				mu.Lock()
				res.Sent++
				res.Statuses[strconv.Itoa(status)]++
				if status == 200 {
					res.Delivered++
				}
				latencies = append(latencies, took)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(began)
	res.PerSecond = float64(res.Delivered) / res.Elapsed.Seconds()
	slices.Sort(latencies)
	if n := len(latencies); n > 0 {
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		res.P50ms, res.P90ms, res.P99ms, res.MaxMs = ms(latencies[n/2]), ms(latencies[n*9/10]), ms(latencies[n*99/100]), ms(latencies[n-1])
	}
	return res
}

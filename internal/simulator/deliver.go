package simulator

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/recledger/recledger/rc"
)

// RC's delivery rules as PROTOCOL.md records them: a 5 s timeout, two
// retries, and only a 200 counts.
const (
	DeliveryTimeout = 5 * time.Second
	Retries         = 2
)

// Deliverer posts callbacks to a receiver, signing every attempt anew.
type Deliverer struct {
	URL    string
	Signer rc.Signer
	Client *http.Client // DeliveryTimeout when nil
}

// Delivery is the outcome of one callback's delivery.
type Delivery struct {
	Attempts int
	Statuses []int // per attempt; 0 for a transport error or timeout
	OK       bool  // some attempt was answered 200
	Latency  time.Duration
}

// Deliver sends body until it is answered 200 or the retries run out.
func (d *Deliverer) Deliver(ctx context.Context, body []byte) Delivery {
	client := d.Client
	if client == nil {
		client = &http.Client{Timeout: DeliveryTimeout}
	}
	var out Delivery
	for attempt := 0; attempt <= Retries && ctx.Err() == nil; attempt++ {
		out.Attempts++
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(body))
		if err != nil {
			out.Statuses = append(out.Statuses, 0)
			break
		}
		req.Header.Set("Content-Type", "application/json")
		d.Signer.Apply(req, d.Signer.Sign())
		start := time.Now()
		resp, err := client.Do(req)
		status := 0
		if err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			status = resp.StatusCode
		}
		out.Statuses = append(out.Statuses, status)
		if status == http.StatusOK {
			out.OK, out.Latency = true, time.Since(start)
			return out
		}
	}
	return out
}

// RunOptions pace a run.
type RunOptions struct {
	// Speed compresses simulated time: 3600 plays an hour in a second.
	// Zero or less sends without waiting.
	Speed float64
	// Concurrency bounds the recordings played at once (default 64).
	Concurrency int
	// Progress, when set, is called after each delivery.
	Progress func(done, total int)
}

// Summary counts what a run did.
type Summary struct {
	Recordings int            `json:"recordings"`
	Callbacks  int            `json:"callbacks"`
	Delivered  int            `json:"delivered"` // answered 200
	Failed     int            `json:"failed"`    // never answered 200
	Requests   int            `json:"requests"`
	Retries    int            `json:"retries"`
	Statuses   map[string]int `json:"statuses"` // answers by HTTP status ("0": no answer)
	P50ms      float64        `json:"p50ms"`
	P99ms      float64        `json:"p99ms"`
	Elapsed    time.Duration  `json:"elapsedNs"`
}

// Run plays the recordings against d: each recording's callbacks in order,
// at their simulated times compressed by Speed, recordings in parallel.
func Run(ctx context.Context, d *Deliverer, appKey string, recs []Recording, o RunOptions) Summary {
	if o.Concurrency <= 0 {
		o.Concurrency = 64
	}
	var origin time.Time
	total := 0
	plans := make([][]Callback, len(recs))
	for i, r := range recs {
		plans[i] = r.Callbacks(appKey)
		total += len(plans[i])
		if origin.IsZero() || r.StartedAt.Before(origin) {
			origin = r.StartedAt
		}
	}
	began := time.Now()
	var (
		mu        sync.Mutex
		sum       = Summary{Recordings: len(recs), Callbacks: total, Statuses: map[string]int{}}
		latencies []time.Duration
		done      int
		wg        sync.WaitGroup
		slots     = make(chan struct{}, o.Concurrency)
	)
	for _, plan := range plans {
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			for _, c := range plan {
				if o.Speed > 0 {
					due := began.Add(time.Duration(float64(c.At.Sub(origin)) / o.Speed))
					select {
					case <-ctx.Done():
						return
					case <-time.After(time.Until(due)):
					}
				}
				if ctx.Err() != nil {
					return
				}
				res := d.Deliver(ctx, c.Body)
				mu.Lock()
				sum.Requests += res.Attempts
				sum.Retries += res.Attempts - 1
				for _, s := range res.Statuses {
					sum.Statuses[fmt.Sprint(s)]++
				}
				if res.OK {
					sum.Delivered++
					latencies = append(latencies, res.Latency)
				} else {
					sum.Failed++
				}
				done++
				if o.Progress != nil {
					o.Progress(done, total)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sum.Elapsed = time.Since(began)
	slices.Sort(latencies)
	if n := len(latencies); n > 0 {
		sum.P50ms = float64(latencies[n/2].Microseconds()) / 1000
		sum.P99ms = float64(latencies[n*99/100].Microseconds()) / 1000
	}
	return sum
}

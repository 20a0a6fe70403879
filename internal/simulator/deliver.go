package simulator

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
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
	Accepted rc.Signature // the signature of the attempt answered 200
}

// sendOnce sends body once, signed with sig, and returns the status (0 for
// no answer).
func (d *Deliverer) sendOnce(ctx context.Context, body []byte, signer rc.Signer, sig rc.Signature) int {
	client := d.Client
	if client == nil {
		client = &http.Client{Timeout: DeliveryTimeout}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	signer.Apply(req, sig)
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp.StatusCode
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
		sig := d.Signer.Sign()
		d.Signer.Apply(req, sig)
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
			out.OK, out.Latency, out.Accepted = true, time.Since(start), sig
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
	// Faults misbehave at their rates; Seed makes them repeatable.
	Faults Faults
	Seed   uint64
	// Progress, when set, is called after each step.
	Progress func(done, total int)
}

// Summary counts what a run did.
type Summary struct {
	Recordings int            `json:"recordings"`
	Callbacks  int            `json:"callbacks"` // sent at least once (drops excluded), unknown types included
	Delivered  int            `json:"delivered"` // answered 200
	Failed     int            `json:"failed"`    // never answered 200
	Dropped    int            `json:"dropped"`
	Injected   map[string]int `json:"injected"`   // fault requests sent, by fault
	Unexpected []string       `json:"unexpected"` // fault requests not answered as they should be
	Requests   int            `json:"requests"`
	Retries    int            `json:"retries"`
	Statuses   map[string]int `json:"statuses"` // answers by HTTP status ("0": no answer)
	P50ms      float64        `json:"p50ms"`
	P99ms      float64        `json:"p99ms"`
	Elapsed    time.Duration  `json:"elapsedNs"`
}

// Outcome is a run's summary and what the receiver acknowledged.
type Outcome struct {
	Summary
	// Acked holds, per recordId, the callbacks answered 200.
	Acked map[string][]Callback
}

// Run plays the recordings against d: each recording's callbacks (with
// the faults) in order, at their simulated times compressed by Speed,
// recordings in parallel.
func Run(ctx context.Context, d *Deliverer, appKey string, recs []Recording, o RunOptions) Outcome {
	if o.Concurrency <= 0 {
		o.Concurrency = 64
	}
	var origin time.Time
	plans := make([][]step, len(recs))
	total, planned := 0, 0
	scripted := InjectedFaults(recs) // the scenario's faults, then the run's
	for i, rec := range recs {
		cbs := rec.Callbacks(appKey)
		planned += len(cbs)
		plans[i] = script(rand.New(rand.NewPCG(o.Seed, uint64(i))), cbs, rec, appKey, o.Faults, scripted)
		total += len(plans[i])
		if origin.IsZero() || rec.StartedAt.Before(origin) {
			origin = rec.StartedAt
		}
	}
	began := time.Now()
	out := Outcome{
		Summary: Summary{Recordings: len(recs), Statuses: map[string]int{}, Injected: scripted},
		Acked:   map[string][]Callback{},
	}
	var (
		mu        sync.Mutex
		latencies []time.Duration
		done      int
		wg        sync.WaitGroup
		slots     = make(chan struct{}, o.Concurrency)
		sent      = map[string]bool{} // callbacks sent at least once, by body
	)
	forger := d.Signer
	forger.Secret = "not-the-secret"
	for _, plan := range plans {
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			var last rc.Signature // the latest signature the receiver accepted
			for _, st := range plan {
				if o.Speed > 0 {
					due := began.Add(time.Duration(float64(st.at.Sub(origin)) / o.Speed))
					select {
					case <-ctx.Done():
						return
					case <-time.After(time.Until(due)):
					}
				}
				if ctx.Err() != nil {
					return
				}
				c := st.callback
				var (
					res       Delivery
					fault     string
					want, got int
				)
				switch st.kind {
				case stepSend:
					res = d.Deliver(ctx, c.Body)
					if res.OK {
						last = res.Accepted
					}
				case stepForged:
					fault, want = "badsig", 401
					got = d.sendOnce(ctx, c.Body, forger, forger.Sign())
				case stepMalformed:
					fault, want = "malformed", 400
					got = d.sendOnce(ctx, c.Body[:len(c.Body)/2], d.Signer, d.Signer.Sign())
				case stepReplay:
					if last.Signature == "" {
						continue // nothing accepted yet to replay
					}
					fault, want = "replay", 401
					got = d.sendOnce(ctx, c.Body, d.Signer, last)
				}
				mu.Lock()
				if fault != "" {
					out.Injected[fault]++
					out.Requests++
					out.Statuses[strconv.Itoa(got)]++
					if got != want {
						out.Unexpected = append(out.Unexpected, fmt.Sprintf("%s for %s: answered %d, want %d", fault, c.RecordID, got, want))
					}
				} else {
					if !sent[string(c.Body)] {
						sent[string(c.Body)] = true
						out.Callbacks++
					} else {
						out.Injected["dup"]++
					}
					if c.Type == rc.Type(9) {
						out.Injected["unknown"]++
					}
					out.Requests += res.Attempts
					out.Retries += res.Attempts - 1
					for _, st := range res.Statuses {
						out.Statuses[strconv.Itoa(st)]++
					}
					if res.OK {
						out.Delivered++
						out.Acked[c.RecordID] = append(out.Acked[c.RecordID], c)
						latencies = append(latencies, res.Latency)
					} else {
						out.Failed++
					}
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
	out.Elapsed = time.Since(began)
	out.Dropped = planned + out.Injected["unknown"] - out.Callbacks
	slices.Sort(latencies)
	if n := len(latencies); n > 0 {
		out.P50ms = float64(latencies[n/2].Microseconds()) / 1000
		out.P99ms = float64(latencies[n*99/100].Microseconds()) / 1000
	}
	return out
}

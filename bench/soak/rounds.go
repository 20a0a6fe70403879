package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/recledger/recledger/internal/simulator"
)

// soak offers the load in rounds: every interval a round of recordings
// starts, spread over the interval in compressed time, so rounds overlap
// and the offered rate stays near the target.
type soak struct {
	c            config
	d            *simulator.Deliverer
	server       string
	faults       simulator.Faults
	target       float64 // callbacks per second
	perRecording float64 // callbacks per recording, on average

	mu     sync.Mutex
	totals totals
	last   scrape // the previous sample's, for the histogram's difference
}

// totals is what every round delivered and what verification found.
type totals struct {
	Rounds, Recordings, Callbacks, Delivered, Failed, Requests int
	Unexpected, Mismatches                                     int
	First                                                      []string // the first few problems, for the report
}

func (t totals) clean() bool { return t.Failed == 0 && t.Unexpected == 0 && t.Mismatches == 0 }

func (t *totals) note(problem string) {
	if len(t.First) < 10 {
		t.First = append(t.First, problem)
	}
}

// sample is one interval's measurements.
type sample struct {
	At         time.Duration // since the soak began
	RSSMB      float64
	HeapMB     float64 // Go heap in use
	Goroutines float64
	PerSecond  float64 // callbacks answered 200 per second in the interval
	P50ms      float64 // as the simulator saw them, answered 200
	P99ms      float64
	ServerP99  float64 // upper bound from the server's ingest histogram
}

// callbacksPerRecording is the average number of callbacks the scenario
// sends per recording, faults aside.
func callbacksPerRecording(seed uint64) float64 {
	recs := simulator.Generate(roundOptions(2000, seed^0xfeed, time.Now(), time.Hour))
	n := 0
	for _, r := range recs {
		n += len(r.Callbacks(app))
	}
	return float64(n) / float64(len(recs))
}

func roundOptions(recordings int, seed uint64, start time.Time, spread time.Duration) simulator.Options {
	return simulator.Options{AppKey: app, Recordings: recordings, Seed: seed, Start: start.Truncate(time.Millisecond), Spread: spread,
		UploadFailures: 0.2, NeverUploaded: 0.02, FailedRecordings: 0.05}
}

// run offers the load for the duration, sampling every interval, then
// waits for the rounds in flight and returns the samples.
func (s *soak) run(ctx context.Context, srv *server, lat *latencies, out io.Writer) ([]sample, error) {
	perRound := max(1, int(math.Round(s.target*s.c.interval.Seconds()/s.perRecording)))
	fmt.Fprintf(out, "rounds of %d recordings (%.1f callbacks each) every %s, simulated time x%d\n",
		perRound, s.perRecording, s.c.interval, speed)
	if m, err := scrapeMetrics(srv.url); err == nil {
		s.last = m // the capacity run's observations are not the soak's
	}
	began := time.Now()
	var (
		wg      sync.WaitGroup
		samples []sample
		round   uint64
	)
	start := func() {
		round++
		seed := s.c.seed*1_000_003 + round
		wg.Go(func() { s.round(ctx, seed, perRound) })
	}
	start()
	tick := time.NewTicker(s.c.interval)
	defer tick.Stop()
	for time.Since(began) < s.c.duration && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
		smp, err := s.measure(srv, lat, time.Since(began))
		if err != nil {
			return samples, err
		}
		samples = append(samples, smp)
		fmt.Fprintf(out, "%6s  RSS %6.1f MB  heap %6.1f MB  goroutines %5.0f  %6.0f callbacks/s  p50 %6.2f ms  p99 %7.2f ms  server p99 <= %.0f ms\n",
			smp.At.Round(time.Second), smp.RSSMB, smp.HeapMB, smp.Goroutines, smp.PerSecond, smp.P50ms, smp.P99ms, smp.ServerP99)
		if time.Since(began)+s.c.interval/2 < s.c.duration && ctx.Err() == nil {
			start()
		}
	}
	fmt.Fprintln(out, "waiting for the rounds in flight to finish and be verified...")
	wg.Wait()
	return samples, nil
}

// round plays one round of recordings with the faults and then verifies
// them through the query API.
func (s *soak) round(ctx context.Context, seed uint64, n int) {
	recs := simulator.Generate(roundOptions(n, seed, time.Now(), time.Duration(float64(s.c.interval)*speed)))
	res := simulator.Run(ctx, s.d, app, recs, simulator.RunOptions{Speed: speed, Concurrency: n, Faults: s.faults, Seed: seed})
	var mismatches []simulator.Mismatch
	var verr error
	if ctx.Err() == nil {
		mismatches, verr = simulator.Verify(ctx, s.server, "", recs, res.Acked)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := &s.totals
	t.Rounds++
	t.Recordings += len(recs)
	t.Callbacks += res.Callbacks
	t.Delivered += res.Delivered
	t.Requests += res.Requests
	if ctx.Err() != nil {
		return // interrupted: what was not sent is not a failure
	}
	t.Failed += res.Failed
	t.Unexpected += len(res.Unexpected)
	for _, u := range res.Unexpected {
		t.note("unexpected answer: " + u)
	}
	if res.Failed > 0 {
		t.note(fmt.Sprintf("round %d: %d callbacks never answered 200", seed, res.Failed))
	}
	if verr != nil {
		t.Mismatches++
		t.note("verify: " + verr.Error())
	}
	t.Mismatches += len(mismatches)
	for _, m := range mismatches {
		t.note("MISMATCH " + m.String())
	}
}

func (s *soak) measure(srv *server, lat *latencies, at time.Duration) (sample, error) {
	smp := sample{At: at}
	var err error
	if smp.RSSMB, err = rssMB(srv.cmd.Process.Pid); err != nil {
		return smp, fmt.Errorf("sample RSS: %w", err)
	}
	m, err := scrapeMetrics(srv.url)
	if err != nil {
		return smp, fmt.Errorf("sample /metrics: %w", err)
	}
	smp.Goroutines, smp.HeapMB, smp.ServerP99 = m.goroutines, m.heapMB, histogramP99(s.last.ingest, m.ingest)
	s.last = m
	took, since := lat.take()
	if n := len(took); n > 0 {
		slices.Sort(took)
		smp.P50ms = ms(took[n/2])
		smp.P99ms = ms(took[n*99/100])
		smp.PerSecond = float64(n) / since.Seconds()
	}
	return smp, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// latencies collects the latency of every callback answered 200 since the
// last take.
type latencies struct {
	mu    sync.Mutex
	took  []time.Duration
	since time.Time
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.took = append(l.took, d)
	l.mu.Unlock()
}

// take returns the latencies collected and the time they cover, and starts
// anew.
func (l *latencies) take() ([]time.Duration, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	took, since := l.took, time.Since(l.since)
	l.took, l.since = nil, time.Now()
	return took, since
}

// timing is a transport that times each callback answered 200.
type timing struct {
	base http.RoundTripper
	into *latencies
}

func (t *timing) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.base.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusOK && req.Method == http.MethodPost {
		t.into.add(time.Since(start))
	}
	return resp, err
}

// Command soak runs recledger under a steady load for a long time and
// records whether it stays flat: it starts the built binary (`recledger
// serve` on 127.0.0.1 with a temporary SQLite), measures its capacity with
// a short run as fast as it answers, then offers half of that for the
// duration with the simulator and every fault on, in rounds: each round
// plays recordings at compressed time and, when they are done, verifies
// them through the query API (simulate --verify's oracle). Every interval
// it samples the server's RSS (/proc/PID/status), goroutines
// (go_goroutines on /metrics) and the callbacks' latency.
//
// At the end it writes the samples as CSV and a plot (SVG), prints a
// Markdown table for BENCHMARKS.md, and exits non-zero if verification
// found anything.
//
//	make soak               # 30 minutes
//	make soak SOAK=2m       # a try
//	go run ./bench/soak -bin bin/recledger -duration 30m -svg docs/soak.svg
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/recledger/recledger/internal/simulator"
	"github.com/recledger/recledger/rc"
)

const (
	app    = "soak_app"
	secret = "soak-secret-0123456789"
	// speed compresses simulated time in the soak's rounds: a recording of
	// hours plays in seconds, so every callback type keeps arriving.
	speed = 3600
)

type config struct {
	bin, dir, svg, csv, faults, sync string
	duration, interval, capacityFor  time.Duration
	share                            float64
	seed                             uint64
}

func main() {
	var c config
	flag.StringVar(&c.bin, "bin", "", "the recledger binary (default: built from ./cmd/recledger into a temp dir)")
	flag.DurationVar(&c.duration, "duration", 30*time.Minute, "how long to offer the load")
	flag.DurationVar(&c.interval, "interval", 10*time.Second, "sampling interval, and how often a round of recordings starts")
	flag.DurationVar(&c.capacityFor, "capacity-duration", 15*time.Second, "how long to measure the capacity first")
	flag.Float64Var(&c.share, "share", 0.5, "share of the measured capacity to offer")
	flag.StringVar(&c.faults, "faults", "all=0.1", "the simulator's faults (simulate --faults)")
	flag.StringVar(&c.sync, "sync", "full", "recledger --sqlite-synchronous")
	flag.Uint64Var(&c.seed, "seed", 1, "the scenario's seed")
	flag.StringVar(&c.svg, "svg", "docs/soak.svg", "where to write the plot")
	flag.StringVar(&c.csv, "csv", "docs/soak.csv", "where to write the samples")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config, out io.Writer) error {
	faults, err := simulator.ParseFaults(c.faults)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "recledger-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	c.dir = dir
	if c.bin == "" {
		c.bin = filepath.Join(dir, "recledger")
		if b, err := exec.Command("go", "build", "-o", c.bin, "./cmd/recledger").CombinedOutput(); err != nil {
			return fmt.Errorf("build recledger: %v\n%s", err, b)
		}
	}
	srv, err := startServer(ctx, c)
	if err != nil {
		return err
	}
	defer srv.stop()

	lat := &latencies{}
	client := &http.Client{Timeout: simulator.DeliveryTimeout, Transport: &timing{base: &http.Transport{
		MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: 30 * time.Second}, into: lat}}
	d := &simulator.Deliverer{URL: srv.url + "/v1/callbacks/recording", Signer: rc.Signer{AppKey: app, Secret: secret}, Client: client}

	fmt.Fprintf(out, "measuring capacity for %s (as fast as it answers, 64 workers)...\n", c.capacityFor)
	probe := simulator.Generate(simulator.Options{AppKey: app, Recordings: 20000, Seed: c.seed + 1_000_000, Start: time.Now().Truncate(time.Second)})
	capRes := simulator.Load(ctx, d, app, probe, simulator.LoadOptions{Duration: c.capacityFor, Concurrency: 64})
	probe = nil
	lat.take() // the capacity run's latencies are not the soak's
	if capRes.PerSecond <= 0 {
		return fmt.Errorf("capacity run delivered nothing: %v", capRes.Statuses)
	}
	// The faults add requests of their own (forged, malformed, replayed,
	// redelivered, unknown): the share of the capacity is offered in
	// requests, so fewer callbacks.
	perCallback := requestsPerCallback(faults)
	target := capRes.PerSecond * c.share / perCallback
	fmt.Fprintf(out, "capacity %.0f callbacks/s (p99 %.1f ms at full load); offering %.0f requests/s (%.0f callbacks/s, %.2f requests each with faults %s) for %s\n",
		capRes.PerSecond, capRes.P99ms, capRes.PerSecond*c.share, target, perCallback, c.faults, c.duration)

	s := &soak{c: c, d: d, server: srv.url, faults: faults, target: target}
	s.perRecording = callbacksPerRecording(c.seed)
	samples, err := s.run(ctx, srv, lat, out)
	if err != nil {
		return err
	}
	srv.stop()
	res := result{Capacity: capRes.PerSecond, CapacityP99: capRes.P99ms, Requests: capRes.PerSecond * c.share, Target: target, Faults: c.faults, Duration: c.duration,
		Samples: samples, Totals: s.totals}
	if err := writeCSV(c.csv, samples); err != nil {
		return err
	}
	if err := writeSVG(c.svg, res); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nsamples: %s, plot: %s\n\n", c.csv, c.svg)
	printSummary(out, res)
	if !s.totals.clean() {
		return errors.New("verification was not clean (see above)")
	}
	return nil
}

// server is the recledger process under test.
type server struct {
	cmd  *exec.Cmd
	url  string
	once sync.Once
}

func startServer(ctx context.Context, c config) (*server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	logf, err := os.Create(filepath.Join(c.dir, "server.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(c.bin, "serve", "--addr", addr, "--db", "sqlite:"+filepath.Join(c.dir, "soak.db"),
		"--app", app+"="+secret, "--sqlite-synchronous", c.sync, "--log-level", "error")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", c.bin, err)
	}
	s := &server{cmd: cmd, url: "http://" + addr}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			s.stop()
			b, _ := os.ReadFile(logf.Name())
			return nil, fmt.Errorf("recledger did not get ready at %s:\n%s", addr, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop ends the server gracefully (SIGTERM), at most once.
func (s *server) stop() {
	s.once.Do(func() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			s.cmd.Process.Kill()
			<-done
		}
	})
}

// requestsPerCallback is how many requests the simulator sends per
// callback with the faults, on average: a dropped one is not sent, a
// redelivered one twice, and forged, malformed, replayed and unknown-type
// requests come on top.
func requestsPerCallback(f simulator.Faults) float64 {
	return (1-f.Drop)*(1+f.Dup+f.Replay) + f.BadSig + f.Malformed + f.Unknown
}

// rssMB is the process's resident set from /proc/PID/status.
func rssMB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS %q: %w", rest, err)
			}
			return kb / 1024, nil
		}
	}
	return 0, errors.New("no VmRSS in /proc/PID/status")
}

// scrape is what the soak reads from the server's /metrics.
type scrape struct {
	goroutines, heapMB float64
	// ingest is recledger_ingest_seconds' cumulative buckets (upper bound in
	// seconds -> count), the server's own time from arrival to answer.
	ingest map[float64]float64
}

// scrapeMetrics reads go_goroutines, go_memstats_heap_inuse_bytes and the
// ingest latency histogram from the server's /metrics.
func scrapeMetrics(server string) (scrape, error) {
	sc := scrape{ingest: map[float64]float64{}}
	resp, err := http.Get(server + "/metrics")
	if err != nil {
		return sc, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return sc, err
	}
	found := 0
	for line := range strings.Lines(string(b)) {
		name, val, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		switch {
		case name == "go_goroutines":
			sc.goroutines = v
			found++
		case name == "go_memstats_heap_inuse_bytes":
			sc.heapMB = v / (1 << 20)
		case strings.HasPrefix(name, `recledger_ingest_seconds_bucket{le="`):
			le := strings.TrimSuffix(strings.TrimPrefix(name, `recledger_ingest_seconds_bucket{le="`), `"}`)
			if ub, err := strconv.ParseFloat(le, 64); err == nil {
				sc.ingest[ub] = v
			}
		}
	}
	if found == 0 {
		return sc, fmt.Errorf("no go_goroutines in /metrics (answered %d)", resp.StatusCode)
	}
	return sc, nil
}

// histogramP99 is the upper bound of the bucket holding the 99th
// percentile of the observations between two scrapes (an upper bound of
// the p99: the buckets are what the server exports), in ms; 0 without
// observations.
func histogramP99(before, after map[float64]float64) float64 {
	bounds := make([]float64, 0, len(after))
	for ub := range after {
		bounds = append(bounds, ub)
	}
	slices.Sort(bounds)
	if len(bounds) == 0 {
		return 0
	}
	total := after[bounds[len(bounds)-1]] - before[bounds[len(bounds)-1]]
	if total <= 0 {
		return 0
	}
	for _, ub := range bounds {
		if after[ub]-before[ub] >= 0.99*total {
			return ub * 1000
		}
	}
	return math.Inf(1)
}

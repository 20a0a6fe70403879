package main

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/simulator"
)

func TestSlopePerHour(t *testing.T) {
	var samples []sample
	for i := range 7 {
		samples = append(samples, sample{At: time.Duration(i) * 10 * time.Minute, RSSMB: 100 + 5*float64(i)}) // 30 MB an hour
	}
	if got := slopePerHour(samples, rss.value); math.Abs(got-30) > 1e-9 {
		t.Errorf("slope %v, want 30 MB/h", got)
	}
	if got := slopePerHour(samples[:1], rss.value); got != 0 {
		t.Errorf("slope of one sample %v, want 0", got)
	}
}

func TestHistogramP99(t *testing.T) {
	before := map[float64]float64{0.001: 10, 0.01: 10, 0.1: 10, math.Inf(1): 10}
	for _, tt := range []struct {
		after map[float64]float64
		want  float64
	}{
		{map[float64]float64{0.001: 1010, 0.01: 1010, 0.1: 1010, math.Inf(1): 1010}, 1},   // all under 1 ms
		{map[float64]float64{0.001: 990, 0.01: 1000, 0.1: 1010, math.Inf(1): 1010}, 10},   // 99 % by 10 ms
		{map[float64]float64{0.001: 10, 0.01: 10, 0.1: 10, math.Inf(1): 20}, math.Inf(1)}, // past the last bucket
		{before, 0}, // nothing observed
	} {
		if got := histogramP99(before, tt.after); got != tt.want {
			t.Errorf("p99 of %v: %v ms, want %v", tt.after, got, tt.want)
		}
	}
}

func TestRequestsPerCallback(t *testing.T) {
	f, err := simulator.ParseFaults("all=0.1")
	if err != nil {
		t.Fatal(err)
	}
	if got := requestsPerCallback(f); math.Abs(got-1.38) > 1e-9 {
		t.Errorf("requests per callback at all=0.1: %v, want 1.38", got)
	}
}

func TestSVGAndSummary(t *testing.T) {
	r := result{Capacity: 2000, Requests: 1000, Target: 725, Faults: "all=0.1", Duration: 2 * time.Minute}
	for i := 1; i <= 12; i++ {
		r.Samples = append(r.Samples, sample{At: time.Duration(i) * 10 * time.Second, RSSMB: 100, HeapMB: 40, Goroutines: 90,
			PerSecond: 700, P50ms: 2, P99ms: 20, ServerP99: 25})
	}
	r.Samples[3].ServerP99 = math.Inf(1)
	path := t.TempDir() + "/soak.svg"
	if err := writeSVG(path, r); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	printSummary(&b, r)
	for _, want := range []string{"| RSS (MB) | 100.0 | 100.0 | 100.0 | 100.0 | +0.0 |", "verify: clean"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
}

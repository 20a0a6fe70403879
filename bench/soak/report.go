package main

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// result is everything the report shows.
type result struct {
	Capacity, CapacityP99 float64
	Requests, Target      float64 // offered per second: requests, and callbacks among them
	Faults                string
	Duration              time.Duration
	Samples               []sample
	Totals                totals
}

// series is one measured quantity over the samples.
type series struct {
	name, unit, color string
	value             func(sample) float64
	legend            string // in the plot, where a panel has several lines
}

var (
	rss        = series{"RSS", "MB", "#1f77b4", func(s sample) float64 { return s.RSSMB }, "RSS"}
	heap       = series{"Go heap in use", "MB", "#6baed6", func(s sample) float64 { return s.HeapMB }, "Go heap"}
	goroutines = series{"goroutines", "", "#2ca02c", func(s sample) float64 { return s.Goroutines }, ""}
	p99        = series{"callback p99, simulator", "ms", "#d62728", func(s sample) float64 { return s.P99ms }, "simulator"}
	serverP99  = series{"callback p99, server histogram (bucket bound)", "ms", "#ff7f0e", func(s sample) float64 { return s.ServerP99 }, "server (histogram bucket bound)"}
	rate       = series{"callbacks answered 200", "/s", "#7f7f7f", func(s sample) float64 { return s.PerSecond }, ""}
	allSeries  = []series{rss, heap, goroutines, p99, serverP99, rate}
)

// panels are the plot's panels, each with its lines on one scale.
var panels = []struct {
	title string
	lines []series
}{
	{"memory (MB)", []series{rss, heap}},
	{"goroutines", []series{goroutines}},
	{"callback latency p99 (ms)", []series{p99, serverP99}},
	{"callbacks answered 200 per second", []series{rate}},
}

func writeCSV(path string, samples []sample) error {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{"seconds", "rss_mb", "heap_mb", "goroutines", "callbacks_per_s", "p50_ms", "p99_ms", "server_p99_ms_bound"})
	for _, s := range samples {
		w.Write([]string{strconv.FormatFloat(s.At.Seconds(), 'f', 0, 64), f1(s.RSSMB), f1(s.HeapMB), f1(s.Goroutines), f1(s.PerSecond),
			f2(s.P50ms), f2(s.P99ms), f1(s.ServerP99)})
	}
	w.Flush()
	return writeFile(path, b.Bytes())
}

func writeFile(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
func f2(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

// steady returns the second half of the samples, for the slope: in the
// first minutes memory grows as it should while the replay memory fills
// up to the signature tolerance's worth of signatures (5 min by default)
// and the ledger's state cache fills; flat is judged after that.
func steady(samples []sample) []sample {
	return samples[len(samples)/2:]
}

// slopePerHour is the least-squares slope of the series over time, per hour.
func slopePerHour(samples []sample, value func(sample) float64) float64 {
	n := float64(len(samples))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for _, s := range samples {
		x, y := s.At.Hours(), value(s)
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / den
}

// printSummary writes the soak's figures as Markdown, ready for
// BENCHMARKS.md.
func printSummary(w io.Writer, r result) {
	t := r.Totals
	fmt.Fprintf(w, "Soak: %s at %.0f requests/s offered (%.0f callbacks/s with faults %s; half of the %.0f callbacks/s measured first, p99 %.1f ms at that full load), "+
		"SQLite; %d rounds, %d recordings, %d deliveries answered 200 (redeliveries included) of %d distinct callbacks sent (%d requests with the faults); "+
		"never answered 200: %d; fault requests answered otherwise than refused (no answer within 5 s included): %d; verify mismatches: %d.\n\n",
		r.Duration, r.Requests, r.Target, r.Faults, r.Capacity, r.CapacityP99, t.Rounds, t.Recordings, t.Delivered, t.Callbacks, t.Requests,
		t.Failed, t.Unexpected, t.Mismatches)
	if len(r.Samples) == 0 {
		fmt.Fprintln(w, "no samples")
		return
	}
	first, last := r.Samples[0], r.Samples[len(r.Samples)-1]
	st := steady(r.Samples)
	fmt.Fprintf(w, "| %s | first interval | last interval | min | max | slope per hour (from %s on) |\n|---|---:|---:|---:|---:|---:|\n",
		"measure", st[0].At.Round(time.Second))
	for _, s := range allSeries {
		lo, hi := bounds(r.Samples, s.value)
		label := s.name
		if s.unit != "" {
			label += " (" + s.unit + ")"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %+.1f |\n", label, f1(s.value(first)), f1(s.value(last)), f1(lo), f1(hi),
			slopePerHour(st, s.value))
	}
	if len(t.First) > 0 {
		fmt.Fprintln(w, "\nproblems (first ten):")
		for _, p := range t.First {
			fmt.Fprintln(w, "  "+p)
		}
	} else {
		fmt.Fprintln(w, "\nverify: clean (every recording of every round matches what was acknowledged)")
	}
}

func bounds(samples []sample, value func(sample) float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, s := range samples {
		if v := value(s); !math.IsInf(v, 0) && !math.IsNaN(v) { // a p99 past the histogram's last bucket
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	if math.IsInf(lo, 1) {
		return 0, 0
	}
	return lo, hi
}

// writeSVG plots each series in its own panel against minutes, each from
// zero so that flat reads as flat.
func writeSVG(path string, r result) error {
	const (
		width, panelH, left, right, top, gap = 760, 150, 70, 40, 40, 50
	)
	plotW := float64(width - left - right)
	height := top + len(panels)*(panelH+gap)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#fff"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", left,
		html.EscapeString(fmt.Sprintf("recledger soak: %s at %.0f requests/s (half of %.0f/s), faults %s; verify mismatches %d",
			r.Duration, r.Requests, r.Capacity, r.Faults, r.Totals.Mismatches)))
	maxT := 1.0
	if n := len(r.Samples); n > 0 {
		maxT = max(r.Samples[n-1].At.Minutes(), 1e-9)
	}
	for i, p := range panels {
		y0 := float64(top + i*(panelH+gap) + gap/2)
		hi := 0.0
		for _, s := range p.lines {
			_, h := bounds(r.Samples, s.value)
			hi = max(hi, h)
		}
		hi = niceCeil(hi)
		fmt.Fprintf(&b, `<text x="%d" y="%.0f" font-weight="bold">%s</text>`+"\n", left, y0-6, html.EscapeString(p.title))
		if len(p.lines) > 1 {
			x := float64(left + 220)
			for _, s := range p.lines {
				fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" fill="%s">&#9632; %s</text>`+"\n", x, y0-6, s.color, html.EscapeString(s.legend))
				x += 7*float64(len(s.legend)) + 30
			}
		}
		// Gridlines at 0, half and the top, and minute ticks.
		for _, frac := range []float64{0, 0.5, 1} {
			y := y0 + panelH*(1-frac)
			fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, y, float64(left)+plotW, y)
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, y+4, trim(hi*frac))
		}
		for k := 0; k <= 5; k++ {
			x := float64(left) + plotW*float64(k)/5
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#555">%s min</text>`+"\n", x, y0+panelH+14, trim(maxT*float64(k)/5))
		}
		for _, s := range p.lines {
			var pts []string
			for _, smp := range r.Samples {
				v := s.value(smp)
				if math.IsInf(v, 0) || math.IsNaN(v) {
					v = hi
				}
				x := float64(left) + plotW*smp.At.Minutes()/maxT
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y0+panelH-panelH*v/hi))
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", s.color, strings.Join(pts, " "))
		}
	}
	b.WriteString("</svg>\n")
	return writeFile(path, []byte(b.String()))
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func trim(v float64) string {
	if v == math.Trunc(v) {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

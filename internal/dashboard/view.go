package dashboard

import (
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"time"

	"github.com/recledger/recledger/internal/display"
	"github.com/recledger/recledger/internal/ledger"
)

func (d *Dashboard) funcs() template.FuncMap {
	return template.FuncMap{
		"when": when,
		"at":   at,
		"atp": func(ms *int64) template.HTML {
			if ms == nil {
				return "—"
			}
			return at(*ms)
		},
		"iso":   iso,
		"ago":   ago,
		"bytes": humanBytes,
		"bytesp": func(n *int64) string {
			if n == nil {
				return "—"
			}
			return humanBytes(*n)
		},
		"plural": func(n int64, one, many string) string {
			if n == 1 {
				return one
			}
			return many
		},
		"or": func(s, alt string) string {
			if s == "" {
				return alt
			}
			return s
		},
		"selected": func(a, b string) bool { return a == b },
		"deref": func(p *int64) int64 {
			if p == nil {
				return 0
			}
			return *p
		},
		"int64": func(n int) int64 { return int64(n) },
		"ms":    func(ms int64) string { return signedDuration(time.Duration(ms) * time.Millisecond) },
		"pathEscape": func(s string) string {
			return strings.ReplaceAll(template.URLQueryEscaper(s), "+", "%20")
		},
	}
}

// when shows a Unix ms time under the one rule (package display), in UTC:
// the server cannot know the viewer's zone. For text where no element can
// go (attributes, an SVG's title); elsewhere at marks it up.
func when(ms int64) string {
	return display.Time(ms, time.UTC)
}

// at is when inside a <time> element that carries the instant: the page's
// script (app.js) rewrites its text under the same rule in the browser's
// zone, so the zone shows either way.
func at(ms int64) template.HTML {
	return template.HTML(`<time datetime="` + iso(ms) + `" data-local>` + template.HTMLEscapeString(when(ms)) + `</time>`)
}

// iso is a Unix ms time in RFC 3339, UTC, for machines (datetime).
func iso(ms int64) string {
	return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
}

// ago says how long before now a Unix ms time was, roughly.
func ago(now time.Time, ms int64) string {
	d := now.Sub(time.UnixMilli(ms))
	switch {
	case d < 0:
		return "in " + roughly(-d)
	case d < time.Second:
		return "just now"
	}
	return roughly(d) + " ago"
}

func roughly(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + " s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + " min"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + " h"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + " days"
}

// signedDuration shows an arrival lag: "+1.2s", "-300ms".
func signedDuration(d time.Duration) string {
	sign := "+"
	if d < 0 {
		sign, d = "−", -d
	}
	switch {
	case d < time.Second:
		return sign + d.Round(time.Millisecond).String()
	case d < time.Minute:
		return sign + d.Round(100*time.Millisecond).String()
	}
	return sign + d.Round(time.Second).String()
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// chart is the overview's bar chart of the last hour, drawn as SVG by the
// template from these numbers (no script, no inline style).
type chart struct {
	Bars     []bar
	Max      int64 // the scale's top
	Peak     ledger.Minute
	From, To int64 // Unix ms of the first and last minute
	Active   []ledger.Minute
}

type bar struct {
	X, W       float64
	OkY, OkH   float64 // stored callbacks
	RejY, RejH float64 // rejected requests, stacked on top
	Label      string  // for the bar's tooltip and screen readers
	Minute     ledger.Minute
}

// The chart's drawing area in SVG units.
const (
	chartW, chartH = 600.0, 120.0
	chartMinutes   = 60
)

// activityChart lays out one bar per minute from the minute from (Unix ms)
// on, for chartMinutes minutes; minutes absent from ms had nothing.
func activityChart(ms []ledger.Minute, from int64) chart {
	c := chart{From: from, To: from + (chartMinutes-1)*60_000}
	byStart := map[int64]ledger.Minute{}
	for _, m := range ms {
		byStart[m.Start] = m
		if m.Callbacks+m.Rejected > c.Peak.Callbacks+c.Peak.Rejected {
			c.Peak = m
		}
		if m.Start >= from && m.Callbacks+m.Rejected > 0 {
			c.Active = append(c.Active, m)
		}
	}
	c.Max = c.Peak.Callbacks + c.Peak.Rejected
	if c.Max < 5 {
		c.Max = 5
	}
	w := chartW / chartMinutes
	for i := range chartMinutes {
		start := from + int64(i)*60_000
		m := byStart[start]
		m.Start = start
		okH := chartH * float64(m.Callbacks) / float64(c.Max)
		rejH := chartH * float64(m.Rejected) / float64(c.Max)
		c.Bars = append(c.Bars, bar{
			X: float64(i)*w + 1, W: w - 2,
			OkY: chartH - okH, OkH: okH,
			RejY: chartH - okH - rejH, RejH: rejH,
			Minute: m,
			Label: fmt.Sprintf("%s: %d callbacks (%d duplicate), %d rejected", when(start),
				m.Callbacks, m.Duplicates, m.Rejected),
		})
	}
	return c
}

// timeline draws a recording's callbacks on two lanes: RC's timestamp
// above, the arrival below, a line joining each callback's two points.
// Each lane is scaled to its own span (RC's clock and the server's may be
// far apart, and a simulator compresses time), so what the picture shows
// is order: lines that cross are callbacks that arrived in another order
// than RC stamped them.
type timeline struct {
	Marks                []mark
	RCFrom, RCTo         int64
	ArriveFrom, ArriveTo int64
	Crossings            int
	Width, Left, Right   float64
}

type mark struct {
	X1, X2 float64
	Class  string
	Label  string
}

const (
	laneLeft, laneRight = 110.0, 790.0
)

func newTimeline(events []ledger.Event) timeline {
	t := timeline{Width: 800, Left: laneLeft, Right: laneRight}
	if len(events) == 0 {
		return t
	}
	t.RCFrom, t.RCTo = events[0].Timestamp, events[0].Timestamp
	t.ArriveFrom, t.ArriveTo = events[0].ReceivedAt, events[0].ReceivedAt
	for _, e := range events {
		t.RCFrom, t.RCTo = min(t.RCFrom, e.Timestamp), max(t.RCTo, e.Timestamp)
		t.ArriveFrom, t.ArriveTo = min(t.ArriveFrom, e.ReceivedAt), max(t.ArriveTo, e.ReceivedAt)
	}
	scale := func(v, from, to int64) float64 {
		if to == from {
			return (laneLeft + laneRight) / 2
		}
		return laneLeft + (laneRight-laneLeft)*float64(v-from)/float64(to-from)
	}
	for _, e := range events {
		class := "t" + strconv.Itoa(int(e.Type))
		if e.Code != 200 && e.Code != 0 {
			class += " failed"
		}
		if e.Duplicate {
			class += " dup"
		}
		t.Marks = append(t.Marks, mark{
			X1: scale(e.Timestamp, t.RCFrom, t.RCTo), X2: scale(e.ReceivedAt, t.ArriveFrom, t.ArriveTo), Class: class,
			Label: fmt.Sprintf("#%d %s, RC %s, arrived %s", e.Seq, e.TypeName, when(e.Timestamp), when(e.ReceivedAt)),
		})
	}
	// Pairs in one order by RC's clock and the other by arrival (quadratic:
	// counted for recordings of ordinary size only).
	if len(events) > 2000 {
		t.Crossings = -1
		return t
	}
	for i := range events {
		for j := i + 1; j < len(events); j++ {
			if (events[i].Timestamp < events[j].Timestamp) != (events[i].ReceivedAt < events[j].ReceivedAt) &&
				events[i].Timestamp != events[j].Timestamp && events[i].ReceivedAt != events[j].ReceivedAt {
				t.Crossings++
			}
		}
	}
	return t
}

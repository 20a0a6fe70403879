package main

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// lagMetrics are how late RC's callbacks and uploads come: the callback
// lag (arrival on the server's clock minus the callback's timestamp on
// RC's), and the upload lag of each recording that completes (its last
// upload minus its end, both RC's clock).
type lagMetrics struct {
	callback *prometheus.HistogramVec
	ahead    *prometheus.CounterVec
	upload   prometheus.Histogram
	// known says whether an app key is configured: only those label the
	// series (a sender names any key it likes; unsigned callbacks under
	// --insecure-skip-signature too), so the labels stay bounded.
	known func(appKey string) bool
}

// newLagMetrics makes the series, registered with reg unless it is nil
// (serve makes them before the store opens, whose projection may complete
// recordings at once, and registers them with the rest: register).
func newLagMetrics(reg prometheus.Registerer) *lagMetrics {
	l := &lagMetrics{
		callback: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "recledger_callback_lag_seconds",
			Help:    "Arrival of each stored callback (server clock) minus its timestamp (RC's clock), by app key (\"other\" for keys not configured). Redeliveries count with their retry delay. A callback stamped after its arrival (RC's clock ahead) counts as 0 and in recledger_callback_clock_ahead_total; one without a timestamp is not counted.",
			Buckets: []float64{.1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400},
		}, []string{"app"}),
		ahead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recledger_callback_clock_ahead_total",
			Help: "Stored callbacks whose timestamp (RC's clock) was later than their arrival (server clock): a clock out of step on either side.",
		}, []string{"app"}),
		upload: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "recledger_upload_lag_seconds",
			Help:    "For each recording that became complete: its latest upload minus its end (uploadLagMs; RC's clock), observed once by the instance that projected it. Negative differences count as 0.",
			Buckets: []float64{1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400},
		}),
		known: func(string) bool { return false },
	}
	l.ahead.WithLabelValues("other") // shown at 0 from the start: the docs name it
	if reg != nil {
		l.register(reg)
	}
	return l
}

func (l *lagMetrics) register(reg prometheus.Registerer) {
	reg.MustRegister(l.callback, l.ahead, l.upload)
}

// onStored observes a stored callback's lag (ingest.Options.OnStored).
func (l *lagMetrics) onStored(cb *rc.Callback, receivedAt time.Time) {
	if cb.Timestamp == 0 {
		return // RC sent none: nothing to measure
	}
	app := "other"
	if l.known(cb.AppKey) {
		app = cb.AppKey
	}
	lag := receivedAt.Sub(time.UnixMilli(cb.Timestamp)).Seconds()
	if lag < 0 {
		l.ahead.WithLabelValues(app).Inc()
		lag = 0
	}
	l.callback.WithLabelValues(app).Observe(lag)
}

// onCompleted observes a recording's upload lag as it completes.
func (l *lagMetrics) onCompleted(st *ledger.State) {
	lag, ok := st.UploadLag()
	if !ok {
		return
	}
	l.upload.Observe(max(float64(lag)/1000, 0))
}

// findingsScanBound bounds the recordings with findings a scrape reads:
// past it the gauges stop counting (a ledger with that many is broken in a
// way one look at the list shows).
const findingsScanBound = 100_000

// findingCounts counts the recordings with each kind of finding at now,
// from the store's list of recordings with any (one pass; each recording
// counts once per kind it has).
func findingCounts(list func(context.Context, ledger.RecordingFilter) (ledger.RecordingPage, error), rules ledger.FindingRules) func(context.Context, time.Time) (map[ledger.FindingKind]int64, error) {
	return func(ctx context.Context, now time.Time) (map[ledger.FindingKind]int64, error) {
		counts := make(map[ledger.FindingKind]int64, len(ledger.FindingKinds))
		f := ledger.RecordingFilter{Finding: ledger.FindingAny, Now: now, FindingRules: rules, Limit: ledger.MaxPage}
		for read := 0; read < findingsScanBound; {
			page, err := list(ctx, f)
			if err != nil {
				return nil, err
			}
			for i := range page.Items {
				seen := map[ledger.FindingKind]bool{}
				for _, fd := range rules.Findings(&page.Items[i], now) {
					if !seen[fd.Kind] {
						seen[fd.Kind] = true
						counts[fd.Kind]++
					}
				}
			}
			read += len(page.Items)
			if page.Next == "" {
				break
			}
			f.Cursor = page.Next
		}
		return counts, nil
	}
}

var descFindings = prometheus.NewDesc("recledger_recordings_with_findings",
	"Recordings with a completeness finding of each kind now (GET /v1/recordings?finding=KIND), by the server's clock and --max-recording-length; counted up to 100000 recordings with findings.",
	[]string{"kind"}, nil)

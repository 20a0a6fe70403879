package main

import (
	"context"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/recledger/recledger/internal/ledger"
)

// metrics are the server's Prometheus series; the ingest and the store
// report through their hooks, the ledger's totals are read at scrape time.
type metrics struct {
	reg         *prometheus.Registry
	callbacks   *prometheus.CounterVec
	latency     prometheus.Histogram
	batch       prometheus.Histogram
	commitTime  prometheus.Histogram
	storeErrors prometheus.Counter
	// projectionFailures counts SQLite's projection runs that failed
	// (PostgreSQL projects inside the commit: its failures are store errors).
	projectionFailures prometheus.Counter
	lag                *lagMetrics
}

// newMetrics makes the series; findings, when set, counts the recordings
// with findings at scrape time; lag, when set, are the lag series made
// before (else new ones).
func newMetrics(stats func(context.Context, time.Time) (ledger.Stats, error), findings func(context.Context, time.Time) (map[ledger.FindingKind]int64, error), lag *lagMetrics) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		callbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recledger_callbacks_total",
			Help: "Callback requests answered, by callback type and outcome (stored, unavailable, or the refusal's code). Duplicates are told apart after the answer, as the log is projected.",
		}, []string{"type", "outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "recledger_ingest_seconds",
			Help:    "Time from a callback's arrival to its answer, durable commit included.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "recledger_commit_batch_size",
			Help:    "Requests per group commit: callbacks logged and refused requests quarantined. Observed for every commit recledger_commit_seconds observes.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}),
		commitTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "recledger_commit_seconds",
			Help:    "Duration of a group commit, fsync included.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1},
		}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "recledger_store_errors_total",
			Help: "Group commits that failed (their callbacks were answered 503).",
		}),
		projectionFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "recledger_projection_failures_total",
			Help: "Projection runs that failed (SQLite: the ledger file could not be written; retried every second). /readyz fails until one succeeds.",
		}),
	}
	v, rev, modified := buildVersion()
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "recledger_build_info",
		Help:        "Always 1; the labels say which build is running.",
		ConstLabels: prometheus.Labels{"version": v, "revision": rev + modified, "goversion": runtime.Version()},
	})
	buildInfo.Set(1)
	m.reg.MustRegister(buildInfo, m.callbacks, m.latency, m.batch, m.commitTime, m.storeErrors, m.projectionFailures,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&ledgerCollector{stats: stats, findings: findings})
	if lag == nil {
		lag = newLagMetrics(nil)
	}
	m.lag = lag
	m.lag.register(m.reg)
	return m
}

func (m *metrics) onAnswer(typ, outcome string, took time.Duration) {
	if typ == "" {
		typ = "none"
	}
	m.callbacks.WithLabelValues(typ, outcome).Inc()
	m.latency.Observe(took.Seconds())
}

// onCommit observes a group commit. Both histograms observe every
// successful commit, so their counts agree: a commit that held only
// quarantined requests is a commit (it was timed) of that many requests.
func (m *metrics) onCommit(callbacks, rejections int, took time.Duration, err error) {
	if err != nil {
		m.storeErrors.Inc()
		return
	}
	m.batch.Observe(float64(callbacks + rejections))
	m.commitTime.Observe(took.Seconds())
}

// streamCounts is what the API tells of its event streams.
type streamCounts interface {
	OpenStreams() int
	StreamsRefused() int64
	StreamsDropped() int64
}

// watchStreams adds the API's event stream counts, read at scrape time.
func (m *metrics) watchStreams(s streamCounts) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "recledger_event_streams",
			Help: "Event streams (GET /v1/events/stream) open now.",
		}, func() float64 { return float64(s.OpenStreams()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "recledger_event_streams_refused_total",
			Help: "Event streams answered 503 because --max-streams were open.",
		}, func() float64 { return float64(s.StreamsRefused()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "recledger_event_streams_dropped_total",
			Help: "Event streams ended because the reader did not keep up (a write did not complete in time).",
		}, func() float64 { return float64(s.StreamsDropped()) }),
	)
}

// ledgerCollector reads the ledger's totals when Prometheus scrapes.
type ledgerCollector struct {
	stats    func(context.Context, time.Time) (ledger.Stats, error)
	findings func(context.Context, time.Time) (map[ledger.FindingKind]int64, error)
}

var (
	descRecordings = prometheus.NewDesc("recledger_recordings", "Recordings by status.", []string{"status"}, nil)
	descUploads    = prometheus.NewDesc("recledger_recording_uploads", "Recordings by upload state (overdue: ended over 25 h ago, not all uploaded).", []string{"state"}, nil)
	descPending    = prometheus.NewDesc("recledger_files_pending_upload", "Known files not uploaded yet.", nil, nil)
	descOverdue    = prometheus.NewDesc("recledger_files_overdue", "Files not uploaded 25 h after their recording ended.", nil, nil)
	descQCount     = prometheus.NewDesc("recledger_quarantine_requests", "Refused requests kept in the quarantine.", nil, nil)
	descQBytes     = prometheus.NewDesc("recledger_quarantine_bytes", "Bytes of refused bodies kept in the quarantine.", nil, nil)
	descLag        = prometheus.NewDesc("recledger_projection_lag_events", "Events logged but not yet in the projections.", nil, nil)
	descUp         = prometheus.NewDesc("recledger_ledger_up", "1 when the ledger's totals could be read.", nil, nil)
)

func (c *ledgerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRecordings, descUploads, descPending, descOverdue, descQCount, descQBytes, descLag, descUp, descFindings} {
		ch <- d
	}
}

func (c *ledgerCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := time.Now()
	st, err := c.stats(ctx, now)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1)
	for _, s := range []ledger.Status{ledger.StatusRecording, ledger.StatusEnded, ledger.StatusComplete, ledger.StatusFailed} {
		ch <- prometheus.MustNewConstMetric(descRecordings, prometheus.GaugeValue, float64(st.RecordingsByStatus[s]), string(s))
	}
	for _, u := range []ledger.UploadState{ledger.UploadNone, ledger.UploadPending, ledger.UploadPartial, ledger.UploadComplete, ledger.UploadFailed, ledger.UploadOverdue} {
		ch <- prometheus.MustNewConstMetric(descUploads, prometheus.GaugeValue, float64(st.RecordingsByUpload[u]), string(u))
	}
	ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(st.FilesPending))
	ch <- prometheus.MustNewConstMetric(descOverdue, prometheus.GaugeValue, float64(st.FilesOverdue))
	ch <- prometheus.MustNewConstMetric(descQCount, prometheus.GaugeValue, float64(st.QuarantineCount))
	ch <- prometheus.MustNewConstMetric(descQBytes, prometheus.GaugeValue, float64(st.QuarantineBytes))
	ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(st.LoggedSeq-st.ProjectedSeq))
	if c.findings == nil {
		return
	}
	counts, err := c.findings(ctx, now)
	if err != nil {
		return // the gauges go missing for this scrape; recledger_ledger_up speaks for the store
	}
	for _, k := range ledger.FindingKinds {
		ch <- prometheus.MustNewConstMetric(descFindings, prometheus.GaugeValue, float64(counts[k]), string(k))
	}
}

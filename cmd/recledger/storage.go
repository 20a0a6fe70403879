package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/recledger/recledger/internal/engine"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/storagecheck"
	"github.com/recledger/recledger/internal/verifier"
)

// storageMetrics are storage verification's series.
type storageMetrics struct {
	checks   *prometheus.CounterVec
	duration prometheus.Histogram
}

// storageOutcomes are the outcomes recledger_storage_checks_total counts:
// the final states, and retry (a transient failure, checked again later).
var storageOutcomes = []string{"verified", "missing", "size_mismatch", "unreachable", "retry"}

// storage registers storage verification's series: the checks by state,
// read from the store at scrape time, and each check's outcome and time.
func (m *metrics) storage(v ledger.Verifications) *storageMetrics {
	sm := &storageMetrics{
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recledger_storage_checks_total",
			Help: "Storage checks made (--verify-storage), by outcome: the state found, or retry (a transient failure, checked again later).",
		}, []string{"outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "recledger_storage_check_duration_seconds",
			Help:    "Time one storage check took (HEAD, or a one-byte GET; waits for the per-host limits included).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
	}
	for _, o := range storageOutcomes { // shown at 0 from the start
		sm.checks.WithLabelValues(o)
	}
	m.reg.MustRegister(sm.checks, sm.duration, &storageCollector{v: v})
	return sm
}

func (sm *storageMetrics) onCheck(outcome string, took time.Duration) {
	sm.checks.WithLabelValues(outcome).Inc()
	sm.duration.Observe(took.Seconds())
}

var descStorageFiles = prometheus.NewDesc("recledger_storage_files",
	"Uploaded files by storage verification state (pending, verified, missing, size_mismatch, unreachable).", []string{"state"}, nil)

// storageCollector reads the checks' counts when Prometheus scrapes.
type storageCollector struct{ v ledger.Verifications }

func (c *storageCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descStorageFiles }

func (c *storageCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.v.VerificationCounts(ctx)
	if err != nil {
		return // recledger_ledger_up says the store is not answering
	}
	for _, s := range ledger.VerificationStates {
		ch <- prometheus.MustNewConstMetric(descStorageFiles, prometheus.GaugeValue, float64(counts[s]), string(s))
	}
}

// storageVerifier is what serve needs of a store to verify storage.
type storageVerifier interface {
	verifier.Store
	verifier.Announcer
}

// newStorageVerifier builds the verifier over store, or says why the
// store cannot verify.
func newStorageVerifier(cfg Config, store any, m *metrics, log *slog.Logger) (*verifier.Verifier, error) {
	s, ok := store.(storageVerifier)
	if !ok {
		return nil, fmt.Errorf("store %T cannot verify storage", store)
	}
	hosts, err := cfg.storageHosts()
	if err != nil {
		return nil, err
	}
	sm := m.storage(s)
	checker := storagecheck.New(storagecheck.Options{Hosts: hosts, AllowPrivate: cfg.StorageAllowPrivate})
	return verifier.New(verifier.Options{Store: s, Announcer: s, Checker: checker, Logger: log, Checked: sm.onCheck,
		IsNoFile: func(err error) bool { return errors.Is(err, engine.ErrNoFile) },
		IsNotLeader: func(err error) bool {
			return errors.Is(err, engine.ErrNotLeader) || errors.Is(err, engine.ErrRebuilding)
		},
	}), nil
}

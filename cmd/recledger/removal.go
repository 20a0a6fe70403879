package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/recledger/recledger/internal/api"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/removal"
)

// removalMetrics say what retention and erasure removed.
type removalMetrics struct {
	recordings, logRows, quarantine *prometheus.CounterVec // by reason: retention or erasure
	lastRun                         prometheus.Gauge
	erasures                        prometheus.Counter
}

func (m *metrics) removal() *removalMetrics {
	by := []string{"reason"}
	rm := &removalMetrics{
		recordings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recledger_removed_recordings_total",
			Help: "Recordings removed, by reason: retention (--retain) or erasure (DELETE /v1/users/{id}).",
		}, by),
		logRows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recledger_removed_log_rows_total",
			Help: "Log rows made tombstones (their bodies dropped, their places kept), by reason.",
		}, by),
		quarantine: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recledger_removed_quarantine_rows_total",
			Help: "Quarantine rows deleted, by reason: retention (--quarantine-retain) or erasure.",
		}, by),
		lastRun: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "recledger_retention_last_run_timestamp_seconds",
			Help: "When the last retention pass ran (Unix seconds; 0: none yet or retention off).",
		}),
		erasures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "recledger_erasures_total",
			Help: "Erasures done (DELETE /v1/users/{id}, recledger erase).",
		}),
	}
	for _, reason := range []string{"retention", "erasure"} { // shown at 0 from the start
		rm.recordings.WithLabelValues(reason)
		rm.logRows.WithLabelValues(reason)
		rm.quarantine.WithLabelValues(reason)
	}
	m.reg.MustRegister(rm.recordings, rm.logRows, rm.quarantine, rm.lastRun, rm.erasures)
	return rm
}

func (rm *removalMetrics) onBatch(removed ledger.Removed, quarantine int64) {
	rm.recordings.WithLabelValues("retention").Add(float64(removed.Recordings))
	rm.logRows.WithLabelValues("retention").Add(float64(removed.LogRows))
	rm.quarantine.WithLabelValues("retention").Add(float64(quarantine))
}

func (rm *removalMetrics) onPass(p removal.Pass) {
	rm.lastRun.Set(float64(p.At.UnixMilli()) / 1000)
}

// eraser is the API's erasure: removal.Erase on the store, logged and
// counted without the person's id.
func eraser(store removal.Store, rm *removalMetrics, log *slog.Logger) api.Eraser {
	return func(ctx context.Context, userID, appKey string) (removal.Erasure, error) {
		got, err := removal.Erase(ctx, store, userID, appKey, time.Now())
		rm.recordings.WithLabelValues("erasure").Add(float64(got.Recordings))
		rm.logRows.WithLabelValues("erasure").Add(float64(got.LogRows))
		rm.quarantine.WithLabelValues("erasure").Add(float64(got.Quarantine))
		attrs := []any{"app_key", appKey, "recordings", got.Recordings, "log_rows", got.LogRows, "files", got.Files,
			"outbound", got.Outbound, "quarantine_rows", got.Quarantine}
		if err != nil {
			log.Error("erasure failed part way; asking again finishes it", append(attrs, "err", err)...)
			return got, err
		}
		rm.erasures.Inc()
		log.Info("erased a user's data (the id is not logged)", attrs...)
		return got, nil
	}
}

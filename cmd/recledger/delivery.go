package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/delivery/dispatch"
	"github.com/recledger/recledger/internal/delivery/webhook"
)

// declareDestinations creates the destinations the configuration declares,
// or brings them to what it says; a destination a user disabled stays
// disabled (the log says so). A secret the configuration replaced keeps
// signing for delivery.RotationOverlap.
func declareDestinations(ctx context.Context, store delivery.Store, cfg Config, log *slog.Logger) error {
	now := time.Now()
	for _, decl := range cfg.Destinations {
		want, err := decl.destination(cfg.AllowPrivateDestinations)
		if err != nil {
			return err
		}
		have, err := store.Destination(ctx, want.ID)
		if errors.Is(err, delivery.ErrNoDestination) {
			want.CreatedAt = now.UnixMilli()
			if err := store.AddDestination(ctx, &want); err != nil {
				return err
			}
			log.Info("destination added from the configuration", "destination", want.ID, "type", want.Kind, "url", dispatch.RedactURL(want.URL))
			continue
		}
		if err != nil {
			return err
		}
		if len(want.Keys) > 0 && (len(have.Keys) == 0 || have.Keys[0].Secret != want.Keys[0].Secret) {
			want.Keys = delivery.Rotate(have.Keys, want.Keys[0].Secret, now)
		} else {
			want.Keys = have.Keys
		}
		want.Enabled, want.DisabledReason, want.CreatedAt = have.Enabled, have.DisabledReason, have.CreatedAt
		if err := store.UpdateDestination(ctx, &want); err != nil {
			return err
		}
		if !have.Enabled {
			log.Warn("a destination declared in the configuration is disabled; enable it with recledger destinations enable",
				"destination", have.ID, "reason", have.DisabledReason)
		}
	}
	return nil
}

// instanceName names this process in the destinations' leases.
func instanceName() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
}

// deliveryMetrics are the outbound side's series.
type deliveryMetrics struct {
	attempts *prometheus.CounterVec
	lag      *prometheus.HistogramVec
	disabled *prometheus.CounterVec
	dead     *prometheus.CounterVec
}

func (m *metrics) delivery() *deliveryMetrics {
	d := &deliveryMetrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recledger_delivery_attempts_total",
			Help: "Attempts to deliver an outbound event, by destination and outcome (delivered, failed, gone).",
		}, []string{"destination", "outcome"}),
		lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "recledger_delivery_lag_seconds",
			Help:    "Time from an event's commit to the destination's acknowledgement.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 3600},
		}, []string{"destination"}),
		disabled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recledger_destinations_disabled_total",
			Help: "Destinations the dispatcher disabled (410 Gone, or failing for --disable-after).",
		}, []string{"destination"}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recledger_delivery_dead_letters_total",
			Help: "Events a destination's retries were spent on, kept as dead letters (redeliver them with recledger destinations redeliver).",
		}, []string{"destination"}),
	}
	m.reg.MustRegister(d.attempts, d.lag, d.disabled, d.dead)
	return d
}

func (d *deliveryMetrics) onAttempt(destination, outcome string, lag time.Duration) {
	d.attempts.WithLabelValues(destination, outcome).Inc()
	if outcome == webhook.Delivered.String() {
		d.lag.WithLabelValues(destination).Observe(lag.Seconds())
	}
}

// watch adds the destinations' state, read at scrape time.
func (d *deliveryMetrics) watch(reg *prometheus.Registry, store delivery.Store, disp *dispatch.Dispatcher) {
	reg.MustRegister(&destinationCollector{store: store, disp: disp})
}

var (
	descHeld      = prometheus.NewDesc("recledger_delivery_held_events", "Events a destination served here holds for a retry, or behind one.", []string{"destination"}, nil)
	descBacklog   = prometheus.NewDesc("recledger_delivery_backlog_events", "Outbox events a destination's cursor has not reached.", []string{"destination"}, nil)
	descDisabledN = prometheus.NewDesc("recledger_destinations_disabled", "Destinations disabled now.", nil, nil)
)

type destinationCollector struct {
	store delivery.Store
	disp  *dispatch.Dispatcher
}

func (c *destinationCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descHeld
	ch <- descBacklog
	ch <- descDisabledN
}

func (c *destinationCollector) Collect(ch chan<- prometheus.Metric) {
	for id, n := range c.disp.Depths() {
		ch <- prometheus.MustNewConstMetric(descHeld, prometheus.GaugeValue, float64(n), id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	list, err := c.store.Destinations(ctx)
	if err != nil {
		return
	}
	last, err := c.store.OutboxEnd(ctx)
	if err != nil {
		return
	}
	disabled := 0
	for _, d := range list {
		if !d.Enabled {
			disabled++
			continue
		}
		ch <- prometheus.MustNewConstMetric(descBacklog, prometheus.GaugeValue, float64(max(last-d.Cursor, 0)), d.ID)
	}
	ch <- prometheus.MustNewConstMetric(descDisabledN, prometheus.GaugeValue, float64(disabled))
}

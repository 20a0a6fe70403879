package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/recledger/recledger/internal/access"
	"github.com/recledger/recledger/internal/api"
	"github.com/recledger/recledger/internal/dashboard"
	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/delivery/dispatch"
	"github.com/recledger/recledger/internal/delivery/webhook"
	"github.com/recledger/recledger/internal/ingest"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/pgstore"
	"github.com/recledger/recledger/internal/removal"
	"github.com/recledger/recledger/internal/sqlitestore"
	"github.com/recledger/recledger/rc"
)

func newServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Receive RC's callbacks and keep the ledger",
		Long: `serve listens (default 127.0.0.1:8080) for RC's Cloud Recording callbacks at
POST /v1/callbacks/recording, verifies and stores each one durably before it
answers 200, and keeps the ledger in SQLite (default ./data/recledger.db).

Settings come from flags, then the environment, then a TOML config file
(--config), then defaults. Stop it with Ctrl-C or SIGTERM: it stops accepting,
finishes the callbacks in flight, commits and closes the database. SIGHUP
rereads the same sources and puts the apps and their secrets, the API token
and the log level in force without a restart (an invalid configuration is
logged and the running one kept); other settings need a restart.`,
		Example: `  recledger serve
  recledger serve --app your_appkey=SECRET --addr 0.0.0.0:8080
  RECLEDGER_APPS=key1=secret1,key2=secret2 recledger serve --log-format json
  recledger serve --config /etc/recledger.toml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd.Flags(), environ)
			if err != nil {
				return err
			}
			reload := func() (Config, error) { return loadConfig(cmd.Flags(), environ) }
			return serve(cmd.Context(), cfg, reload, cmd.ErrOrStderr())
		},
	}
	addConfigFlags(cmd)
	return cmd
}

// newLogger returns the server's logger and its level, which a reload sets.
func newLogger(cfg Config, w io.Writer) (*slog.Logger, *slog.LevelVar) {
	level := new(slog.LevelVar)
	level.Set(logLevel(cfg.LogLevel))
	o := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, o)), level
	}
	return slog.New(slog.NewTextHandler(w, o)), level
}

// storeHooks are what a store reports for metrics and logs; any may be nil.
type storeHooks struct {
	logger              *slog.Logger // projection failures (PostgreSQL)
	onCommit            func(callbacks, rejections int, took time.Duration, err error)
	onProjectionFailure func(error)
	onCompleted         func(st *ledger.State)
}

// openStore opens the store --db names, reporting to hooks.
func openStore(ctx context.Context, cfg Config, hooks storeHooks) (ledger.Store, error) {
	kind, location, err := parseDB(cfg.DB)
	if err != nil {
		return nil, err
	}
	if kind == "postgres" {
		return pgstore.Open(ctx, location, pgstore.Options{
			QuarantineMaxCount:  cfg.QuarantineMaxCount,
			QuarantineMaxBytes:  cfg.QuarantineMaxBytes,
			WriteTimeout:        cfg.DBWriteTimeout,
			Settle:              cfg.Settle,
			OnCommit:            hooks.onCommit,
			OnProjectionFailure: hooks.onProjectionFailure,
			OnCompleted:         hooks.onCompleted,
			Logger:              hooks.logger,
		})
	}
	return sqlitestore.Open(ctx, location, sqlitestore.Options{
		Synchronous:        cfg.SQLiteSynchronous,
		Checkpoints:        cfg.SQLiteCheckpoint,
		BusyTimeout:        cfg.DBWriteTimeout,
		QuarantineMaxCount: cfg.QuarantineMaxCount,
		QuarantineMaxBytes: cfg.QuarantineMaxBytes,
		// A signature is accepted up to the tolerance from its timestamp on
		// either side, so it can be replayed for twice that after arrival.
		ReplayWindow:        2 * cfg.SignatureTolerance,
		Settle:              cfg.Settle,
		OnCommit:            hooks.onCommit,
		OnProjectionFailure: hooks.onProjectionFailure,
		OnCompleted:         hooks.onCompleted,
	})
}

// minTokenLength is the API token length below which serve warns: the
// limiter slows guessing, a long random token is what defeats it.
const minTokenLength = 16

// The stores keep the dashboard's revoked sessions for every instance.
var (
	_ access.Revocations = (*sqlitestore.Store)(nil)
	_ access.Revocations = (*pgstore.Store)(nil)
)

// serve runs the server until ctx ends, then shuts it down gracefully. On
// SIGHUP it puts in force what reload returns, as far as it can without a
// restart.
func serve(ctx context.Context, cfg Config, reload func() (Config, error), logOut io.Writer) error {
	log, level := newLogger(cfg, logOut)
	// Taken over from the start: SIGHUP's default is to end the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	// The port first: a server that cannot listen must not create or
	// migrate a database on its way to failing.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close() // on an early return; Shutdown closes it otherwise
	var metricsLn net.Listener
	if cfg.MetricsAddr != "" {
		if metricsLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return fmt.Errorf("listen on --metrics-addr: %w", err)
		}
		defer metricsLn.Close()
	}
	var m *metrics
	// The lag series exist before the store opens: its projection may
	// complete recordings at once (a log ahead of its ledger), on its own
	// goroutine, before m is set.
	lag := newLagMetrics(nil)
	store, err := openStore(ctx, cfg, storeHooks{
		logger: log,
		onCommit: func(callbacks, rejections int, took time.Duration, err error) {
			if m != nil { // set right after the store opens, before any commit
				m.onCommit(callbacks, rejections, took, err)
			}
		},
		onProjectionFailure: func(error) {
			if m != nil {
				m.projectionFailures.Inc()
			}
		},
		onCompleted: lag.onCompleted,
	})
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	findingRules := ledger.FindingRules{MaxOpen: cfg.MaxRecordingLength}
	m = newMetrics(store.Stats, findingCounts(store.ListRecordings, findingRules), lag)
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("close store", "err", err)
		}
	}()
	src, ok := store.(delivery.Source)
	if !ok {
		return fmt.Errorf("store %T keeps no outbox", store)
	}
	if len(cfg.Destinations) > 0 {
		src.Announce(true) // before they are added: their cursors start at the outbox's end
	}
	if err := declareDestinations(ctx, src.Delivery(), cfg, log); err != nil {
		return fmt.Errorf("destinations: %w", err)
	}
	dm := m.delivery()
	owner := instanceName()
	if kind, _, _ := parseDB(cfg.DB); kind == "sqlite" {
		// One process at a time holds a SQLite store (its lock file): a
		// restart after a crash takes the leases back at once instead of
		// waiting for the dead process's to expire.
		owner = "sqlite"
	}
	// One set of senders (one HTTP client) for the dispatcher and the API's
	// test attempts.
	senders := dispatch.SendersFor(cfg.AllowPrivateDestinations, time.Now, webhook.Schedule{Waits: cfg.RetrySchedule})
	disp := dispatch.New(dispatch.Options{
		Store: src.Delivery(), Owner: owner, Wake: src.Announced(), Announce: src.Announce,
		Senders:      senders,
		Schedule:     webhook.Schedule{Waits: cfg.RetrySchedule},
		DisableAfter: cfg.DisableAfter, Logger: log, OnAttempt: dm.onAttempt,
		OnDisabled: func(id, _ string) { dm.disabled.WithLabelValues(id).Inc() },
		OnDead:     func(id string, n int) { dm.dead.WithLabelValues(id).Add(float64(n)) },
	})
	dm.watch(m.reg, src.Delivery(), disp)
	dispCtx, stopDispatch := context.WithCancel(context.WithoutCancel(ctx))
	dispDone := make(chan struct{})
	go func() {
		defer close(dispDone)
		disp.Run(dispCtx)
	}()
	defer func() { stopDispatch(); <-dispDone }() // before the store closes
	verifier, err := rc.NewVerifier(rc.VerifierConfig{Apps: cfg.Apps, Tolerance: cfg.SignatureTolerance, Replay: store})
	if err != nil {
		return err
	}
	m.lag.known = verifier.HasApp // follows the apps a reload sets
	callbacks, err := ingest.New(store, ingest.Options{
		Verifier:              verifier,
		InsecureSkipSignature: cfg.InsecureSkipSignature,
		MaxBodyBytes:          cfg.MaxBodyBytes,
		Logger:                log,
		OnAnswer:              m.onAnswer,
		OnStored:              m.lag.onStored,
		// The quarantine and the log name the client a trusted proxy
		// forwarded for, as the wrong-token limit counts it.
		Remote: func(r *http.Request) string { return access.Proxies(cfg.TrustedProxies).Client(r).String() },
	})
	if err != nil {
		return err
	}

	stopping := make(chan struct{}) // closed when shutdown starts: ends event streams
	mux := http.NewServeMux()
	// The callback endpoint, never behind the API token (RC cannot send
	// one), also with a trailing slash: a console URL typed with one must
	// not lose callbacks (RC does not follow redirects on a POST).
	callbackPatterns := []string{"/v1/callbacks/recording", "/v1/callbacks/recording/{$}"}
	for _, p := range callbackPatterns {
		mux.Handle(p, callbacks)
	}
	// One rule: the dashboard's login opens the API's event stream too.
	revocations, ok := store.(access.Revocations)
	if !ok {
		return fmt.Errorf("store %T keeps no revoked sessions", store)
	}
	rule := access.NewRule(access.Options{Token: cfg.APIToken, TrustedProxies: cfg.TrustedProxies, AllowedHosts: cfg.AllowedHosts,
		Revocations: revocations, RevocationRefresh: cfg.SessionRefresh, Logger: log})
	if err := rule.Refresh(ctx); err != nil {
		return err
	}
	refreshCtx, stopRefresh := context.WithCancel(ctx)
	refreshDone := make(chan struct{})
	go func() {
		defer close(refreshDone)
		rule.Run(refreshCtx) // rereads logouts made on other instances
	}()
	defer func() { stopRefresh(); <-refreshDone }() // before the store closes
	remover, ok := store.(removal.Store)
	if !ok {
		return fmt.Errorf("store %T cannot remove recordings", store)
	}
	rm := m.removal()
	retention := &removal.Retention{Store: remover, Recordings: cfg.Retain, Quarantine: cfg.QuarantineRetain, Every: cfg.RetainEvery,
		Logger: log, OnBatch: rm.onBatch, OnPass: rm.onPass}
	retentionCtx, stopRetention := context.WithCancel(ctx)
	retentionDone := make(chan struct{})
	go func() {
		defer close(retentionDone)
		retention.Run(retentionCtx)
	}()
	defer func() { stopRetention(); <-retentionDone }() // before the store closes
	// Storage verification, on the projecting instance only (the verifier
	// waits while another projects).
	if cfg.VerifyStorage {
		storageCheck, err := newStorageVerifier(cfg, store, m, log)
		if err != nil {
			return err
		}
		verifyCtx, stopVerify := context.WithCancel(ctx)
		verifyDone := make(chan struct{})
		go func() {
			defer close(verifyDone)
			storageCheck.Run(verifyCtx)
		}()
		defer func() { stopVerify(); <-verifyDone }() // before the store closes
	}
	queries := api.New(store, api.Options{Access: rule, Logger: log, FindingRules: findingRules, Stopping: stopping, MaxStreams: cfg.MaxStreams, Erase: eraser(remover, rm, log),
		Destinations: &api.Destinations{Store: src.Delivery(), AllowPrivate: cfg.AllowPrivateDestinations, Changed: disp.Reload, Announce: src.Announce,
			Senders: senders},
		Metrics:       promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}),
		VerifyStorage: cfg.VerifyStorage})
	queries.Register(mux)
	m.watchStreams(queries)
	// (The routes Register returns are the ones the OpenAPI document lists; a test holds them equal.)
	dash, err := dashboard.New(store, dashboard.Options{Access: rule, Logger: log, FindingRules: findingRules, Destinations: src.Delivery(), DestinationsChanged: disp.Reload,
		VerifyStorage: cfg.VerifyStorage})
	if err != nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	dash.Register(mux)
	srv := &http.Server{
		// Compressed answers but the callbacks'; mux's own 404s and 405s
		// as JSON for the API and a page for the dashboard.
		Handler:           api.Front(mux, dash.ErrorPage, callbackPatterns...),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second, // RC waits 5 s for an answer; a slower body is not RC
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ConnContext:       api.ConnContext, // lets an event stream bound its socket buffer
	}
	srv.RegisterOnShutdown(func() { close(stopping) })
	var metricsSrv *http.Server
	if metricsLn != nil {
		internal := http.NewServeMux()
		queries.RegisterInternal(internal)
		metricsSrv = &http.Server{
			Handler:           internal,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       15 * time.Second,
			WriteTimeout:      15 * time.Second,
			IdleTimeout:       90 * time.Second,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
	}

	keys := verifier.AppKeys()
	sort.Strings(keys)
	kind, dbPath, _ := parseDB(cfg.DB)
	attrs := []any{"addr", ln.Addr().String(), "callbacks", "http://" + ln.Addr().String() + "/v1/callbacks/recording",
		"dashboard", "http://" + ln.Addr().String() + "/", "db", redactURL(dbPath)}
	if kind == "sqlite" { // the settings of the backend in use only
		attrs = append(attrs, "sqlite_synchronous", cfg.SQLiteSynchronous, "sqlite_checkpoint", cfg.SQLiteCheckpoint)
	}
	log.Info("listening", append(attrs, "apps", keys)...)
	if metricsSrv != nil {
		log.Info("metrics listening", "addr", metricsLn.Addr().String(), "paths", "/metrics /readyz /healthz",
			"note", "no API token on this listener: keep it on an internal interface")
	}
	if len(cfg.TrustedProxies) > 0 {
		log.Info("trusted proxies: X-Forwarded-For from these names the client", "trusted_proxies", cfg.TrustedProxies)
	}
	if len(keys) == 0 {
		log.Warn("no RC app configured: callbacks are refused until you add one with --app KEY=SECRET or RECLEDGER_APPS=KEY=SECRET")
	}
	if cfg.APIToken == "" {
		log.Info("no --api-token: the query API and dashboard answer loopback clients only, under loopback host names or --allowed-hosts")
	} else if len(cfg.APIToken) < minTokenLength {
		log.Warn(fmt.Sprintf("WEAK TOKEN: --api-token is shorter than %d characters. Wrong tokens are slowed per source, not stopped: "+
			"only a long random token (e.g. openssl rand -base64 32) makes guessing hopeless", minTokenLength))
	}
	if cfg.AllowPrivateDestinations {
		log.Warn("--allow-private-destinations: destinations may point at loopback and private addresses; development and tests only")
	}
	if cfg.Retain > 0 || cfg.QuarantineRetain > 0 {
		log.Info("retention", "recordings", cfg.Retain, "quarantine", cfg.QuarantineRetain, "every", cfg.RetainEvery)
	}
	if n := len(cfg.Destinations); n > 0 {
		log.Info("outbound delivery", "destinations_declared", n, "settle", cfg.Settle)
	}
	if cfg.VerifyStorage {
		log.Info("storage verification on: uploaded files are checked at their URLs", "storage_hosts", cfg.StorageHosts,
			"storage_allow_private", cfg.StorageAllowPrivate)
	}
	if cfg.InsecureSkipSignature {
		log.Warn("INSECURE: --insecure-skip-signature accepts callbacks without a signature; anyone who can reach this port can write to the ledger. Development only.")
	}

	serveErr := make(chan error, 2)
	go func() { serveErr <- srv.Serve(ln) }()
	if metricsSrv != nil {
		go func() {
			if err := metricsSrv.Serve(metricsLn); err != http.ErrServerClosed {
				serveErr <- fmt.Errorf("metrics listener: %w", err)
			}
		}()
	}
	reloads := &reloader{load: reload, cfg: cfg, log: log, level: level, verifier: verifier, rule: rule}
	for running := true; running; {
		select {
		case err := <-serveErr:
			return fmt.Errorf("serve: %w", err)
		case <-hup:
			reloads.reload()
		case <-ctx.Done():
			running = false
		}
	}
	log.Info("shutting down: finishing callbacks in flight")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Error("shutdown", "err", err)
	}
	if metricsSrv != nil {
		// After the main listener: a scraper and probes still read it
		// while callbacks in flight finish. The same deadline bounds both.
		if err := metricsSrv.Shutdown(shutdownCtx); err != nil {
			log.Error("shutdown of the metrics listener", "err", err)
		}
	}
	log.Info("stopped")
	return nil
}

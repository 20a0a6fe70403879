// Package pgstore is the ledger.Store on PostgreSQL, for several recledger
// instances behind one load balancer.
//
// Each instance group-commits its callbacks into an append-only log: one
// statement per batch, no lock beyond its own rows, so instances append
// side by side. The projection engine (internal/engine) turns the log
// into the feed and the recordings: one instance at a time projects (the
// holder of a session advisory lock), reading only rows of transactions
// older than every running one, so the feed follows commit order without
// gaps. The verifier's replay memory answers from each instance's RAM;
// the table behind it, which every instance shares, is written and checked
// in the commit of the callbacks the signatures admitted (see commit).
// docs/architecture.md explains the choices.
package pgstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/engine"
	"github.com/recledger/recledger/internal/groupcommit"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/storesql"
)

var _ ledger.Store = (*Store)(nil)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Options tune a Store.
type Options struct {
	Schema             string // the schema to use (created if missing); the URL's search_path, else "public", when empty
	QuarantineMaxCount int    // default 10,000
	QuarantineMaxBytes int64  // default 64 MiB
	MaxBatch           int    // callbacks per commit (default 256)
	// MaxWait is how long a batch waits to fill (default 0: commit what is
	// queued); tests use it to put callbacks in one batch for sure.
	MaxWait time.Duration
	// WriteTimeout bounds every database call a callback waits for (the
	// pool's connection, the group commit), counted for
	// a commit from when its oldest callback was submitted: past it the
	// callback is answered 503. Default 3s, below RC's 5 s wait for an
	// answer; without it a blackholed database held callbacks for minutes.
	WriteTimeout time.Duration
	Now          func() time.Time
	// Settle is how long a recording stays complete and quiet before it is
	// announced completed (delivery.DefaultSettle when 0).
	Settle   time.Duration
	Logger   *slog.Logger
	OnCommit func(callbacks, rejections int, took time.Duration, err error)
	// OnProjectionFailure, when set, is told of every projection step that
	// failed (for metrics; the engine logs failures, sparingly, anyway).
	OnProjectionFailure func(err error)
	// OnCompleted, when set, is told of each recording this instance's
	// projection made complete (engine.Options.Completed), for the upload
	// lag metric.
	OnCompleted func(st *ledger.State)
}

// Store is a ledger.Store on PostgreSQL.
type Store struct {
	pool            *pgxpool.Pool
	opts            Options
	sigs            *storesql.ReplayMemory
	storesql.Intake // Append and Quarantine: the group commit
	// Verifications: storage verification (ledger.Verifications), on the
	// pool as database/sql like the delivery tables.
	storesql.Verifications
	eng         *engine.Engine
	announced   chan struct{} // the engine committed outbound events
	sqlDB       *sql.DB       // the pool as database/sql, for the delivery tables
	drv         *driver
	signals     *signals
	stop        context.CancelFunc // the group commit
	done        chan struct{}
	stopEngine  context.CancelFunc
	engineDone  chan struct{}
	stopSignals context.CancelFunc
	signalsDone sync.WaitGroup
	health      storesql.Health // the last commit's and projection's outcomes, for Ping

	mu      sync.Mutex
	closed  bool
	commits int
}

// Open connects to the database at url (a postgres:// URL), applies pending
// migrations and starts the writer.
func Open(ctx context.Context, url string, o Options) (*Store, error) {
	if o.QuarantineMaxCount <= 0 {
		o.QuarantineMaxCount = 10_000
	}
	if o.QuarantineMaxBytes <= 0 {
		o.QuarantineMaxBytes = 64 << 20
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 3 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres url: %w", err)
	}
	if o.Schema == "" { // the URL may name it: ...?search_path=recledger
		o.Schema = cfg.ConnConfig.RuntimeParams["search_path"]
	}
	if o.Schema == "" {
		o.Schema = "public"
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = o.Schema
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on" // a 200 survives a crash of the database server
	// A generic plan for the array statements cannot know how few rows an
	// array holds and scans whole tables; plan each execution instead.
	cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	if cfg.ConnConfig.ConnectTimeout == 0 { // the URL's connect_timeout wins
		// The pool keeps dialing after the caller's deadline, holding a
		// connection slot; against an unreachable server (pgxpool's
		// default) it would hold it for 2 minutes after the server is back.
		cfg.ConnConfig.ConnectTimeout = 2 * o.WriteTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if err := migrate(ctx, pool, o.Schema); err != nil {
		pool.Close()
		return nil, err
	}
	s := &Store{pool: pool, opts: o, sigs: storesql.NewReplayMemory(o.Now), done: make(chan struct{}), engineDone: make(chan struct{}),
		sqlDB: stdlib.OpenDBFromPool(pool)}
	s.Verifications = storesql.Verifications{Write: s.sqlDB, Read: s.sqlDB, Dollar: true, Timeout: 4 * o.WriteTimeout, OnTimeout: pool.Reset}
	if err := s.loadSignatures(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	s.Sign = s.sigs.Take
	// The projector's and the listener's connections: outside the pool,
	// named so that an operator sees which instance projects.
	lockCfg := cfg.ConnConfig.Copy()
	lockCfg.RuntimeParams["application_name"] = "recledger projector"
	// The server keeps a session, and the projector's lock, until it
	// notices the client is gone: ask it to probe an idle connection soon
	// (the defaults wait two hours).
	lockCfg.RuntimeParams["tcp_keepalives_idle"] = "10"
	lockCfg.RuntimeParams["tcp_keepalives_interval"] = "5"
	lockCfg.RuntimeParams["tcp_keepalives_count"] = "3"
	s.drv = &driver{pool: pool, cfg: lockCfg, schema: o.Schema, timeout: o.WriteTimeout}
	listenCfg := cfg.ConnConfig.Copy()
	listenCfg.RuntimeParams["application_name"] = "recledger listener"
	s.signals = newSignals(pool, listenCfg, o.Schema, o.Logger)
	s.announced = make(chan struct{}, 1)
	s.eng = engine.New(s.drv, engine.Options{
		Logger:     o.Logger,
		Now:        o.Now,
		Rules:      delivery.Rules{Settle: o.Settle},
		OnOutbound: s.wakeDelivery,
		Completed:  o.OnCompleted,
		Nudge:      s.signals.Nudge,
		Reported: func(err error) {
			s.health.Projected(err)
			if err != nil && o.OnProjectionFailure != nil {
				o.OnProjectionFailure(err)
			}
		},
	})
	s.signals.eng = s.eng
	sigCtx, stopSignals := context.WithCancel(context.Background())
	s.stopSignals = stopSignals
	s.signalsDone.Go(func() { s.signals.listen(sigCtx) })
	s.signalsDone.Go(func() { s.signals.send(sigCtx) })
	on, err := s.Delivery().(storesql.Outbound).AnyDestination(ctx)
	if err == nil {
		s.eng.SetOutbound(on)
		err = s.eng.Start(ctx)
	}
	if err != nil {
		stopSignals()
		s.signalsDone.Wait()
		s.drv.close()
		pool.Close()
		return nil, fmt.Errorf("start projections: %w", err)
	}
	engCtx, stopEngine := context.WithCancel(context.Background())
	s.stopEngine = stopEngine
	go func() {
		defer close(s.engineDone)
		s.eng.Run(engCtx)
	}()
	s.Batcher = groupcommit.New(storesql.Track(&s.health, s.commitWithin, itemError),
		groupcommit.Options{MaxBatch: o.MaxBatch, MaxWait: o.MaxWait, ItemError: itemError})
	runCtx, stop := context.WithCancel(context.Background())
	s.stop = stop
	go func() {
		defer close(s.done)
		s.Batcher.Run(runCtx)
	}()
	return s, nil
}

// migrate applies the embedded migrations under an advisory lock, so that
// instances starting together do not race.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()
	// The lock first: instances starting together would race even on
	// CREATE SCHEMA IF NOT EXISTS.
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtext('recledger_migrate'))`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtext('recledger_migrate'))`)
	if _, err := conn.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize()); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var current int
	if err := conn.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	if current > len(entries) {
		return fmt.Errorf("migrate: database schema version %d is newer than this build's %d", current, len(entries))
	}
	for i, e := range entries[current:] {
		version := current + i + 1
		num, name, _ := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		if n, err := strconv.Atoi(num); err != nil || n != version {
			return fmt.Errorf("migration %s: want version %d", e.Name(), version)
		}
		sql, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return err
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(sql)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`, version, name, time.Now().UnixMilli())
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate %d %s: %w", version, name, err)
		}
	}
	return nil
}

// Ping implements ledger.Store: the last commit succeeded (or, when it
// failed and none was tried since, a probe write does) and the database
// answers and takes writes (it is neither a standby nor read-only). Unless
// it probes, it takes no lock, so it does not queue behind batches in flight.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.health.Check(ctx, s.probeWrite); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	var writable bool
	err := s.pool.QueryRow(ctx, `SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off'`).Scan(&writable)
	if err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	if !writable {
		return errors.New("ping: the database is read-only")
	}
	return nil
}

// Close stops the writer after it has committed what was submitted, then
// the engine after a last catch-up (when this instance projects), then
// closes the connections; the projector's lock goes with its connection.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.stop()
	<-s.done
	s.stopEngine()
	<-s.engineDone
	s.stopSignals()
	s.signalsDone.Wait()
	s.drv.close()
	s.sqlDB.Close()
	s.pool.Close()
	return nil
}

var errNoRows = pgx.ErrNoRows

func isNoRows(err error) bool { return errors.Is(err, errNoRows) }

// SchemaVersion returns the newest migration applied.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.pool.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	return v, nil
}

// itemError reports whether a failed commit may be the fault of a value in
// it (groupcommit.Options.ItemError): SQLSTATE class 22 (data exception:
// a NUL or bad UTF-8 in a text, a value out of range), 23 (integrity: a
// CHECK, a constraint a trigger raises) or 54 (program limit: a value too
// large for an index). Connection errors, a full disk (53), lock timeouts
// and cancellations (57, 40) are the database's, not an item's.
func itemError(err error) bool {
	e, ok := errors.AsType[*pgconn.PgError](err)
	if !ok || len(e.Code) != 5 {
		return false
	}
	switch e.Code[:2] {
	case "22", "23", "54":
		return true
	}
	return false
}

// Delivery implements delivery.Source: destinations and their progress,
// through the pool.
func (s *Store) Delivery() delivery.Store {
	return storesql.Outbound{Write: s.sqlDB, Read: s.sqlDB, Dollar: true, Timeout: 4 * s.opts.WriteTimeout, OnTimeout: s.pool.Reset}
}

// Announce implements delivery.Source.
func (s *Store) Announce(on bool) { s.eng.SetOutbound(on) }

// AnnounceFile announces a file's storage verification outcome
// (delivery.FileVerified, delivery.FileMissing) through the projection
// engine (engine.Engine.AnnounceFile): engine.ErrNotLeader where another
// instance projects.
func (s *Store) AnnounceFile(ctx context.Context, recordID, fileName string, t delivery.Type, v ledger.Verification) error {
	return s.eng.AnnounceFile(ctx, recordID, fileName, t, v)
}

// Projecting reports whether this instance projects (PostgreSQL: holds the
// projector's lock), as far as its engine knows: the storage verifier runs
// its checks only there, so two instances do not check the same files.
func (s *Store) Projecting() bool { return !s.eng.Following() }

// Announced implements delivery.Source.
func (s *Store) Announced() <-chan struct{} { return s.announced }

func (s *Store) wakeDelivery() {
	select {
	case s.announced <- struct{}{}:
	default:
	}
}

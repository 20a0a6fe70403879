// Package sqlitestore is the embedded ledger.Store: one SQLite file in WAL
// mode, written by a single group-committing writer and read through a small
// pool of read-only connections.
package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite" // registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/engine"
	"github.com/recledger/recledger/internal/groupcommit"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/storesql"
)

var _ ledger.Store = (*Store)(nil)

// Synchronous settings for the log.
const (
	// SyncFull fsyncs the WAL at every commit: a callback answered 200
	// survives power loss. The default.
	SyncFull = "full"
	// SyncNormal fsyncs only at checkpoints: a 200 survives a crash of
	// recledger but the last commits may be lost with the machine's power.
	SyncNormal = "normal"
)

// Who checkpoints the WAL (copies it into the database file).
const (
	// CheckpointsOwn: the store checkpoints itself (PASSIVE ten times a
	// second, TRUNCATE at close). The default.
	CheckpointsOwn = "recledger"
	// CheckpointsExternal leaves checkpoints to another process that
	// replicates the WAL (Litestream): the store runs none, and its
	// connections' automatic checkpoints are off, so it never resets the
	// WAL under the replicator. Without that process the WAL only grows.
	CheckpointsExternal = "external"
)

// Options tune a Store; the zero value is the documented default.
type Options struct {
	Synchronous        string        // SyncFull (default) or SyncNormal
	Checkpoints        string        // CheckpointsOwn (default) or CheckpointsExternal
	BusyTimeout        time.Duration // how long a write waits for a lock (default 3s, below RC's 5 s wait for an answer)
	QuarantineMaxCount int           // rejections kept (default 10,000)
	QuarantineMaxBytes int64         // bytes of rejected requests kept, headers and all (default 64 MiB)
	MaxBatch           int           // callbacks per commit (default 256)
	MaxWait            time.Duration // wait for a batch to fill (default 0)
	// ReplayWindow is how long after a signed callback arrived its
	// signature could still pass the timestamp check: twice the verifier's
	// tolerance (default 10 minutes). The replay memory is rebuilt from the
	// rows of that window at start.
	ReplayWindow time.Duration
	Now          func() time.Time
	// Settle is how long a recording stays complete and quiet before it is
	// announced completed (delivery.DefaultSettle when 0).
	Settle time.Duration
	Logger *slog.Logger // for the projector's failures (none when nil)
	// OnCommit, when set, is told of every group commit: how many callbacks
	// and rejections it held, how long it took, and its error (for metrics).
	OnCommit func(callbacks, rejections int, took time.Duration, err error)
	// OnProjectionFailure, when set, is told of every projection run that
	// failed (for metrics; the failure is logged, sparingly, anyway).
	OnProjectionFailure func(err error)
	// OnCompleted, when set, is told of each recording the projection made
	// complete (engine.Options.Completed), for the upload lag metric.
	OnCompleted func(st *ledger.State)
}

func (o *Options) defaults() error {
	switch strings.ToLower(o.Synchronous) {
	case "", SyncFull:
		o.Synchronous = SyncFull
	case SyncNormal:
		o.Synchronous = SyncNormal
	default:
		return fmt.Errorf("synchronous %q: want full or normal", o.Synchronous)
	}
	switch strings.ToLower(o.Checkpoints) {
	case "", CheckpointsOwn:
		o.Checkpoints = CheckpointsOwn
	case CheckpointsExternal:
		o.Checkpoints = CheckpointsExternal
	default:
		return fmt.Errorf("checkpoints %q: want %s or %s", o.Checkpoints, CheckpointsOwn, CheckpointsExternal)
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 3 * time.Second
	}
	if o.QuarantineMaxCount <= 0 {
		o.QuarantineMaxCount = 10_000
	}
	if o.QuarantineMaxBytes <= 0 {
		o.QuarantineMaxBytes = 64 << 20
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ReplayWindow <= 0 {
		o.ReplayWindow = 10 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Store is a ledger.Store in one SQLite file.
type Store struct {
	opts   Options
	lock   *os.File // held while open: one process per store
	writer *sql.DB  // the log file; one connection: SQLite has one writer at a time
	reader *sql.DB

	ledgerWriter *sql.DB // the ledger file, written by the engine only
	ledgerReader *sql.DB
	stmts        writeStmts

	storesql.Intake // Append and Quarantine: the group commit
	// Verifications: storage verification (ledger.Verifications), in the
	// ledger file beside the destinations.
	storesql.Verifications
	stop context.CancelFunc
	done chan struct{}

	driver driver
	eng    *engine.Engine
	// announced: the engine committed outbound events
	announced chan struct{}
	stopEng   context.CancelFunc
	engDone   chan struct{}
	sigs      *storesql.ReplayMemory

	checkpointer *sql.DB
	stopCkpt     context.CancelFunc
	ckptDone     chan struct{}

	health storesql.Health // the last commit's and projection's outcomes, for Ping

	mu         sync.Mutex // guards the fields below
	quarantine struct{ count, bytes int64 }
	closed     bool
}

// LedgerPath is where the store at path keeps its projections: beside the
// log, recledger.db -> recledger.ledger.db.
func LedgerPath(path string) string {
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + ".ledger" + ext
}

// Open opens (creating them and their directory if needed) the store at
// path: the log file at path and the ledger file at LedgerPath(path). It
// brings both schemas up to date and starts the writer and the projector.
func Open(ctx context.Context, path string, o Options) (*Store, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
	}
	lock, err := lockFile(path)
	if err != nil {
		return nil, err
	}
	s := &Store{opts: o, lock: lock, done: make(chan struct{}), engDone: make(chan struct{}), ckptDone: make(chan struct{})}
	// The ledger is derived and rebuildable: after a power loss it may lose
	// its last commits, and with them its watermark, and projects them again.
	ledger := LedgerPath(path)
	for _, c := range []struct {
		db         **sql.DB
		path, sync string
		readOnly   bool
		conns      int
	}{
		{&s.writer, path, o.Synchronous, false, 1},
		{&s.reader, path, o.Synchronous, true, 4},
		{&s.checkpointer, path, o.Synchronous, false, 1},
		{&s.ledgerWriter, ledger, SyncNormal, false, 1},
		{&s.ledgerReader, ledger, SyncNormal, true, 4},
	} {
		db, err := sql.Open("sqlite", dsn(c.path, o, c.sync, c.readOnly))
		if err != nil {
			s.closeDBs()
			return nil, fmt.Errorf("open %s: %w", c.path, err)
		}
		db.SetMaxOpenConns(c.conns)
		db.SetMaxIdleConns(c.conns)
		*c.db = db
	}
	for _, m := range []struct {
		db   *sql.DB
		file string
	}{{s.writer, LogFile}, {s.ledgerWriter, LedgerFile}} {
		if m.file == LogFile {
			if err := incrementalVacuum(ctx, m.db, o.Logger); err != nil {
				s.closeDBs()
				return nil, err
			}
		}
		if _, err := Migrate(ctx, m.db, m.file); err != nil {
			s.closeDBs()
			return nil, err
		}
	}
	s.sigs = storesql.NewReplayMemory(o.Now)
	s.Verifications = storesql.Verifications{Write: s.ledgerWriter, Read: s.ledgerReader}
	s.driver.s = s
	s.announced = make(chan struct{}, 1)
	s.eng = engine.New(&s.driver, engine.Options{Logger: o.Logger, Reported: s.projected, Now: o.Now,
		Rules: delivery.Rules{Settle: o.Settle}, OnOutbound: s.wakeDelivery, Completed: o.OnCompleted})
	if err := s.prepare(ctx); err != nil {
		s.closeDBs()
		return nil, err
	}
	if err := s.load(ctx); err != nil {
		s.closeDBs()
		return nil, err
	}
	s.Sign = s.sigs.Take
	s.Batcher = groupcommit.New(storesql.Track(&s.health, s.commit, itemError),
		groupcommit.Options{MaxBatch: o.MaxBatch, MaxWait: o.MaxWait, ItemError: itemError})
	runCtx, stop := context.WithCancel(context.Background())
	s.stop = stop
	go func() {
		defer close(s.done)
		s.Batcher.Run(runCtx)
	}()
	engCtx, stopEng := context.WithCancel(context.Background())
	s.stopEng = stopEng
	go func() {
		defer close(s.engDone)
		s.eng.Run(engCtx)
	}()
	ckptCtx, stopCkpt := context.WithCancel(context.Background())
	s.stopCkpt = stopCkpt
	go func() {
		defer close(s.ckptDone)
		if o.Checkpoints == CheckpointsOwn {
			s.checkpoint(ckptCtx)
		}
	}()
	return s, nil
}

// itemError reports whether a failed commit may be the fault of a value in
// it (groupcommit.Options.ItemError): a constraint (a CHECK, a trigger's
// RAISE), a value too big, a type mismatch or a parameter out of range.
// Busy, I/O, full disk and the like are the database's, not an item's.
func itemError(err error) bool {
	e, ok := errors.AsType[*sqlite.Error](err)
	if !ok {
		return false
	}
	switch e.Code() & 0xff { // the primary code of an extended one
	case sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_TOOBIG, sqlite3.SQLITE_MISMATCH, sqlite3.SQLITE_RANGE:
		return true
	}
	return false
}

func dsn(path string, o Options, synchronous string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", o.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+strings.ToUpper(synchronous)+")")
	// Page caches are per connection and count in the process's memory:
	// the writers get 32 MiB, each reader 4 MiB (the OS caches the files
	// anyway). No mmap: mapped pages a query touches stay in RSS.
	if readOnly {
		q.Add("_pragma", "cache_size(-4096)")
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "cache_size(-32768)")
		q.Add("_txlock", "immediate") // take the write lock at BEGIN, not mid-transaction
		// What is deleted or overwritten (a quarantine row, a removed
		// recording, an old version of a record) is overwritten with
		// zeros, so an erasure leaves no bytes in free pages. The log is
		// append-only and the ledger rewrites a record in place, so the
		// cost is small (see docs/architecture.md, retention and erasure).
		q.Add("_pragma", "secure_delete(1)")
		// A statement inside a transaction that may fail half-way keeps a
		// statement journal; in a temporary file that cost a write
		// system call per projected recording.
		q.Add("_pragma", "temp_store(MEMORY)")
		// Checkpoints mostly run beside the writer (see checkpoint); the
		// writer checkpoints itself only if the WAL outgrows 20000 pages.
		// With external checkpoints, never.
		autocheckpoint := 20000
		if o.Checkpoints == CheckpointsExternal {
			autocheckpoint = 0
		}
		q.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", autocheckpoint))
	}
	// Escaped, so a path holding '?', '#' or '%' names the file it says
	// (SQLite decodes the URI) instead of cutting the options short.
	return "file:" + escapePath(path) + "?" + q.Encode()
}

// load reads what the store keeps in memory (the replay memory, the
// quarantine's size) and brings the projections up to the log: whatever a
// crash left unprojected is projected before the store is used.
func (s *Store) load(ctx context.Context) error {
	if err := loadSignatures(ctx, s.writer, s.sigs, s.opts.Now(), s.opts.ReplayWindow); err != nil {
		return err
	}
	err := s.writer.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(stored_size), 0) FROM quarantine`).
		Scan(&s.quarantine.count, &s.quarantine.bytes)
	if err != nil {
		return fmt.Errorf("measure quarantine: %w", err)
	}
	var logged int64
	if err := s.writer.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM log`).Scan(&logged); err != nil {
		return fmt.Errorf("read log position: %w", err)
	}
	projected, err := s.driver.Watermark(ctx)
	if err != nil {
		return err
	}
	if projected.Seq > logged {
		// The log lost commits the ledger had projected (a power loss with
		// synchronous=normal, or a restored backup of the log alone): the
		// ledger no longer describes the log, so it is rebuilt from it.
		s.opts.Logger.Warn("the ledger is ahead of the log; rebuilding it", "projected", projected.Seq, "logged", logged)
		if _, err := s.eng.Rebuild(ctx); err != nil {
			return err
		}
		if err := s.verificationsBehind(ctx, logged); err != nil {
			return err
		}
	}
	s.eng.Committed([]engine.Row{{Log: engine.LogPos{ID: logged}}}, nil)
	if projected.Seq == 0 && logged > 0 {
		s.opts.Logger.Info("projecting the log into the ledger", "callbacks", logged)
	}
	on, err := s.Delivery().(storesql.Outbound).AnyDestination(ctx)
	if err != nil {
		return err
	}
	s.eng.SetOutbound(on)
	return s.eng.Start(ctx)
}

// verificationsBehind brings storage verification back to a log that
// lost commits: the verifier's feed cursor may point past the log's last
// seq, and the seqs the log lost are given again to new callbacks, whose
// uploads the verifier must not skip; and the checks of recordings the
// log no longer holds go (they describe nothing stored).
func (s *Store) verificationsBehind(ctx context.Context, logged int64) error {
	tx, err := s.ledgerWriter.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("storage verification behind the log: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE verification_cursor SET seq = ? WHERE id = 1 AND seq > ?`, logged, logged); err != nil {
		return fmt.Errorf("storage verification behind the log: cursor: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM verifications WHERE record_id NOT IN (SELECT record_id FROM recordings)`); err != nil {
		return fmt.Errorf("storage verification behind the log: checks: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("storage verification behind the log: %w", err)
	}
	return nil
}

// projected is told each projection step's outcome.
func (s *Store) projected(err error) {
	s.health.Projected(err)
	if err != nil && s.opts.OnProjectionFailure != nil {
		s.opts.OnProjectionFailure(err)
	}
}

// Rebuild implements ledger.Store: the engine empties the projections and
// derives them again from the log. Callbacks arriving meanwhile are logged
// as usual and projected on top.
func (s *Store) Rebuild(ctx context.Context) (int64, error) { return s.eng.Rebuild(ctx) }

// Ping reports whether the store takes callbacks: its last commit and its
// last projection succeeded (a full disk still grants the write lock), and
// the write lock can be taken. It writes nothing unless the last commit
// failed and none was tried since (see storesql.Health.Check).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.health.Check(ctx, s.probeWrite); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	return tx.Rollback()
}

// probeWrite commits a small write to the log, as a callback's commit
// would (a row inserted and deleted again: the pages still go through the
// WAL and its fsync), to learn whether the log takes writes again.
func (s *Store) probeWrite(ctx context.Context) error {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("probe write: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO log (received_at, body) VALUES (0, zeroblob(16384))`); err != nil {
		return fmt.Errorf("probe write: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM log WHERE seq = last_insert_rowid()`); err != nil {
		return fmt.Errorf("probe write: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("probe write: %w", err)
	}
	return nil
}

// Close stops the writer after it has committed everything submitted, and
// closes the database.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.stop()
	<-s.done // every submitted callback is committed
	s.stopEng()
	<-s.engDone // and projected
	s.stopCkpt()
	<-s.ckptDone
	return s.closeDBs()
}

func (s *Store) closeDBs() error {
	var errs []error
	for _, db := range []*sql.DB{s.ledgerReader, s.ledgerWriter, s.checkpointer, s.reader, s.writer} {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	if s.lock != nil {
		errs = append(errs, s.lock.Close()) // releases the flock
	}
	return errors.Join(errs...)
}

// checkpoint copies the WAL into the database file ten times a second, on its
// own connection: a passive checkpoint never blocks the writer, so the copy
// and its fsync run beside the commits (on the other core) instead of inside
// one of them. At shutdown it truncates the WAL.
func (s *Store) checkpoint(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if _, err := s.checkpointer.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`); err != nil && ctx.Err() == nil {
				s.opts.Logger.Warn("WAL checkpoint", "err", err)
			}
		case <-ctx.Done():
			if _, err := s.checkpointer.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
				s.opts.Logger.Warn("WAL checkpoint at close", "err", err)
			}
			return
		}
	}
}

// Delivery implements delivery.Source: destinations and their progress, in
// the ledger file beside the outbox.
func (s *Store) Delivery() delivery.Store {
	return storesql.Outbound{Write: s.ledgerWriter, Read: s.ledgerReader}
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

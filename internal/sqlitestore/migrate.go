package sqlitestore

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations
var migrationFiles embed.FS

// The two files of a store, each with its own migrations.
const (
	LogFile    = "log"    // the callback log, replay memory, quarantine: migrations/log
	LedgerFile = "ledger" // the projections: migrations/ledger
)

// Migration is one versioned schema change, from migrations/FILE/NNNN_name.sql.
type Migration struct {
	File    string
	Version int
	Name    string
	sql     string
}

// Migrations lists the schema changes this build knows for one file, in
// order.
func Migrations(file string) ([]Migration, error) {
	dir := "migrations/" + file
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration file %s: want NNNN_name.sql", e.Name())
		}
		b, err := migrationFiles.ReadFile(dir + "/" + e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{File: file, Version: v, Name: name, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %d (%s): versions must run 1, 2, 3... without gaps", m.Version, m.Name)
		}
	}
	return ms, nil
}

// Migrate applies the migrations db has not had, each in its own
// transaction, and returns those it applied. A database newer than this
// build is refused rather than written by code that does not know it.
func Migrate(ctx context.Context, db *sql.DB, file string) ([]Migration, error) {
	return migrateTo(ctx, db, file, -1)
}

// migrateTo applies the migrations up to version (all when negative): tests
// make files as older builds left them.
func migrateTo(ctx context.Context, db *sql.DB, file string, version int) ([]Migration, error) {
	ms, err := Migrations(file)
	if err != nil {
		return nil, err
	}
	if version >= 0 && version < len(ms) {
		ms = ms[:version]
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	current, err := SchemaVersion(ctx, db)
	if err != nil {
		return nil, err
	}
	if current > len(ms) {
		return nil, fmt.Errorf("migrate %s: database schema version %d is newer than this build's %d; use a newer recledger", file, current, len(ms))
	}
	var applied []Migration
	for _, m := range ms[current:] {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return applied, fmt.Errorf("migrate %s %d %s: %w", file, m.Version, m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			tx.Rollback()
			return applied, fmt.Errorf("migrate %s %d %s: %w", file, m.Version, m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.Version, m.Name, time.Now().UnixMilli()); err != nil {
			tx.Rollback()
			return applied, fmt.Errorf("migrate %s %d %s: %w", file, m.Version, m.Name, err)
		}
		if err := tx.Commit(); err != nil {
			return applied, fmt.Errorf("migrate %s %d %s: %w", file, m.Version, m.Name, err)
		}
		applied = append(applied, m)
	}
	return applied, nil
}

// incrementalVacuum makes the log file give pages freed by the quarantine's
// cap back to the file system (PRAGMA incremental_vacuum after a cap): the
// file then follows the cap instead of keeping its largest size. The mode
// must be set before the first table exists; a file made without it is
// rebuilt once with VACUUM, which takes a while on a large file, so it is
// logged.
func incrementalVacuum(ctx context.Context, db *sql.DB, logger *slog.Logger) error {
	conn, err := db.Conn(ctx) // the pragma and the VACUUM on one connection
	if err != nil {
		return fmt.Errorf("auto_vacuum: %w", err)
	}
	defer conn.Close()
	var mode, tables int
	if err := conn.QueryRowContext(ctx, `PRAGMA auto_vacuum`).Scan(&mode); err != nil {
		return fmt.Errorf("auto_vacuum: %w", err)
	}
	const incremental = 2
	if mode == incremental {
		return nil
	}
	if _, err := conn.ExecContext(ctx, `PRAGMA auto_vacuum = INCREMENTAL`); err != nil {
		return fmt.Errorf("auto_vacuum: %w", err)
	}
	if err := conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_schema`).Scan(&tables); err != nil {
		return fmt.Errorf("auto_vacuum: %w", err)
	}
	// VACUUM makes the mode take effect: on a new file it costs nothing
	// (in WAL mode even an empty file needs it), on an old one it is the
	// one-time rebuild.
	start := time.Now()
	if tables > 0 {
		logger.Info("rebuilding the log file once so that it can give freed space back (VACUUM)")
	}
	if _, err := conn.ExecContext(ctx, `VACUUM`); err != nil {
		return fmt.Errorf("auto_vacuum: VACUUM: %w", err)
	}
	if tables == 0 {
		return nil
	}
	logger.Info("log file rebuilt", "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// SchemaVersion returns the newest migration applied to db (0 for none).
func SchemaVersion(ctx context.Context, db *sql.DB) (int, error) {
	var v sql.NullInt64
	err := db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return int(v.Int64), nil
}

// MigrateFile opens the store at path (creating its files), applies pending
// migrations to both files and returns those applied and the version each
// file is at now.
func MigrateFile(ctx context.Context, path string, o Options) ([]Migration, map[string]int, error) {
	if err := o.defaults(); err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, nil, fmt.Errorf("create data directory: %w", err)
	}
	lock, err := lockFile(path)
	if err != nil {
		return nil, nil, err
	}
	if lock != nil {
		defer lock.Close()
	}
	var all []Migration
	versions := map[string]int{}
	for _, f := range []struct{ file, path string }{{LogFile, path}, {LedgerFile, LedgerPath(path)}} {
		db, err := sql.Open("sqlite", dsn(f.path, o, o.Synchronous, false))
		if err != nil {
			return all, nil, err
		}
		var applied []Migration
		if f.file == LogFile {
			err = incrementalVacuum(ctx, db, o.Logger)
		}
		if err == nil {
			applied, err = Migrate(ctx, db, f.file)
		}
		all = append(all, applied...)
		if err == nil {
			versions[f.file], err = SchemaVersion(ctx, db)
		}
		db.Close()
		if err != nil {
			return all, nil, err
		}
	}
	return all, versions, nil
}

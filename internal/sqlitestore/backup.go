package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// BackupInfo describes a backup written or restored: the two files and how
// far each reaches.
type BackupInfo struct {
	Log, Ledger string // the files
	Callbacks   int64  // the log's newest seq
	Projected   int64  // the ledger's watermark: the log seq it has projected up to
}

// Backup writes a consistent copy of the store at path to dst (the log) and
// LedgerPath(dst) (the ledger), while a server may be writing it: each file
// is copied by VACUUM INTO inside one read transaction, a snapshot that the
// WAL keeps intact however many commits follow, so no lock of the server's
// is needed. The ledger is copied first and the log second, so the copy's
// ledger never projects a callback its log lacks (Open would then rebuild
// it); the callbacks logged in between are projected when the copy is
// opened. A copy is written under a temporary name and renamed into place
// once complete and synced; an existing dst is replaced only with
// overwrite.
func Backup(ctx context.Context, path, dst string, overwrite bool) (BackupInfo, error) {
	info := BackupInfo{Log: dst, Ledger: LedgerPath(dst)}
	// A directory is no backup's name: its ledger would be a hidden
	// ".ledger" inside it, written before the log's rename failed.
	if fi, err := os.Stat(dst); strings.HasSuffix(dst, string(filepath.Separator)) || err == nil && fi.IsDir() {
		return info, fmt.Errorf("backup: %s is a directory; name a file in it (such as %s)", dst, filepath.Join(dst, "recledger.db"))
	}
	if err := distinct(path, dst); err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	for _, p := range []string{path, LedgerPath(path)} {
		if _, err := os.Stat(p); err != nil {
			return info, fmt.Errorf("backup: the store's file: %w", err)
		}
	}
	if !overwrite {
		for _, p := range []string{info.Log, info.Ledger} {
			if _, err := os.Stat(p); err == nil {
				return info, fmt.Errorf("backup: %s exists; choose another name or allow replacing it", p)
			}
		}
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	// Ledger first: see above.
	for _, f := range []struct{ file, from, to string }{
		{LedgerFile, LedgerPath(path), info.Ledger},
		{LogFile, path, info.Log},
	} {
		if err := copyFile(ctx, f.file, f.from, f.to); err != nil {
			return info, err
		}
		if betweenCopies != nil && f.file == LedgerFile {
			betweenCopies()
		}
	}
	return info, readInfo(ctx, &info)
}

// betweenCopies, when set (by tests), runs after Backup copied the first
// file and before the second.
var betweenCopies func()

// betweenInstalls, when set (by tests), runs after Restore put the first
// file in place and before the second; an error stops the restore there,
// as a crash would.
var betweenInstalls func() error

// copyFile writes a snapshot of the SQLite file from to the new file to.
func copyFile(ctx context.Context, file, from, to string) error {
	// mode=ro: the backup never writes the store, not even a checkpoint
	// when it closes.
	src, err := sql.Open("sqlite", "file:"+escapePath(from)+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		return fmt.Errorf("backup %s: %w", from, err)
	}
	defer src.Close()
	if _, err := schemaVersionOf(ctx, src, file); err != nil {
		return fmt.Errorf("backup %s: %w", from, err)
	}
	tmp, err := tempBeside(to)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp)
	if _, err := src.ExecContext(ctx, `VACUUM INTO ?`, tmp); err != nil {
		return fmt.Errorf("backup %s: VACUUM INTO: %w", from, err)
	}
	if err := syncFile(tmp); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := check(ctx, tmp, file); err != nil {
		return fmt.Errorf("backup %s: the copy: %w", from, err)
	}
	if err := os.Rename(tmp, to); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return syncDir(filepath.Dir(to))
}

// Restore makes the store at path a copy of the backup at from (written by
// Backup, or a store's two files copied while no server ran): both files
// are copied under temporary names, checked (integrity, and a schema of
// this build's or older), and renamed into place, the log first, after
// the old ledger is removed. It
// takes the store's lock, so it refuses while a server has the store, and
// replaces an existing store only with overwrite. The store's stale -wal and
// -shm files are removed: SQLite would apply an old WAL to the new file.
// Run as root, it gives the files to the owner of path's directory (the
// service's user), which could not open root's.
func Restore(ctx context.Context, from, path string, overwrite bool) (BackupInfo, error) {
	info := BackupInfo{Log: path, Ledger: LedgerPath(path)}
	if err := distinct(path, from); err != nil {
		return info, fmt.Errorf("restore: %w", err)
	}
	for _, p := range []string{from, LedgerPath(from)} {
		if _, err := os.Stat(p); err != nil {
			return info, fmt.Errorf("restore: the backup's file: %w (a backup is two files: the log and the ledger beside it)", err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return info, fmt.Errorf("restore: create data directory: %w", err)
	}
	lock, err := lockFile(path)
	if err != nil {
		return info, fmt.Errorf("restore: %w", err)
	}
	defer lock.Close()
	// The lock too: a server that cannot open it cannot start.
	if err := ownLikeDir(filepath.Dir(path), path+".lock"); err != nil {
		return info, fmt.Errorf("restore: %w", err)
	}
	if !overwrite {
		for _, p := range []string{info.Log, info.Ledger} {
			if _, err := os.Stat(p); err == nil {
				return info, fmt.Errorf("restore: %s exists; a restore replaces the store only when told to (--force)", p)
			}
		}
	}
	// Staged (copied and checked) under temporary names first, the log's
	// then the ledger's.
	var tmps []string
	defer func() {
		for _, tmp := range tmps {
			os.Remove(tmp)
		}
	}()
	for _, f := range []struct{ file, from, to string }{
		{LogFile, from, info.Log},
		{LedgerFile, LedgerPath(from), info.Ledger},
	} {
		tmp, err := tempBeside(f.to)
		if err != nil {
			return info, fmt.Errorf("restore: %w", err)
		}
		tmps = append(tmps, tmp)
		if err := copyBytes(f.from, tmp); err != nil {
			return info, fmt.Errorf("restore: %w", err)
		}
		if err := check(ctx, tmp, f.file); err != nil {
			return info, fmt.Errorf("restore: %s is not a usable recledger %s file: %w", f.from, f.file, err)
		}
		if err := ownLikeDir(filepath.Dir(path), tmp); err != nil {
			return info, fmt.Errorf("restore: %w", err)
		}
	}
	// Installed so that a crash at any step leaves a store Open makes
	// whole: the old ledger goes first (its -wal and -shm before it, which
	// SQLite would otherwise apply to a new file), then the log is put in
	// place, then the ledger. Between those steps the store is a log
	// without a ledger, which Open projects afresh; never a ledger that
	// describes another log (Open would project the log's later callbacks
	// onto it).
	for _, p := range []string{info.Ledger + "-wal", info.Ledger + "-shm", info.Ledger} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return info, fmt.Errorf("restore: remove the old ledger: %w", err)
		}
	}
	for i, to := range []string{info.Log, info.Ledger} {
		for _, suffix := range []string{"-wal", "-shm"} {
			if err := os.Remove(to + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return info, fmt.Errorf("restore: remove the old store's %s: %w", suffix, err)
			}
		}
		if err := os.Rename(tmps[i], to); err != nil {
			return info, fmt.Errorf("restore: %w", err)
		}
		if i == 0 && betweenInstalls != nil {
			if err := betweenInstalls(); err != nil {
				return info, fmt.Errorf("restore: %w", err)
			}
		}
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return info, fmt.Errorf("restore: %w", err)
	}
	return info, readInfo(ctx, &info)
}

// check opens the SQLite file at path and requires it to pass
// integrity_check and to carry file's schema at a version this build knows.
// It leaves no -wal or -shm behind.
func check(ctx context.Context, path, file string) error {
	db, err := sql.Open("sqlite", "file:"+escapePath(path))
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var verdict string
	if err := db.QueryRowContext(ctx, `PRAGMA integrity_check(1)`).Scan(&verdict); err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	if verdict != "ok" {
		return fmt.Errorf("integrity check: %s", verdict)
	}
	_, err = schemaVersionOf(ctx, db, file)
	return err
}

// schemaVersionOf returns db's schema version, refusing a database that is
// no recledger file of this kind, or newer than this build.
func schemaVersionOf(ctx context.Context, db *sql.DB, file string) (int, error) {
	marker := map[string]string{LogFile: "log", LedgerFile: "projection"}[file]
	var tables int
	err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name IN ('schema_migrations', ?)`, marker).Scan(&tables)
	if err != nil {
		return 0, fmt.Errorf("read schema: %w", err)
	}
	if tables != 2 {
		return 0, fmt.Errorf("not a recledger %s file (no schema_migrations and %s tables)", file, marker)
	}
	v, err := SchemaVersion(ctx, db)
	if err != nil {
		return 0, err
	}
	ms, err := Migrations(file)
	if err != nil {
		return 0, err
	}
	if v > len(ms) {
		return 0, fmt.Errorf("%s schema version %d is newer than this build's %d; use a newer recledger", file, v, len(ms))
	}
	return v, nil
}

// readInfo fills in how far the files at info reach.
func readInfo(ctx context.Context, info *BackupInfo) error {
	for _, q := range []struct {
		path, query string
		into        *int64
	}{
		{info.Log, `SELECT COALESCE(MAX(seq), 0) FROM log`, &info.Callbacks},
		{info.Ledger, `SELECT COALESCE(MAX(seq), 0) FROM projection`, &info.Projected},
	} {
		db, err := sql.Open("sqlite", "file:"+escapePath(q.path)+"?mode=ro")
		if err != nil {
			return err
		}
		err = db.QueryRowContext(ctx, q.query).Scan(q.into)
		db.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", q.path, err)
		}
	}
	return nil
}

// tempBeside returns the name of a new empty file in to's directory (VACUUM
// INTO writes into an empty file; a rename within a directory is atomic).
func tempBeside(to string) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(to), "."+filepath.Base(to)+".tmp-*")
	if err != nil {
		return "", err
	}
	return f.Name(), f.Close()
}

func copyBytes(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", from, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", from, err)
	}
	return out.Close()
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}

// syncDir makes renames in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// escapePath makes path safe in a file: URI (see dsn).
func escapePath(path string) string { return (&url.URL{Path: path}).EscapedPath() }

// distinct refuses a backup whose files are the store's: a backup written
// over the live store would replace it under the server. The store's files
// include SQLite's -wal, -shm and -journal beside each, and the lock: a
// database renamed onto a live WAL, or a new lock file beside a server's,
// is a corrupt store or a second server on it. Directories are compared
// with symbolic links resolved, so another name for the data directory is
// still the data directory.
func distinct(store, backup string) error {
	own := map[string]bool{store + ".lock": true}
	for _, p := range []string{store, LedgerPath(store)} {
		for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
			own[p+suffix] = true
		}
	}
	ownResolved := map[string]bool{}
	for p := range own {
		a, err := resolved(p)
		if err != nil {
			return err
		}
		ownResolved[a] = true
	}
	for _, p := range []string{backup, LedgerPath(backup)} {
		a, err := resolved(p)
		if err != nil {
			return err
		}
		if ownResolved[a] {
			return fmt.Errorf("%s is one of the store's own files; name the backup elsewhere", p)
		}
	}
	return nil
}

// resolved is path made absolute, its directory's symbolic links resolved
// where the directory exists.
func resolved(path string) (string, error) {
	a, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if dir, err := filepath.EvalSymlinks(filepath.Dir(a)); err == nil {
		return filepath.Join(dir, filepath.Base(a)), nil
	}
	return a, nil
}

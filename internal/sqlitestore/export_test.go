package sqlitestore

import (
	"context"
	"database/sql"
	"log/slog"
)

// MigrateTo brings the file at path (LogFile or LedgerFile) to a version,
// as an older build left it.
func MigrateTo(ctx context.Context, path, file string, version int) error {
	db, err := sql.Open("sqlite", dsn(path, Options{}, SyncFull, false))
	if err != nil {
		return err
	}
	defer db.Close()
	if file == LogFile {
		if err := incrementalVacuum(ctx, db, slog.New(slog.DiscardHandler)); err != nil {
			return err
		}
	}
	_, err = migrateTo(ctx, db, file, version)
	return err
}

// SetBetweenCopies makes Backup call f between its two copies.
func SetBetweenCopies(f func()) { betweenCopies = f }

// SetBetweenInstalls makes Restore call f between putting its two files in
// place, and stop there if f fails.
func SetBetweenInstalls(f func() error) { betweenInstalls = f }

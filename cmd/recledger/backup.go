package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/recledger/recledger/internal/sqlitestore"
)

// errPostgresBackup sends PostgreSQL users to their database's own tools:
// recledger's copy would be neither consistent across instances nor
// restorable by the usual means.
var errPostgresBackup = errors.New("a PostgreSQL store is backed up and restored with PostgreSQL's own tools (pg_dump and pg_restore, or base backups): see \"PostgreSQL backups\" in docs/operations.md")

func newBackupCmd() *cobra.Command {
	var (
		to    string
		force bool
	)
	cmd := &cobra.Command{
		Use:   "backup --to FILE",
		Short: "Write a consistent copy of a SQLite store, while the server runs",
		Long: `backup copies the SQLite store named by --db into two files: FILE (the callback
log) and FILE's ledger beside it (FILE with .ledger before the extension: the
projections, destinations and their delivery cursors), the same layout as a
store, so "recledger restore --from FILE" or "recledger serve --db sqlite:FILE"
use it as it is.

It runs beside "recledger serve" and needs no lock of the server's: each file is
copied by SQLite's VACUUM INTO inside one read transaction, a consistent
snapshot however many callbacks arrive meanwhile (never copy a live store's
files with cp: the WAL holds recent commits). The ledger is copied first, the
log second, so every callback the copy's ledger has projected is in its log;
callbacks logged in between are projected when the copy is opened. Both files
are written under temporary names and renamed when complete, so FILE is
either a whole backup or absent. An existing FILE is replaced only with
--force.

A PostgreSQL store is backed up with pg_dump; backup says so and exits 1.`,
		Example: `  recledger backup --to /var/backups/recledger/recledger-$(date +%F).db
  recledger backup --db sqlite:/var/lib/recledger/recledger.db --to /tmp/copy.db --force`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to == "" {
				return errors.New("--to FILE: where to write the backup")
			}
			path, err := sqlitePath(cmd)
			if err != nil {
				return err
			}
			info, err := sqlitestore.Backup(cmd.Context(), path, to, force)
			if err != nil {
				return err
			}
			printBackup(cmd.OutOrStdout(), "backed up", info)
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the backup's log file; the ledger goes beside it (FILE with .ledger before the extension)")
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing backup at FILE")
	addConfigFlags(cmd, "db")
	return cmd
}

func newRestoreCmd() *cobra.Command {
	var (
		from  string
		force bool
	)
	cmd := &cobra.Command{
		Use:   "restore --from FILE",
		Short: "Make the SQLite store a copy of a backup",
		Long: `restore copies a backup written by "recledger backup --to FILE" (FILE and its
ledger beside it) into the store named by --db. It checks both files first
(SQLite's integrity_check, and a recledger schema no newer than this build's),
writes them under temporary names, removes the store's old -wal and -shm files
(SQLite would otherwise apply the old WAL to the restored file) and renames
them into place: the old ledger is removed first and the log installed before
the ledger, so a restore stopped half-way leaves a log the server projects
afresh (run restore again to finish it). Run as root, it gives the files to
the owner of the store's directory, the user the server runs as.

Stop the server first: restore takes the store's lock and refuses while a
server has it. It replaces an existing store only with --force.

When the server starts on the restored store it projects the callbacks the
backup's log holds beyond its ledger; destinations resume from the cursors
the backup holds, so events after them are delivered again (receivers
deduplicate by event id).`,
		Example: `  recledger restore --from /var/backups/recledger/recledger-2026-11-30.db --db sqlite:/var/lib/recledger/recledger.db
  recledger restore --from /tmp/copy.db --force`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" {
				return errors.New("--from FILE: the backup to restore")
			}
			path, err := sqlitePath(cmd)
			if err != nil {
				return err
			}
			info, err := sqlitestore.Restore(cmd.Context(), from, path, force)
			if err != nil {
				return err
			}
			printBackup(cmd.OutOrStdout(), "restored", info)
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the backup's log file (its ledger is read from beside it)")
	cmd.Flags().BoolVar(&force, "force", false, "replace the existing store")
	addConfigFlags(cmd, "db")
	return cmd
}

// sqlitePath returns the path of the SQLite store the configuration names,
// or the reason there is none to copy.
func sqlitePath(cmd *cobra.Command) (string, error) {
	cfg, err := loadConfig(cmd.Flags(), environ)
	if err != nil {
		return "", err
	}
	kind, path, err := parseDB(cfg.DB)
	if err != nil {
		return "", err
	}
	if kind == "postgres" {
		return "", errPostgresBackup
	}
	return path, nil
}

func printBackup(w io.Writer, verb string, info sqlitestore.BackupInfo) {
	fmt.Fprintf(w, "%s: log up to callback %d, ledger projected up to %d: %s and %s\n", verb, info.Callbacks, info.Projected, info.Log, info.Ledger)
}

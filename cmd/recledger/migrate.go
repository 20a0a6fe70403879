package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/recledger/recledger/internal/pgstore"
	"github.com/recledger/recledger/internal/sqlitestore"
)

func newMigrateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Bring the database schema up to date",
		Long: `migrate applies the schema migrations the database has not had yet and prints
the version it is at. A SQLite store is two files: the log (--db PATH) and the
ledger beside it (PATH with .ledger before the extension), each versioned. serve does the same when it starts; run migrate on its
own to upgrade before starting a new version, or to check the version.`,
		Example: `  recledger migrate
  recledger migrate --db sqlite:/var/lib/recledger/recledger.db`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd.Flags(), environ)
			if err != nil {
				return err
			}
			kind, path, err := parseDB(cfg.DB)
			if err != nil {
				return err
			}
			if kind == "postgres" {
				store, err := pgstore.Open(cmd.Context(), path, pgstore.Options{}) // Open migrates, under a lock
				if err != nil {
					return err
				}
				defer store.Close()
				v, err := store.SchemaVersion(cmd.Context())
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "schema version: postgres %d\n", v)
				return nil
			}
			applied, versions, err := sqlitestore.MigrateFile(cmd.Context(), path, sqlitestore.Options{Synchronous: cfg.SQLiteSynchronous})
			for _, m := range applied {
				fmt.Fprintf(cmd.OutOrStdout(), "applied %s %04d %s\n", m.File, m.Version, m.Name)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "schema version: log %d, ledger %d\n", versions[sqlitestore.LogFile], versions[sqlitestore.LedgerFile])
			return nil
		},
	}
	addConfigFlags(cmd, "db", "sqlite-synchronous")
	return cmd
}

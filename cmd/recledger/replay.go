package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func newReplayCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Rebuild every projection (recordings, files) from the raw callback log",
		Long: `replay discards the recordings and files derived from the raw log and derives
them again, applying every original callback in the log. Use it after an
upgrade that changes how callbacks are interpreted, or to check the ledger.
Stop the server first: a SQLite store is open in one process at a time, and
replay refuses to run beside a server that has it.`,
		Example: `  recledger replay
  recledger replay --db sqlite:/var/lib/recledger/recledger.db`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd.Flags(), environ)
			if err != nil {
				return err
			}
			store, err := openStore(cmd.Context(), cfg, storeHooks{})
			if err != nil {
				return err
			}
			defer store.Close()
			start := time.Now()
			n, err := store.Rebuild(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "replayed %d callbacks in %s\n", n, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	addConfigFlags(cmd, "db", "sqlite-synchronous", "db-write-timeout", "settle")
	return cmd
}

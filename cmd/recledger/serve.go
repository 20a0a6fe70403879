package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newServeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Receive RC's callbacks and serve the ledger (arrives with the ingest work)",
		Long: `serve will listen on 127.0.0.1:8080, receive RC's callbacks at
POST /v1/callbacks/recording and keep the ledger in ./data/recledger.db.
This build has the protocol package only: serving arrives with the ingest
work, and the command says so and exits.`,
		Example: "  recledger serve",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(),
				"recledger serve: not available yet; receiving callbacks arrives with the ingest work. "+
					"Meanwhile `recledger sign` signs a callback body the way RC does.")
			return err
		},
	}
}

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/recledger/recledger/internal/removal"
)

func newEraseCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "erase --user ID [--app KEY]",
		Short: "Remove everything that names a user (DELETE /v1/users/{id}); needs the server's API token",
		Long: `Erase removes every recording of the user (of one app with --app), with their files,
outbound events and their rows' bodies in the log (the rows stay as tombstones, so feeds and
cursors stay valid), and every quarantined request holding the user's id. The server writes an
audit row that names no one, and answers what it removed. It cannot be undone.

The server must run with --api-token, and the token must be given (--api-token or
RECLEDGER_API_TOKEN): a loopback client without a token is refused.`,
		Example: `  recledger erase --user 222 --app your_appkey --server https://recledger.example.com`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			user, _ := cmd.Flags().GetString("user")
			app, _ := cmd.Flags().GetString("app")
			if user == "" {
				return errors.New("--user: give the user's id")
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			c.flags = map[string]string{"appKey": "app", "userId": "user"}
			q := url.Values{}
			if app != "" {
				q.Set("appKey", app)
			}
			resp, err := c.do(cmd.Context(), http.MethodDelete, "/v1/users/"+url.PathEscape(user), q, nil, true)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			var got removal.Erasure
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				return fmt.Errorf("read answer: %w", err)
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), got)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "erased: %d recordings, %d files, %d log rows (now tombstones), %d outbound events, %d quarantine rows\n",
				got.Recordings, got.Files, got.LogRows, got.Outbound, got.Quarantine)
			return nil
		},
	}
	cmd.Flags().String("user", "", "the user's id (RC's userId)")
	cmd.Flags().String("app", "", "only this app's recordings (default: every app's)")
	addClientFlags(cmd)
	return cmd
}

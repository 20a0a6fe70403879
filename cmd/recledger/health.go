package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

// newHealthCmd is the probe a container's HEALTHCHECK runs: an image FROM
// scratch has no shell and no curl, so the binary asks itself.
func newHealthCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Exit 0 if the server at --addr answers GET /healthz with 200, else 1",
		Long: `health asks a running recledger serve for GET /healthz and exits 0 when it
answers 200 within --timeout, 1 otherwise. It is the container image's
HEALTHCHECK. --addr is serve's listen address, read from RECLEDGER_ADDR as
serve reads it; an unspecified host (0.0.0.0, [::] or none) is asked on
loopback.`,
		Example: `  recledger health
  RECLEDGER_ADDR=0.0.0.0:8080 recledger health --timeout 2s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr, _ := cmd.Flags().GetString("addr")
			if env := environ("RECLEDGER_ADDR"); env != "" && !cmd.Flags().Changed("addr") {
				addr = env
			}
			timeout, _ := cmd.Flags().GetDuration("timeout")
			if timeout <= 0 {
				return fmt.Errorf("--timeout %v: want a positive duration", timeout)
			}
			return checkHealth(cmd.Context(), addr, timeout, cmd.OutOrStdout())
		},
	}
	cmd.Flags().String("addr", defaultConfig().Addr, "the server's listen address (env RECLEDGER_ADDR)")
	cmd.Flags().Duration("timeout", 3*time.Second, "how long to wait for the answer")
	return cmd
}

// checkHealth GETs /healthz from the server listening on addr.
func checkHealth(ctx context.Context, addr string, timeout time.Duration, out io.Writer) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--addr %q: want HOST:PORT: %w", addr, err)
	}
	// A server listening on every interface is reachable on loopback, and
	// loopback is what its access rule answers without a token.
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	url := "http://" + net.JoinHostPort(host, port) + "/healthz"
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: GET %s answered %s", url, resp.Status)
	}
	_, err = fmt.Fprintf(out, "ok: GET %s answered %s\n", url, resp.Status)
	return err
}

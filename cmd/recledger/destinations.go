package main

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/recledger/recledger/internal/api"
	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/delivery/webhook"
)

// destination is a destination as the API shows it.
type destination = api.DestinationView

// state is a destination's state in a word or a few.
func state(d *destination, k clock) string {
	switch {
	case !d.Enabled:
		return "disabled: " + d.DisabledReason
	case d.FailingSince != nil:
		return "failing since " + k.when(d.FailingSince)
	}
	return "ok"
}

func newDestinationsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "destinations",
		Short: "Manage where outbound events go: webhooks and NATS JetStream",
		Long: `destinations manages a running recledger's outbound destinations. Events
(recording.started, .file_created, .ended, .file_uploaded, .upload_failed,
.completed, .failed, .upload_overdue, and with --verify-storage
.file_verified and .file_missing) go to every enabled destination whose
filter selects them, each recording's in order, signed (webhooks: Standard
Webhooks) and retried on failure.`,
		Example: `  recledger destinations add https://example.com/hooks/recordings --events recording.completed
  recledger destinations add nats://127.0.0.1:4222 --type nats
  recledger destinations ls
  recledger destinations test dst_...`,
	}
	id := func(use, short string, run func(cmd *cobra.Command, c *client, id string) error) *cobra.Command {
		sub := &cobra.Command{Use: use + " ID", Short: short, Args: cobra.ExactArgs(1),
			Example: "  recledger destinations " + use + " dst_7k2m4q9x3c5v6b8n1z0a",
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := newClient(cmd)
				if err != nil {
					return err
				}
				return run(cmd, c, args[0])
			}}
		addClientFlags(sub)
		return sub
	}
	path := func(id string, rest ...string) string {
		return "/v1/destinations/" + url.PathEscape(id) + strings.Join(rest, "")
	}

	add := &cobra.Command{
		Use:   "add URL",
		Short: "Add a destination; prints its secret once",
		Long: `add creates a destination. A webhook gets a new whsec_ secret unless
--secret gives one (--signing v1a makes an ed25519 key instead); the
secret is printed once, here: give it to the receiver, which verifies
the webhook-signature header with it (any Standard Webhooks library).`,
		Example: `  recledger destinations add https://example.com/hooks/recordings --events recording.completed,recording.failed
  recledger destinations add https://example.com/hooks --signing v1a
  recledger destinations add nats://127.0.0.1:4222 --type nats --prefix recordings`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			f := cmd.Flags()
			body := map[string]any{"url": args[0]}
			for _, name := range []string{"type", "secret", "signing", "description", "app-key", "room-prefix", "stream", "prefix", "max-age"} {
				if v, _ := f.GetString(name); v != "" {
					key := map[string]string{"app-key": "appKey", "room-prefix": "roomPrefix", "max-age": "maxAge"}[name]
					if key == "" {
						key = name
					}
					body[key] = v
				}
			}
			if events, _ := f.GetStringSlice("events"); len(events) > 0 {
				body["events"] = events
			}
			var d destination
			if err := c.send(cmd.Context(), http.MethodPost, "/v1/destinations", body, &d); err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), d)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "added %s (%s %s)\n", d.ID, d.Type, d.URL)
			if d.Secret != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "secret: %s\n(shown once: give it to the receiver now)\n", d.Secret)
			}
			if d.PublicKey != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "public key: %s (also at /v1/destinations/%s/public-key)\n", d.PublicKey, d.ID)
			}
			return nil
		},
	}
	addClientFlags(add)
	add.Flags().String("type", "", "webhook (default) or nats")
	add.Flags().String("secret", "", "webhook: the signing secret, whsec_<base64> (generated when not given)")
	add.Flags().String("signing", "", "webhook: v1 (HMAC-SHA256, default) or v1a (ed25519)")
	add.Flags().StringSlice("events", nil, "event types to send (comma-separated; default all)")
	add.Flags().String("app-key", "", "only events of this RC app")
	add.Flags().String("room-prefix", "", "only events of rooms whose id starts with this")
	add.Flags().String("description", "", "a note for people")
	add.Flags().String("stream", "", "nats: the stream (default RECLEDGER)")
	add.Flags().String("prefix", "", "nats: the subjects' first token (default recledger)")
	add.Flags().String("max-age", "", "nats: how long the stream keeps messages (default 168h; at least 48h)")

	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the destinations and their state",
		Example: `  recledger destinations ls
  recledger destinations ls --json | jq -r '.items[] | select(.enabled | not) | .id'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			var page struct {
				Items []destination `json:"items"`
			}
			if err := c.get(cmd.Context(), "/v1/destinations", nil, &page); err != nil {
				return err
			}
			switch {
			case c.json:
				return printJSON(cmd.OutOrStdout(), page)
			case c.ids:
				for _, d := range page.Items {
					fmt.Fprintln(cmd.OutOrStdout(), d.ID)
				}
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			if !c.noHeaders {
				fmt.Fprintln(tw, "ID\tTYPE\tURL\tEVENTS\tSTATE")
			}
			for _, d := range page.Items {
				events := "all"
				if len(d.Events) > 0 {
					events = joinTypes(d.Events)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.ID, d.Type, d.URL, events, state(&d, c.clock()))
			}
			return tw.Flush()
		},
	}
	addClientFlags(ls)
	addListFlags(ls)

	setEnabled := func(on bool) func(cmd *cobra.Command, c *client, id string) error {
		return func(cmd *cobra.Command, c *client, id string) error {
			var d destination
			if err := c.send(cmd.Context(), http.MethodPatch, path(id), map[string]bool{"enabled": on}, &d); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", d.ID, state(&d, c.clock()))
			return nil
		}
	}

	redeliver := id("redeliver", "Send a destination's dead letters again (all, or --seq ones)", func(cmd *cobra.Command, c *client, id string) error {
		seqs, _ := cmd.Flags().GetInt64Slice("seq")
		var out struct {
			Redelivered int `json:"redelivered"`
		}
		if err := c.send(cmd.Context(), http.MethodPost, path(id, "/redeliver"), map[string]any{"seqs": seqs}, &out); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%d dead letters put back to be sent\n", out.Redelivered)
		return nil
	})
	redeliver.Flags().Int64Slice("seq", nil, "the dead letters' seqs (default: all)")

	cmd.AddCommand(add, ls,
		id("show", "Show a destination: its state, newest attempts and dead letters", func(cmd *cobra.Command, c *client, id string) error {
			var d destination
			if err := c.get(cmd.Context(), path(id), nil, &d); err != nil {
				return err
			}
			var attempts, dead struct {
				Items []map[string]any `json:"items"`
			}
			if err := c.get(cmd.Context(), path(id, "/attempts"), url.Values{"limit": {"10"}}, &attempts); err != nil {
				return err
			}
			if err := c.get(cmd.Context(), path(id, "/dead-letters"), nil, &dead); err != nil {
				return err
			}
			if c.json {
				for _, items := range []*[]map[string]any{&attempts.Items, &dead.Items} {
					if *items == nil {
						*items = []map[string]any{} // [] when there are none, as the API answers
					}
				}
				return printJSON(cmd.OutOrStdout(), map[string]any{"destination": d, "attempts": attempts.Items, "deadLetters": dead.Items})
			}
			out := cmd.OutOrStdout()
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			now := c.clock()
			for _, kv := range [][2]string{{"id", d.ID}, {"type", string(d.Type)}, {"url", d.URL}, {"state", state(&d, now)},
				{"events", orDash(joinTypes(d.Events))}, {"app key", orDash(d.AppKey)}, {"room prefix", orDash(d.RoomPrefix)},
				{"created", now.when(&d.CreatedAt)}, {"dead letters", strconv.Itoa(len(dead.Items))}} {
				fmt.Fprintf(tw, "%s\t%s\n", kv[0], kv[1])
			}
			for _, k := range d.Keys {
				fmt.Fprintf(tw, "key\t%s %s\n", k.Hint, map[bool]string{true: "(rotating out " + now.when(k.Expires) + ")", false: ""}[k.Expires != nil])
			}
			tw.Flush()
			fmt.Fprintln(out, "\nnewest attempts:")
			tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			for _, a := range attempts.Items {
				fmt.Fprintf(tw, "%v\t%v\t%v\t%v ms\t%v\t%v\n", a["eventId"], a["type"], a["outcome"], a["latencyMs"], a["status"], a["error"])
			}
			return tw.Flush()
		}),
		id("rm", "Remove a destination", func(cmd *cobra.Command, c *client, id string) error {
			if err := c.send(cmd.Context(), http.MethodDelete, path(id), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", id)
			return nil
		}),
		id("disable", "Stop sending to a destination (it resumes where it stopped when enabled)", setEnabled(false)),
		id("enable", "Send to a destination again", setEnabled(true)),
		id("test", "Send a test event and show the answer", func(cmd *cobra.Command, c *client, id string) error {
			var out map[string]any
			if err := c.send(cmd.Context(), http.MethodPost, path(id, "/test"), nil, &out); err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), out)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%v: status %v in %v ms %v\n", out["outcome"], out["status"], out["latencyMs"], orDash(fmt.Sprint(out["error"])))
			if out["outcome"] != "delivered" {
				return fmt.Errorf("the test event was not delivered")
			}
			return nil
		}),
		id("rotate-secret", "Give a webhook a new secret; the old one signs beside it for 24 hours", func(cmd *cobra.Command, c *client, id string) error {
			var d destination
			if err := c.send(cmd.Context(), http.MethodPost, path(id, "/rotate-secret"), nil, &d); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "new secret: %s\n(shown once; the old one signs beside it for 24 hours)\n", d.Secret)
			return nil
		}),
		redeliver,
		newReceiveCmd(),
	)
	return cmd
}

// newReceiveCmd is a webhook receiver for trying destinations out: it
// checks each message's Standard Webhooks signature and prints a line per
// event.
func newReceiveCmd() *cobra.Command {
	var addr, secret, publicKey string
	cmd := &cobra.Command{
		Use:   "receive",
		Short: "Run a webhook receiver that verifies signatures and prints each event (for trying destinations out)",
		Long: `receive listens for recledger's webhooks, checks each one's signature
(Standard Webhooks: --secret for v1, --public-key for v1a), answers 204,
and prints one line per event: its type, recording, files and id. A
message whose signature does not verify is answered 401 and printed as
refused. Your own receiver does the same with any Standard Webhooks
library; this one is for trying things out.`,
		Example: `  recledger destinations receive --addr 127.0.0.1:9000 --secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var sec *webhook.Secret
			if secret != "" {
				s, err := webhook.ParseSecret(secret)
				if err != nil {
					return fmt.Errorf("--secret: %w", err)
				}
				sec = &s
			}
			var pub ed25519.PublicKey
			if publicKey != "" {
				var err error
				if pub, err = webhook.ParsePublicKey(publicKey); err != nil {
					return fmt.Errorf("--public-key: %w", err)
				}
			}
			if sec == nil && pub == nil {
				return fmt.Errorf("give --secret (whsec_...) or --public-key (whpk_...)")
			}
			out := cmd.OutOrStdout()
			var mu sync.Mutex
			handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
				if err != nil {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if err := webhook.Verify(r.Header, body, sec, pub, 5*time.Minute, time.Now()); err != nil {
					fmt.Fprintf(out, "refused  %s: %v\n", r.Header.Get(webhook.HeaderID), err)
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				var ev struct {
					ID, Type, RecordID string
					Sequence           int
					Recording          struct{ FileCount int }
				}
				json.Unmarshal(body, &ev)
				fmt.Fprintf(out, "%-26s %s #%d  %d files  %s\n", ev.Type, ev.RecordID, ev.Sequence, ev.Recording.FileCount, ev.ID)
				w.WriteHeader(http.StatusNoContent)
			})
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "receiving webhooks on http://%s/ (signatures checked)\n", ln.Addr())
			srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
			go func() {
				<-cmd.Context().Done()
				srv.Close()
			}()
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:9000", "listen address")
	cmd.Flags().StringVar(&secret, "secret", "", "the destination's whsec_ secret (v1 signatures)")
	cmd.Flags().StringVar(&publicKey, "public-key", "", "the destination's whpk_ public key (v1a signatures)")
	return cmd
}

func joinTypes(types []delivery.Type) string {
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = string(t)
	}
	return strings.Join(names, ",")
}

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/recledger/recledger/internal/api"
	"github.com/recledger/recledger/internal/ledger"
)

func newFilesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "files",
		Short:   "List recording files, look one up by name, or check them in storage",
		Example: "  recledger files show lSA2G6CUf9A-6nnoNwXCx8_111_222_1530027865231.mp4",
	}
	show := &cobra.Command{
		Use:   "show FILE_NAME",
		Short: "Show a file: its recording, size, upload status, URL and storage check",
		Long:  `show prints one file from a running recledger.` + exitCodesHelp,
		Example: `  recledger files show lSA2G6CUf9A-6nnoNwXCx8_111_222_1530027865231.mp4
  recledger files show lSA2G6CUf9A-6nnoNwXCx8_111_222_1530027865231.mp4 --json | jq -r .fileUrl`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			var f ledger.File
			if err := c.get(cmd.Context(), "/v1/files/"+url.PathEscape(args[0]), nil, &f); err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), f)
			}
			k := c.clock()
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			u := "-"
			if f.FileURL != nil {
				u = *f.FileURL
			}
			for _, kv := range [][2]string{
				{"fileName", f.FileName}, {"recordId", f.RecordID}, {"kind", string(f.Kind)}, {"format", orDash(f.Format)},
				{"size", size(f.FileSize)}, {"upload", string(f.UploadStatus)}, {"uploaded", k.when(f.UploadedAt)},
				{"url", u}, {"first seen", k.when(&f.FirstSeenAt)},
			} {
				fmt.Fprintf(tw, "%s\t%s\n", kv[0], kv[1])
			}
			if len(f.AlsoIn) > 0 {
				fmt.Fprintf(tw, "also in\t%s\n", strings.Join(f.AlsoIn, ", "))
			}
			if v := f.Verification; v != nil {
				fmt.Fprintf(tw, "storage\t%s\n", v.State)
				fmt.Fprintf(tw, "storage http\t%s\n", httpStatus(v.HTTPStatus))
				fmt.Fprintf(tw, "storage size\t%s\n", size(v.Size))
				fmt.Fprintf(tw, "storage checked\t%s\n", k.when(v.CheckedAt))
				if v.Error != "" {
					fmt.Fprintf(tw, "storage error\t%s\n", v.Error)
				}
			}
			return tw.Flush()
		},
	}
	addClientFlags(show)
	cmd.AddCommand(show, newFilesLsCmd(), newFilesVerifyCmd())
	return cmd
}

func newEventsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "events",
		Short:   "Read the raw callback log",
		Example: "  recledger events tail -f",
	}
	tail := &cobra.Command{
		Use:   "tail",
		Short: "Print the newest callbacks; with -f, follow new ones as they arrive",
		Long: `tail prints the newest callbacks of the raw log in arrival order. With -f it
then follows the server's event stream (GET /v1/events/stream) until
interrupted, resuming where it was if the connection drops.` + exitCodesHelp,
		Example: `  recledger events tail
  recledger events tail -n 100
  recledger events tail -f --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			n, _ := cmd.Flags().GetInt("lines")
			follow, _ := cmd.Flags().GetBool("follow")
			var list api.EventList
			if err := c.get(cmd.Context(), "/v1/events", url.Values{"tail": {strconv.Itoa(n)}}, &list); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			table := eventColumns(w)
			if !c.json && !c.ids && !c.noHeaders {
				table.row(eventHeader)
			}
			show := func(events []ledger.Event) error {
				switch {
				case c.json:
					enc := json.NewEncoder(w)
					enc.SetEscapeHTML(false)
					for _, e := range events {
						if err := enc.Encode(e); err != nil {
							return err
						}
					}
				case c.ids:
					for _, e := range events {
						fmt.Fprintln(w, e.Seq)
					}
				default:
					k := c.clock()
					for _, e := range events {
						table.row(eventCells(e, k))
					}
				}
				return nil
			}
			if err := show(list.Items); err != nil || !follow {
				return err
			}
			return followEvents(cmd, c, list.Last, show)
		},
	}
	tail.Flags().IntP("lines", "n", 20, "how many of the newest callbacks to print (at most 1000)")
	tail.Flags().BoolP("follow", "f", false, "follow new callbacks as they arrive")
	addClientFlags(tail)
	addListFlags(tail)
	cmd.AddCommand(tail)
	return cmd
}

// followEvents reads the event stream after seq last until the command's
// context ends. A dropped or silent connection (no line within three
// heartbeats) is reopened where it was, backing off up to 30 s; an answer
// that retrying cannot change (4xx) ends the command with its error.
func followEvents(cmd *cobra.Command, c *client, last int64, show func([]ledger.Event) error) error {
	ctx := cmd.Context()
	backoff := time.Second
	for ctx.Err() == nil {
		streamCtx, cancel := context.WithCancel(ctx)
		resp, err := c.request(streamCtx, "/v1/events/stream", url.Values{"after": {strconv.FormatInt(last, 10)}}, false)
		if err != nil {
			cancel()
			var he *httpError
			if errors.Is(err, errNotFound) || errors.As(err, &he) && he.status/100 == 4 {
				return err
			}
			if ctx.Err() != nil {
				break
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "recledger: stream: %v; reconnecting in %s\n", err, backoff)
		} else {
			lines := make(chan string)
			go func() {
				defer close(lines)
				sc := bufio.NewScanner(resp.Body)
				sc.Buffer(make([]byte, 64<<10), 4<<20)
				for sc.Scan() {
					select {
					case lines <- sc.Text():
					case <-streamCtx.Done():
						return
					}
				}
			}()
			err := readStream(streamCtx, lines, &last, show)
			cancel()
			resp.Body.Close()
			if err != nil {
				return err
			}
			backoff = time.Second // it worked for a while: start over
			if ctx.Err() == nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "recledger: stream ended; reconnecting")
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
	return nil
}

// readStream shows the events of one connection until it ends, goes
// silent for three heartbeats, or ctx ends.
func readStream(ctx context.Context, lines <-chan string, last *int64, show func([]ledger.Event) error) error {
	silence := time.NewTimer(45 * time.Second)
	defer silence.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-silence.C:
			return nil // half-open: reconnect
		case line, ok := <-lines:
			if !ok {
				return nil
			}
			silence.Reset(45 * time.Second)
			data, ok := strings.CutPrefix(line, "data: ")
			if !ok {
				continue
			}
			var e ledger.Event
			if err := json.Unmarshal([]byte(data), &e); err != nil {
				continue
			}
			*last = e.Seq
			if err := show([]ledger.Event{e}); err != nil {
				return err
			}
		}
	}
}

func newQuarantineCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "quarantine",
		Short:   "Inspect refused requests",
		Example: "  recledger quarantine ls",
	}
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List refused requests, newest first, with their reasons",
		Long:  `ls lists the requests the callback endpoint refused (400, 401, 413, 415).` + exitCodesHelp,
		Example: `  recledger quarantine ls
  recledger quarantine ls --limit 200 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			limit, _ := cmd.Flags().GetInt("limit")
			var list api.QuarantineList
			if err := c.get(cmd.Context(), "/v1/quarantine", url.Values{"limit": {strconv.Itoa(limit)}}, &list); err != nil {
				return err
			}
			switch {
			case c.json:
				return printJSON(cmd.OutOrStdout(), list)
			case c.ids:
				for _, r := range list.Items {
					fmt.Fprintln(cmd.OutOrStdout(), r.ID)
				}
				return nil
			}
			printQuarantine(cmd.OutOrStdout(), list.Items, c.clock(), !c.noHeaders)
			return nil
		},
	}
	ls.Flags().Int("limit", 50, "how many (at most 500)")
	addClientFlags(ls)
	addListFlags(ls)
	cmd.AddCommand(ls)
	return cmd
}

func printQuarantine(w io.Writer, items []ledger.Rejection, k clock, header bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if header {
		fmt.Fprintln(tw, "ID\tAT\tSTATUS\tREASON\tAPP KEY\tREMOTE\tBODY\tMESSAGE")
	}
	for _, r := range items {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\t%d B\t%s\n", r.ID, k.when(&r.At), r.Status, r.Reason, orDash(r.AppKey), orDash(r.Remote), r.BodySize, r.Message)
	}
	tw.Flush()
}

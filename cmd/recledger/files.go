package main

import (
	"fmt"
	"io"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/recledger/recledger/internal/display"
	"github.com/recledger/recledger/internal/ledger"
)

// newFilesLsCmd is `recledger files ls`: GET /v1/files with its filters.
func newFilesLsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List files across recordings, newest first, by upload state, room, app and time",
		Long: `ls lists files from a running recledger: the newest recordings first and,
within a recording, its newest files first. --upload-state takes a file's own
upload status (pending, uploaded, failed), not_uploaded (pending or failed:
what the dashboard's "Files not uploaded yet" counts) or overdue (not uploaded,
in a recording whose uploads are overdue). --since and --until apply to the
file's first seen time and take a duration back from now (2h), a date
(2026-11-29) or a date and time (2026-11-29 10:00, in the local zone, UTC
under --utc; or RFC 3339), or Unix milliseconds.` + exitCodesHelp,
		Example: `  recledger files ls --upload-state not_uploaded
  recledger files ls --room 1775 --since 24h
  recledger files ls --upload-state failed --all --json | jq -r '.items[].fileName'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			q, err := fileQuery(cmd, time.Now(), c.loc)
			if err != nil {
				return err
			}
			c.flags = fileParams
			l, err := list[ledger.ListedFile](cmd, c, "/v1/files", q)
			if err != nil {
				return err
			}
			if done, err := printList(cmd.OutOrStdout(), c, l, func(f ledger.ListedFile) string { return f.FileName }); done {
				return err
			}
			printFiles(cmd.OutOrStdout(), l.Items, c.loc, !c.noHeaders)
			return nil
		},
	}
	f := cmd.Flags()
	for _, p := range []struct{ flag, usage string }{
		{"upload-state", "not_uploaded, pending, failed, overdue or uploaded"},
		{"room", "only this roomId"}, {"app-key", "only this RC app"},
		{"since", "first seen at or after"}, {"until", "first seen at or before"},
		{"cursor", "continue from a previous page's nextCursor"},
	} {
		f.String(p.flag, "", p.usage)
	}
	f.Int("limit", ledger.DefaultPage, "files per page (at most 500)")
	f.Bool("all", false, "follow every page")
	addClientFlags(cmd)
	addListFlags(cmd)
	return cmd
}

// fileParams are the API parameters files ls sets and the flags that set them.
var fileParams = map[string]string{"uploadState": "upload-state", "roomId": "room", "appKey": "app-key",
	"cursor": "cursor", "since": "since", "until": "until", "limit": "limit"}

// fileQuery turns the ls flags into GET /v1/files' query parameters; loc is
// the zone of dates and times given without one.
func fileQuery(cmd *cobra.Command, now time.Time, loc *time.Location) (url.Values, error) {
	f := cmd.Flags()
	q := url.Values{}
	for _, p := range []struct{ flag, param string }{
		{"upload-state", "uploadState"}, {"room", "roomId"}, {"app-key", "appKey"}, {"cursor", "cursor"},
	} {
		if v, _ := f.GetString(p.flag); v != "" {
			q.Set(p.param, v)
		}
	}
	for _, flag := range []string{"since", "until"} {
		v, _ := f.GetString(flag)
		if v == "" {
			continue
		}
		ms, err := parseTime(v, now, loc)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", flag, err)
		}
		q.Set(flag, strconv.FormatInt(ms, 10))
	}
	limit, _ := f.GetInt("limit")
	q.Set("limit", strconv.Itoa(limit))
	return q, nil
}

func printFiles(w io.Writer, items []ledger.ListedFile, loc *time.Location, header bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if header {
		fmt.Fprintln(tw, "FILE\tRECORD ID\tROOM\tUPLOAD\tSIZE\tFIRST SEEN")
	}
	for _, f := range items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", f.FileName, f.RecordID, orDash(f.RoomID), f.UploadStatus,
			size(f.FileSize), display.Time(f.FirstSeenAt, loc))
	}
	tw.Flush()
}

package main

import (
	"fmt"
	"io"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/recledger/recledger/internal/api"
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
file's first seen time and take a duration back from now (2h), a date and time
(RFC 3339) or Unix milliseconds.` + exitCodesHelp,
		Example: `  recledger files ls --upload-state not_uploaded
  recledger files ls --room 1775 --since 24h
  recledger files ls --upload-state failed --all --json | jq -r '.items[].fileName'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			q, err := fileQuery(cmd, time.Now())
			if err != nil {
				return err
			}
			all, _ := cmd.Flags().GetBool("all")
			list := api.FileList{Items: []ledger.ListedFile{}} // --json prints [] for none, never null
			for {
				var page api.FileList
				if err := c.get(cmd.Context(), "/v1/files", q, &page); err != nil {
					return err
				}
				list.Items = append(list.Items, page.Items...)
				list.NextCursor = page.NextCursor
				if !all || page.NextCursor == "" {
					break
				}
				q.Set("cursor", page.NextCursor)
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), list)
			}
			loc := time.Local
			if utc, _ := cmd.Flags().GetBool("utc"); utc {
				loc = time.UTC
			}
			printFiles(cmd.OutOrStdout(), list, loc)
			return nil
		},
	}
	f := cmd.Flags()
	for _, p := range []struct{ flag, usage string }{
		{"upload-state", "not_uploaded, pending, failed, overdue or uploaded"},
		{"room", "only this roomId"}, {"app", "only this RC app key"},
		{"since", "first seen at or after"}, {"until", "first seen at or before"},
		{"cursor", "continue from a previous page's nextCursor"},
	} {
		f.String(p.flag, "", p.usage)
	}
	f.Int("limit", ledger.DefaultPage, "files per page (at most 500)")
	f.Bool("all", false, "follow every page")
	f.Bool("utc", false, "show times in UTC instead of the local zone")
	addClientFlags(cmd)
	return cmd
}

// fileQuery turns the ls flags into GET /v1/files' query parameters.
func fileQuery(cmd *cobra.Command, now time.Time) (url.Values, error) {
	f := cmd.Flags()
	q := url.Values{}
	for _, p := range []struct{ flag, param string }{
		{"upload-state", "uploadState"}, {"room", "roomId"}, {"app", "appKey"}, {"cursor", "cursor"},
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
		ms, err := parseTime(v, now)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", flag, err)
		}
		q.Set(flag, strconv.FormatInt(ms, 10))
	}
	limit, _ := f.GetInt("limit")
	q.Set("limit", strconv.Itoa(limit))
	return q, nil
}

func printFiles(w io.Writer, list api.FileList, loc *time.Location) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FILE\tRECORD ID\tROOM\tUPLOAD\tSIZE\tFIRST SEEN")
	for _, f := range list.Items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", f.FileName, f.RecordID, orDash(f.RoomID), f.UploadStatus,
			size(f.FileSize), display.Time(f.FirstSeenAt, loc))
	}
	tw.Flush()
	if list.NextCursor != "" {
		fmt.Fprintf(w, "more: --cursor %s (or --all)\n", list.NextCursor)
	}
}

package main

import (
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

const exitCodesHelp = `
Exit codes: 0 found, 1 error, 3 not found.`

func newRecordingsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "recordings",
		Short: "List recordings, or show one with its files and timeline",
		Example: `  recledger recordings ls --room 1775
  recledger recordings show 8329208b99410743dcfeb80548e2c0ec`,
	}
	cmd.AddCommand(newRecordingsLsCmd(), newRecordingsShowCmd())
	return cmd
}

func newRecordingsLsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List recordings, newest first, with the query API's filters",
		Long: `ls lists recordings from a running recledger, newest first. --since and
--until take a duration back from now (2h), a date and time (RFC 3339) or Unix
milliseconds, and apply to startedAt (or first seen).` + exitCodesHelp,
		Example: `  recledger recordings ls
  recledger recordings ls --room 1775 --status ended
  recledger recordings ls --since 24h --all --json | jq '.items[].recordId'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			q, err := recordingQuery(cmd, time.Now())
			if err != nil {
				return err
			}
			all, _ := cmd.Flags().GetBool("all")
			list := api.RecordingList{Items: []ledger.Recording{}} // [] when nothing matches, as the API answers
			for {
				var page api.RecordingList
				if err := c.get(cmd.Context(), "/v1/recordings", q, &page); err != nil {
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
			printRecordings(cmd.OutOrStdout(), list, c.clock())
			return nil
		},
	}
	f := cmd.Flags()
	for _, p := range []struct{ flag, usage string }{
		{"app-key", "only this RC app"}, {"room", "only this roomId"}, {"session", "only this sessionId"},
		{"user", "only this userId"}, {"status", "recording, ended, complete or failed"},
		{"upload-state", "none, pending, partial, complete, failed or overdue"},
		{"mode", "recording mode 0-6"}, {"since", "started (or first seen) at or after"},
		{"until", "started (or first seen) at or before"}, {"cursor", "continue from a previous page's nextCursor"},
	} {
		f.String(p.flag, "", p.usage)
	}
	f.Int("limit", 50, "recordings per page (at most 500)")
	f.Bool("all", false, "follow every page")
	addClientFlags(cmd)
	return cmd
}

// recordingQuery turns the ls flags into the API's query parameters.
func recordingQuery(cmd *cobra.Command, now time.Time) (url.Values, error) {
	f := cmd.Flags()
	q := url.Values{}
	for flag, param := range map[string]string{"app-key": "appKey", "room": "roomId", "session": "sessionId",
		"user": "userId", "status": "status", "upload-state": "uploadState", "mode": "mode", "cursor": "cursor"} {
		if v, _ := f.GetString(flag); v != "" {
			q.Set(param, v)
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

// parseTime reads a duration back from now, an RFC 3339 time or Unix ms.
func parseTime(v string, now time.Time) (int64, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d).UnixMilli(), nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UnixMilli(), nil
	}
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil && ms >= 0 {
		return ms, nil
	}
	return 0, fmt.Errorf("%q: want a duration (2h), a time (2026-11-27T10:00:00Z) or Unix milliseconds", v)
}

func printRecordings(w io.Writer, list api.RecordingList, k clock) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RECORD ID\tSTATUS\tUPLOADS\tROOM\tSESSION\tUSER\tMODE\tFILES\tSTARTED")
	for _, r := range list.Items {
		started := r.StartedAt
		if started == nil {
			started = r.FirstSeenAt
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\n", r.RecordID, r.Status, r.UploadState, orDash(r.RoomID),
			orDash(r.SessionID), orDash(r.UserID), r.ModeName, r.UploadedCount, r.FileCount, k.when(started))
	}
	tw.Flush()
	if list.NextCursor != "" {
		fmt.Fprintf(w, "more: --cursor %s (or --all)\n", list.NextCursor)
	}
}

func newRecordingsShowCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show RECORD_ID",
		Short: "Show a recording: its fields, files with sizes and URLs, and timeline",
		Long:  `show prints one recording from a running recledger.` + exitCodesHelp,
		Example: `  recledger recordings show 8329208b99410743dcfeb80548e2c0ec
  recledger recordings show 8329208b99410743dcfeb80548e2c0ec --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			var r ledger.Recording
			if err := c.get(cmd.Context(), "/v1/recordings/"+url.PathEscape(args[0]), nil, &r); err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), r)
			}
			printRecording(cmd.OutOrStdout(), r, c.clock())
			return nil
		},
	}
	addClientFlags(cmd)
	return cmd
}

func printRecording(w io.Writer, r ledger.Recording, k clock) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	field := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	field("recordId", r.RecordID)
	field("appKey", r.AppKey)
	field("status", string(r.Status))
	field("uploads", fmt.Sprintf("%s (%d of %d files, %s)", r.UploadState, r.UploadedCount, r.FileCount, size(&r.TotalBytes)))
	field("room / session / user", orDash(r.RoomID)+" / "+orDash(r.SessionID)+" / "+orDash(r.UserID))
	field("mode", fmt.Sprintf("%d %s", r.Mode, r.ModeName))
	field("started", k.when(r.StartedAt))
	field("ended", k.when(r.EndedAt))
	field("first seen", k.when(r.FirstSeenAt))
	if r.Config != nil {
		field("config", fmt.Sprintf("slices %d min, audio %s, video %s, layout %d, trigger %d",
			r.Config.SlicesMin, orDash(r.Config.AudioFormat), orDash(r.Config.VideoFormat), r.Config.MixLayout, r.Config.Trigger))
	}
	if r.LastError != nil {
		field("last error", fmt.Sprintf("%d %s (%s)", r.LastError.Code, r.LastError.Message, k.when(&r.LastError.At)))
	}
	if r.Extra != "" {
		field("extra", r.Extra)
	}
	tw.Flush()

	fmt.Fprintln(w, "\nFILES")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tSIZE\tUPLOAD\tURL")
	for _, f := range r.Files {
		u := "-"
		if f.FileURL != nil {
			u = *f.FileURL
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.FileName, f.Kind, size(f.FileSize), f.UploadStatus, u)
	}
	tw.Flush()

	fmt.Fprintln(w, "\nTIMELINE")
	printEvents(w, r.Events, k, true)
}

func printEvents(w io.Writer, events []ledger.Event, k clock, header bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if header {
		fmt.Fprintln(tw, "SEQ\tRECEIVED\tTYPE\tRC TIME\tCODE\tRECORD ID\tFILE\tNOTE")
	}
	for _, e := range events {
		note := ""
		if e.Duplicate {
			note = "duplicate"
		}
		if e.Code != 200 && e.Code != 0 {
			note = strings.TrimSpace(note + " failed: " + e.ErrorMessage)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", e.Seq, k.when(&e.ReceivedAt), e.TypeName,
			k.timeOfDay(e.Timestamp), e.Code, e.RecordID, orDash(e.FileName), note)
	}
	tw.Flush()
}

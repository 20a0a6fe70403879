package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/recledger/recledger/internal/api"
	"github.com/recledger/recledger/internal/display"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
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
--until take a duration back from now (2h), a date (2026-11-29) or a date and
time (2026-11-29 10:00, in the local zone, UTC under --utc; or RFC 3339), or
Unix milliseconds, and apply to startedAt (or first seen).
` + statusHelp + exitCodesHelp,
		Example: `  recledger recordings ls
  recledger recordings ls --room 1775 --status ended
  recledger recordings ls --mode mix-audio --since 2026-11-29
  recledger recordings ls --upload-state overdue -o ids
  recledger recordings ls --verification missing
  recledger recordings ls --since 24h --all --json | jq '.items[].recordId'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			q, err := recordingQuery(cmd, time.Now(), c.loc)
			if err != nil {
				return err
			}
			c.flags = recordingParams
			l, err := list[ledger.Recording](cmd, c, "/v1/recordings", q)
			if err != nil {
				return err
			}
			if done, err := printList(cmd.OutOrStdout(), c, l, func(r ledger.Recording) string { return r.RecordID }); done {
				return err
			}
			printRecordings(cmd.OutOrStdout(), l.Items, c.clock(), !c.noHeaders)
			return nil
		},
	}
	f := cmd.Flags()
	for _, p := range []struct{ flag, usage string }{
		{"app-key", "only this RC app"}, {"room", "only this roomId"}, {"session", "only this sessionId"},
		{"user", "only this userId"}, {"status", "recording, ended, complete or failed"},
		{"upload-state", "none, pending, partial, complete, failed or overdue"},
		{"verification", "only recordings with a file whose storage check is missing, size_mismatch, unreachable, pending or verified"},
		{"mode", "recording mode as printed (" + strings.Join(modeNames(), ", ") + ") or its number 0-6"},
		{"since", "started (or first seen) at or after"},
		{"until", "started (or first seen) at or before"}, {"cursor", "continue from a previous page's nextCursor"},
	} {
		f.String(p.flag, "", p.usage)
	}
	f.Int("limit", 50, "recordings per page (at most 500)")
	f.Bool("all", false, "follow every page")
	addClientFlags(cmd)
	addListFlags(cmd)
	return cmd
}

// statusHelp says what the states mean; the README says the same.
const statusHelp = `
A recording's status:
  recording  seen, not ended yet
  ended      the end was seen, some file is not uploaded yet
  complete   the end was seen and every known file is uploaded
  failed     a start or end callback carried a code other than 200
Its upload state (UPLOADS):
  none       no file yet
  pending    files known, none uploaded yet
  partial    some files uploaded
  complete   every file uploaded
  failed     a file's upload failed and was not retried successfully
  overdue    the end came over 25 h ago (RC retries uploads for 24 h) and a
             file is still not uploaded; overrides all but complete`

// recordingParams are the API parameters ls sets and the flags that set them.
var recordingParams = map[string]string{"appKey": "app-key", "roomId": "room", "sessionId": "session", "userId": "user",
	"status": "status", "uploadState": "upload-state", "verification": "verification", "mode": "mode", "cursor": "cursor", "since": "since", "until": "until",
	"limit": "limit"}

// recordingQuery turns the ls flags into the API's query parameters; loc
// is the zone of dates and times given without one.
func recordingQuery(cmd *cobra.Command, now time.Time, loc *time.Location) (url.Values, error) {
	f := cmd.Flags()
	q := url.Values{}
	for param, flag := range recordingParams {
		if flag == "limit" {
			continue
		}
		v, _ := f.GetString(flag)
		if v == "" {
			continue
		}
		switch flag {
		case "mode":
			n, err := parseMode(v)
			if err != nil {
				return nil, fmt.Errorf("--mode: %w", err)
			}
			v = strconv.Itoa(n)
		case "since", "until":
			ms, err := parseTime(v, now, loc)
			if err != nil {
				return nil, fmt.Errorf("--%s: %w", flag, err)
			}
			v = strconv.FormatInt(ms, 10)
		}
		q.Set(param, v)
	}
	limit, _ := f.GetInt("limit")
	q.Set("limit", strconv.Itoa(limit))
	return q, nil
}

// modeNames are the modes as recordings show them (modeName), by number.
func modeNames() []string {
	var names []string
	for m := rc.Mode(0); m.Known(); m++ {
		names = append(names, m.String())
	}
	return names
}

// parseMode reads a mode by its printed name or its number.
func parseMode(v string) (int, error) {
	for i, name := range modeNames() {
		if strings.EqualFold(v, name) || v == strconv.Itoa(i) {
			return i, nil
		}
	}
	return 0, fmt.Errorf("%q: want %s, or 0-6", v, strings.Join(modeNames(), ", "))
}

// timeLayouts are the dates and times --since and --until take besides
// RFC 3339, read in the zone asked for.
var timeLayouts = []string{"2006-01-02", "2006-01-02 15:04", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02T15:04:05"}

// parseTime reads a duration back from now, a date or date and time (in
// loc unless it names its zone), or Unix ms.
func parseTime(v string, now time.Time, loc *time.Location) (int64, error) {
	v = strings.TrimSpace(v)
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d).UnixMilli(), nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UnixMilli(), nil
	}
	for _, layout := range timeLayouts {
		if t, err := time.ParseInLocation(layout, v, loc); err == nil {
			return t.UnixMilli(), nil
		}
	}
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil && ms >= 0 {
		return ms, nil
	}
	return 0, fmt.Errorf("%q: want a duration (2h), a date (2026-11-29), a date and time (2026-11-29 10:00, or RFC 3339) or Unix milliseconds", v)
}

func printRecordings(w io.Writer, items []ledger.Recording, k clock, header bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if header {
		fmt.Fprintln(tw, "RECORD ID\tSTATUS\tUPLOADS\tROOM\tSESSION\tUSER\tMODE\tFILES\tSTARTED")
	}
	for _, r := range items {
		started := r.StartedAt
		if started == nil {
			started = r.FirstSeenAt
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\n", r.RecordID, r.Status, r.UploadState, orDash(r.RoomID),
			orDash(r.SessionID), orDash(r.UserID), r.ModeName, r.UploadedCount, r.FileCount, k.when(started))
	}
	tw.Flush()
}

func newRecordingsShowCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show RECORD_ID",
		Short: "Show a recording: its fields, files with sizes and URLs, and timeline",
		Long: `show prints one recording from a running recledger. RECORD_ID may be the
start of a recordId when no other recording's starts the same way.` + exitCodesHelp,
		Example: `  recledger recordings show 8329208b99410743dcfeb80548e2c0ec
  recledger recordings show 8329208b
  recledger recordings show 8329208b99410743dcfeb80548e2c0ec --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			r, err := c.recording(cmd.Context(), args[0], cmd.ErrOrStderr())
			if err != nil {
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
	fmt.Fprintln(tw, "NAME\tKIND\tSIZE\tUPLOAD\tSTORAGE\tCHECKED\tURL")
	var storageErrors []string
	for _, f := range r.Files {
		u := "-"
		if f.FileURL != nil {
			u = *f.FileURL
		}
		checked := "-"
		if v := f.Verification; v != nil {
			checked = k.when(v.CheckedAt)
			if v.Error != "" {
				storageErrors = append(storageErrors, f.FileName+": "+v.Error)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.FileName, f.Kind, size(f.FileSize), f.UploadStatus, storageCell(f.Verification), checked, u)
	}
	tw.Flush()
	if len(storageErrors) > 0 {
		fmt.Fprintln(w, "\nSTORAGE ERRORS")
		for _, e := range storageErrors {
			fmt.Fprintln(w, e)
		}
	}

	fmt.Fprintln(w, "\nTIMELINE")
	printEvents(w, r.Events, k, true)
}

// eventHeader and eventCells are the columns of a table of callbacks.
var eventHeader = []string{"SEQ", "RECEIVED", "TYPE", "RC TIME", "CODE", "RECORD ID", "FILE", "NOTE"}

func eventCells(e ledger.Event, k clock) []string {
	if e.Removed {
		// A tombstone keeps its place and arrival, nothing of the callback.
		return []string{strconv.FormatInt(e.Seq, 10), k.when(&e.ReceivedAt), e.TypeName, "-", "-", "-", "-", "removed by retention or erasure"}
	}
	note := ""
	if e.Duplicate {
		note = "duplicate"
	}
	if e.Code != 200 && e.Code != 0 {
		note = strings.TrimSpace(note + " failed: " + e.ErrorMessage)
	}
	return []string{strconv.FormatInt(e.Seq, 10), k.when(&e.ReceivedAt), e.TypeName, k.timeOfDay(e.Timestamp),
		strconv.Itoa(e.Code), e.RecordID, orDash(e.FileName), note}
}

// printEvents prints a whole table of callbacks at once (a timeline).
func printEvents(w io.Writer, events []ledger.Event, k clock, header bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if header {
		fmt.Fprintln(tw, strings.Join(eventHeader, "\t"))
	}
	for _, e := range events {
		fmt.Fprintln(tw, strings.Join(eventCells(e, k), "\t"))
	}
	tw.Flush()
}

// columns prints a table row by row as rows arrive (events tail -f): each
// column is as wide as its widest cell so far, from widths that fit what
// RC sends, so later rows line up with the header printed first.
type columns struct {
	w      io.Writer
	widths []int
}

// eventColumns fit a seq of 7 digits, a received time with "(59m ago)",
// RC's 32-character recordIds and its file names.
func eventColumns(w io.Writer) *columns {
	return &columns{w: w, widths: []int{7, len("2006-01-02 15:04:05 -07:00 (59m ago)"), len("segment"), len(display.ClockLayout), 4, 32, 48, 0}}
}

func (c *columns) row(cells []string) {
	var b strings.Builder
	for i, cell := range cells {
		n := utf8.RuneCountInString(cell)
		c.widths[i] = max(c.widths[i], n)
		b.WriteString(cell)
		if i < len(cells)-1 {
			b.WriteString(strings.Repeat(" ", c.widths[i]-n+2))
		}
	}
	fmt.Fprintln(c.w, strings.TrimRight(b.String(), " "))
}

// recording fetches a recording by its recordId or, when no recording has
// that id, by the start of one: the server lists the recordIds starting so
// (every recording, not a recent window), and one match resolves. Several
// are an error listing them.
func (c *client) recording(ctx context.Context, id string, _ io.Writer) (ledger.Recording, error) {
	var r ledger.Recording
	err := c.get(ctx, "/v1/recordings/"+url.PathEscape(id), nil, &r)
	if !errors.Is(err, errNotFound) || ledger.CheckLookup("recordId", id) != nil {
		return r, err // (no stored recordId starts with what none can hold)
	}
	const shown = 10
	var page api.RecordingList
	q := url.Values{"recordIdPrefix": {id}, "limit": {strconv.Itoa(shown + 1)}}
	if err := c.get(ctx, "/v1/recordings", q, &page); err != nil {
		return r, fmt.Errorf("recording %q: %w", id, err)
	}
	switch len(page.Items) {
	case 0:
		return r, fmt.Errorf("recording %q: %w", id, errNotFound)
	case 1:
		return r, c.get(ctx, "/v1/recordings/"+url.PathEscape(page.Items[0].RecordID), nil, &r)
	}
	var ids []string
	for _, m := range page.Items[:min(len(page.Items), shown)] {
		ids = append(ids, m.RecordID)
	}
	if len(page.Items) > shown {
		return r, fmt.Errorf("%q starts more than %d recordIds: %s, ...; give more of it", id, shown, strings.Join(ids, ", "))
	}
	return r, fmt.Errorf("%q starts %d recordIds: %s; give more of it", id, len(ids), strings.Join(ids, ", "))
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/recledger/recledger/internal/api"
	"github.com/recledger/recledger/internal/ledger"
)

// verifyPoll is how often files verify asks whether the checks are done.
const verifyPoll = 500 * time.Millisecond

// maxVerifyWatched bounds the recordings --all-missing waits on: one page
// of the list (the re-check itself covers every missing file).
const maxVerifyWatched = ledger.MaxPage

// newFilesVerifyCmd is `recledger files verify`: a storage re-check.
func newFilesVerifyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify [FILE_NAME | --recording RECORD_ID | --all-missing]",
		Short: "Check again that uploaded files are in storage, and show what was found",
		Long: `verify asks a running recledger (started with --verify-storage) to check
again, now, that uploaded files are where RC said it uploaded them: one file
by name (in every recording holding one of that name), every uploaded file
of a recording (--recording, which takes the start of a recordId too), or
every file found missing (--all-missing). It then waits up to --wait for the
checks to finish (0: do not wait) and prints each file's storage state:
  verified       the storage has the object, of RC's fileSize
  missing        the storage answered that it is not there
  size_mismatch  it is there with another size
  unreachable    it could not be checked (its host is not on
                 --storage-hosts, the storage refused for good, or retries
                 ran out); ERROR says which
  pending        not checked yet (the wait ended first; the check goes on)
A server without --verify-storage answers that verification is off.` + exitCodesHelp,
		Example: `  recledger files verify lSA2G6CUf9A-6nnoNwXCx8_111_222_1530027865231.mp4
  recledger files verify --recording 8329208b
  recledger files verify --all-missing --wait 2m
  recledger files verify --recording 8329208b --wait 0 --json`,
		Args: cobra.MaximumNArgs(1),
		RunE: runFilesVerify,
	}
	f := cmd.Flags()
	f.String("recording", "", "check every uploaded file of this recording (a recordId or its start)")
	f.Bool("all-missing", false, "check again every file found missing")
	f.Duration("wait", 30*time.Second, "how long to wait for the checks to finish (0: do not wait)")
	addClientFlags(cmd)
	return cmd
}

// target is a file whose check files verify waits for.
type target struct{ recordID, fileName string }

// VerifyReport is what files verify prints under --json.
type VerifyReport struct {
	Queued int64 `json:"queued"`
	// Pending counts the files still pending when the wait ended.
	Pending int            `json:"pending"`
	Files   []VerifiedFile `json:"files"`
}

// VerifiedFile is one file's storage check as files verify reports it.
type VerifiedFile struct {
	RecordID     string               `json:"recordId"`
	FileName     string               `json:"fileName"`
	Verification *ledger.Verification `json:"verification"`
}

func runFilesVerify(cmd *cobra.Command, args []string) error {
	c, err := newClient(cmd)
	if err != nil {
		return err
	}
	f := cmd.Flags()
	recording, _ := f.GetString("recording")
	allMissing, _ := f.GetBool("all-missing")
	wait, _ := f.GetDuration("wait")
	chosen := 0
	for _, set := range []bool{len(args) == 1, recording != "", allMissing} {
		if set {
			chosen++
		}
	}
	if chosen != 1 {
		return errors.New("name one of: a FILE_NAME, --recording RECORD_ID or --all-missing")
	}
	if wait < 0 {
		return errors.New("--wait: want a duration of 0 or more")
	}
	ctx := cmd.Context()
	var (
		post    string
		q       url.Values
		targets []target
		whole   []string // recordings all of whose checks are waited for
	)
	switch {
	case len(args) == 1:
		var file ledger.File
		if err := c.get(ctx, "/v1/files/"+url.PathEscape(args[0]), nil, &file); err != nil {
			return err
		}
		for _, id := range append([]string{file.RecordID}, file.AlsoIn...) {
			targets = append(targets, target{id, file.FileName})
		}
		post = "/v1/files/" + url.PathEscape(file.FileName) + "/verify"
	case recording != "":
		r, err := c.recording(ctx, recording, cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		whole = []string{r.RecordID}
		post = "/v1/recordings/" + url.PathEscape(r.RecordID) + "/verify"
	default:
		if targets, err = missingFiles(ctx, c, cmd.ErrOrStderr()); err != nil {
			return err
		}
		post, q = "/v1/verifications/recheck", url.Values{"state": {string(ledger.VerifyMissing)}}
	}

	var queued api.Queued
	if err := c.post(ctx, post, q, &queued); err != nil {
		return err
	}
	report := VerifyReport{Queued: queued.Queued, Files: []VerifiedFile{}}
	deadline := time.Now().Add(wait)
	for {
		if report.Files, err = readChecks(ctx, c, targets, whole); err != nil {
			return err
		}
		report.Pending = 0
		for _, vf := range report.Files {
			if vf.Verification != nil && vf.Verification.State == ledger.VerifyPending {
				report.Pending++
			}
		}
		if report.Pending == 0 || !time.Now().Add(verifyPoll).Before(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(verifyPoll):
		}
	}
	if c.json {
		return printJSON(cmd.OutOrStdout(), report)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "queued %d checks\n", report.Queued)
	printVerified(cmd.OutOrStdout(), report.Files, c.clock(), !c.noHeaders)
	if report.Pending > 0 && wait > 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "%d still pending after %s: the checks go on; look again with `recledger files verify ... --wait 0` or `recordings show`\n", report.Pending, wait)
	}
	return nil
}

// missingFiles lists the files found missing (of up to maxVerifyWatched
// recordings), before their re-check makes them pending.
func missingFiles(ctx context.Context, c *client, stderr io.Writer) ([]target, error) {
	var page api.RecordingList
	q := url.Values{"verification": {string(ledger.VerifyMissing)}, "limit": {strconv.Itoa(maxVerifyWatched)}}
	if err := c.get(ctx, "/v1/recordings", q, &page); err != nil {
		return nil, err
	}
	if page.NextCursor != "" {
		fmt.Fprintf(stderr, "more than %d recordings have missing files: all are checked again, the first %d are shown\n", maxVerifyWatched, maxVerifyWatched)
	}
	var out []target
	for _, r := range page.Items {
		var rec ledger.Recording
		if err := c.get(ctx, "/v1/recordings/"+url.PathEscape(r.RecordID), nil, &rec); err != nil {
			return nil, err
		}
		for _, f := range rec.Files {
			if f.Verification != nil && f.Verification.State == ledger.VerifyMissing {
				out = append(out, target{r.RecordID, f.FileName})
			}
		}
	}
	return out, nil
}

// readChecks reads the checks of targets and of every checked file of the
// recordings whole, in that order.
func readChecks(ctx context.Context, c *client, targets []target, whole []string) ([]VerifiedFile, error) {
	recs := map[string]ledger.Recording{}
	read := func(id string) (ledger.Recording, error) {
		if r, ok := recs[id]; ok {
			return r, nil
		}
		var r ledger.Recording
		if err := c.get(ctx, "/v1/recordings/"+url.PathEscape(id), nil, &r); err != nil {
			return r, err
		}
		recs[id] = r
		return r, nil
	}
	out := []VerifiedFile{}
	for _, id := range whole {
		r, err := read(id)
		if err != nil {
			return nil, err
		}
		for _, f := range r.Files {
			if f.Verification != nil {
				out = append(out, VerifiedFile{id, f.FileName, f.Verification})
			}
		}
	}
	for _, t := range targets {
		r, err := read(t.recordID)
		if errors.Is(err, errNotFound) {
			continue // removed meanwhile (retention, erasure)
		}
		if err != nil {
			return nil, err
		}
		vf := VerifiedFile{RecordID: t.recordID, FileName: t.fileName}
		for _, f := range r.Files {
			if f.FileName == t.fileName {
				vf.Verification = f.Verification
			}
		}
		out = append(out, vf)
	}
	return out, nil
}

// post sends a POST without a body and decodes its answer into out.
func (c *client) post(ctx context.Context, path string, q url.Values, out any) error {
	resp, err := c.do(ctx, http.MethodPost, path, q, nil, true)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s: read answer: %w", path, err)
	}
	return nil
}

func printVerified(w io.Writer, files []VerifiedFile, k clock, header bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if header {
		fmt.Fprintln(tw, "FILE\tRECORD ID\tSTORAGE\tHTTP\tSIZE\tCHECKED\tERROR")
	}
	for _, f := range files {
		v := f.Verification
		if v == nil {
			fmt.Fprintf(tw, "%s\t%s\tnot checked\t-\t-\t-\t-\n", f.FileName, f.RecordID)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.FileName, f.RecordID, v.State, httpStatus(v.HTTPStatus),
			size(v.Size), k.when(v.CheckedAt), orDash(v.Error))
	}
	tw.Flush()
}

// httpStatus shows the storage's last answer, "-" when none came.
func httpStatus(s *int) string {
	if s == nil {
		return "-"
	}
	return strconv.Itoa(*s)
}

// storageCell is a file's storage check in a table: its state and the
// storage's answer ("-" when never checked).
func storageCell(v *ledger.Verification) string {
	if v == nil {
		return "-"
	}
	if v.HTTPStatus != nil {
		return fmt.Sprintf("%s (%d)", v.State, *v.HTTPStatus)
	}
	return string(v.State)
}

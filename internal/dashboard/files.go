package dashboard

import (
	"context"
	"encoding/csv"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/recledger/recledger/internal/display"
	"github.com/recledger/recledger/internal/ledger"
)

// The files page lists files across recordings (ledger.Store.ListFiles),
// filtered as GET /v1/files is; the overview's "Files not uploaded yet"
// links to it. Both it and a recording's page offer their files as CSV.

// fileUploadOptions are the files page's upload choices: not_uploaded is
// what the overview counts as "not uploaded yet".
var fileUploadOptions = []option{{"", "any"}, {string(ledger.FilesNotUploaded), "not uploaded (pending or failed)"},
	{string(ledger.FilesPending), "pending"}, {string(ledger.FilesFailed), "failed"},
	{string(ledger.FilesOverdue), "overdue"}, {string(ledger.FilesUploaded), "uploaded"}}

// fileFilterForm is the files filter as the form shows it.
type fileFilterForm struct {
	UploadState, RoomID, AppKey, Since, Until string
	UploadStates                              []option
	Active                                    bool
	Query                                     string // the filters alone
	CSV                                       string // the CSV of every page with these filters
}

type filesView struct {
	page
	Filter fileFilterForm
	Items  []ledger.ListedFile
	Older  string // the next page's URL
	First  string // the first page's URL, when this is a later one
}

// fileFilter reads the files page's (and its CSV's) filters.
func fileFilter(q url.Values) (ledger.FileFilter, fileFilterForm, error) {
	form := fileFilterForm{UploadState: q.Get("uploadState"), RoomID: q.Get("roomId"), AppKey: q.Get("appKey"),
		Since: q.Get("since"), Until: q.Get("until"), UploadStates: fileUploadOptions}
	f := ledger.FileFilter{Upload: ledger.FileUpload(form.UploadState), RoomID: form.RoomID, AppKey: form.AppKey, Cursor: q.Get("cursor")}
	if err := checkParams(q, "uploadState", "roomId", "appKey", "since", "until", "cursor"); err != nil {
		return f, form, err
	}
	if err := checkIDFilters([2]string{"appKey", form.AppKey}, [2]string{"roomId", form.RoomID}); err != nil {
		return f, form, err
	}
	if !validOption(fileUploadOptions, form.UploadState) {
		return f, form, &badInput{"upload state", "want not_uploaded, pending, failed, overdue or uploaded"}
	}
	var err error
	if f.Since, err = parseDate("first seen from", form.Since); err != nil {
		return f, form, err
	}
	if f.Until, err = parseDate("first seen until", form.Until); err != nil {
		return f, form, err
	}
	filters := url.Values{}
	for _, k := range []string{"uploadState", "roomId", "appKey", "since", "until"} {
		if v := q.Get(k); v != "" {
			filters.Set(k, v)
		}
	}
	form.Active = len(filters) > 0
	form.Query = filters.Encode()
	form.CSV = "/files.csv"
	if form.Query != "" {
		form.CSV += "?" + form.Query
	}
	return f, form, nil
}

func (d *Dashboard) files(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f, form, err := fileFilter(q)
	if err != nil {
		return err
	}
	now := d.opts.Now()
	f.Now, f.Limit = now, ledger.DefaultPage
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	pg, err := d.store.ListFiles(ctx, f)
	if errors.Is(err, ledger.ErrBadCursor) {
		return &badInput{"page", "that page link is not one this server made for these filters; start from the first page"}
	}
	if err != nil {
		return err
	}
	v := &filesView{page: page{Title: "Files", Nav: "files", Now: now}, Filter: form, Items: pg.Items}
	if pg.Next != "" {
		next := cloneQuery(q)
		next.Set("cursor", pg.Next)
		v.Older = "/files?" + next.Encode()
	}
	if f.Cursor != "" {
		v.First = "/files"
		if form.Query != "" {
			v.First += "?" + form.Query
		}
	}
	d.render(w, r, http.StatusOK, "files", v)
	return nil
}

// maxCSVFiles bounds a filtered list's CSV: it streams csvPage files at a
// time, and past maxCSVFiles it ends with a row saying it was cut (narrow
// the filters, or page the API). Variables for the tests.
var (
	maxCSVFiles = 100_000
	csvPage     = ledger.MaxPage
)

// csvHeader names the CSV's columns: the File's fields, with its
// recording's app and room. Times are internal/display's rule in UTC.
var csvHeader = []string{"fileName", "recordId", "appKey", "roomId", "kind", "format", "uploadStatus", "fileSize", "firstSeenAt", "uploadedAt", "fileUrl"}

func (d *Dashboard) filesCSV(w http.ResponseWriter, r *http.Request) error {
	f, _, err := fileFilter(r.URL.Query())
	if err != nil {
		return err
	}
	if f.Cursor != "" {
		return &badInput{"cursor", "the CSV holds every page; drop the cursor"}
	}
	f.Now, f.Limit = d.opts.Now(), csvPage
	// The first page is read before the answer starts, so a store that
	// cannot answer still gets its error page; later failures cut the CSV
	// short (and are logged), as nothing else can be said mid-stream.
	pg, err := d.listFilesPage(r.Context(), f)
	if err != nil {
		return err
	}
	cw := startCSV(w, "recledger-files.csv")
	written := 0
	for {
		for _, it := range pg.Items {
			if written == maxCSVFiles {
				cw.Write([]string{"(cut at " + strconv.Itoa(maxCSVFiles) + " files: narrow the filters, or page GET /v1/files)"})
				cw.Flush()
				return nil
			}
			cw.Write(csvRow(it))
			written++
		}
		cw.Flush()
		if pg.Next == "" || cw.Error() != nil {
			return nil
		}
		f.Cursor = pg.Next
		if pg, err = d.listFilesPage(r.Context(), f); err != nil {
			if r.Context().Err() == nil {
				d.opts.Logger.Error("files CSV cut short", "err", err)
			}
			return nil
		}
	}
}

func (d *Dashboard) listFilesPage(ctx context.Context, f ledger.FileFilter) (ledger.FilePage, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	return d.store.ListFiles(ctx, f)
}

func (d *Dashboard) recordingFilesCSV(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("recordId")
	if err := checkRecordID(id); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	st, err := d.store.Recording(ctx, id)
	if errors.Is(err, ledger.ErrNotFound) {
		return &notFound{"No recording has the recordId " + strconv.Quote(id) + "."}
	}
	if err != nil {
		return err
	}
	cw := startCSV(w, "recledger-files-"+fileNamePart(id)+".csv")
	for _, f := range st.FileViews() {
		cw.Write(csvRow(ledger.ListedFile{File: f, AppKey: st.AppKey, RoomID: st.RoomID}))
	}
	cw.Flush()
	return nil
}

// startCSV sends the headers of a CSV download named name and its header
// row, and returns the writer of its rows.
func startCSV(w http.ResponseWriter, name string) *csv.Writer {
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	cw.Write(csvHeader)
	return cw
}

func csvRow(f ledger.ListedFile) []string {
	opt := func(p *int64, show func(int64) string) string {
		if p == nil {
			return ""
		}
		return show(*p)
	}
	utc := func(ms int64) string { return display.Time(ms, time.UTC) }
	fileURL := ""
	if f.FileURL != nil {
		fileURL = *f.FileURL
	}
	row := []string{f.FileName, f.RecordID, f.AppKey, f.RoomID, string(f.Kind), f.Format, string(f.UploadStatus),
		opt(f.FileSize, func(n int64) string { return strconv.FormatInt(n, 10) }), utc(f.FirstSeenAt), opt(f.UploadedAt, utc), fileURL}
	for i, cell := range row {
		row[i] = csvSafe(cell)
	}
	return row
}

// csvSafe keeps a cell from being run as a formula by a spreadsheet that
// opens the CSV: RC's fields and file names are the sender's text, and a
// cell starting with = + - @ (or a tab or carriage return, which some
// spreadsheets skip before one) is a formula there. A leading ' makes it
// text, as OWASP advises.
func csvSafe(cell string) string {
	if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
		return "'" + cell
	}
	return cell
}

// fileNamePart makes an id safe inside a download's file name (and its
// quoted header value): letters, digits, - and _ only, at most 64.
func fileNamePart(id string) string {
	var b strings.Builder
	for _, c := range id {
		if b.Len() == 64 {
			break
		}
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

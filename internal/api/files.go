package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/recledger/recledger/internal/ledger"
)

// FileList is the answer of GET /v1/files: files across recordings, each
// with its recordId and its recording's appKey and roomId.
type FileList struct {
	Items      []ledger.ListedFile `json:"items"`
	NextCursor string              `json:"nextCursor,omitempty"`
}

// fileListParams are the parameters GET /v1/files reads; the route refuses
// any other (see guard), so a misspelt filter is not silently ignored.
var fileListParams = []string{"uploadState", "roomId", "appKey", "since", "until", "limit", "cursor"}

// uploadChoices says which values uploadState takes, for its error.
var uploadChoices = func() string {
	var s []string
	for _, u := range ledger.FileUploads {
		s = append(s, string(u))
	}
	return strings.Join(s, ", ")
}()

// fileFilter reads GET /v1/files' query parameters, or returns a *badParam
// naming the first unusable one (the route refuses unknown ones before:
// fileListParams). Its Now is left zero.
func fileFilter(q url.Values) (ledger.FileFilter, error) {
	f := ledger.FileFilter{Cursor: q.Get("cursor")}
	for _, p := range []struct {
		name string
		dst  *string
	}{{"appKey", &f.AppKey}, {"roomId", &f.RoomID}} {
		v, err := idFilter(q, p.name)
		if err != nil {
			return ledger.FileFilter{}, err
		}
		*p.dst = v
	}
	f.Upload = ledger.FileUpload(q.Get("uploadState"))
	if f.Check() != nil {
		return ledger.FileFilter{}, &badParam{"uploadState", "want " + uploadChoices}
	}
	var err error
	if f.Limit, err = intParam(q.Get("limit"), "limit", ledger.DefaultPage, 1, ledger.MaxPage); err != nil {
		return ledger.FileFilter{}, err
	}
	if f.Since, f.Until, err = timeRange(q); err != nil {
		return ledger.FileFilter{}, err
	}
	return f, nil
}

func (a *API) listFiles(w http.ResponseWriter, r *http.Request) error {
	f, err := fileFilter(r.URL.Query())
	if err != nil {
		return err
	}
	f.Now = a.opts.Now()
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	page, err := a.store.ListFiles(ctx, f)
	if errors.Is(err, ledger.ErrBadCursor) {
		return &badParam{"cursor", "not one this server issued for these filters"}
	}
	if err != nil {
		return err
	}
	out := FileList{Items: page.Items, NextCursor: page.Next}
	if out.Items == nil {
		out.Items = []ledger.ListedFile{}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) getFile(w http.ResponseWriter, r *http.Request) error {
	name, err := pathID(r, "fileName")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	states, err := a.fileRecordings(ctx, name)
	if err != nil {
		return err
	}
	f := states[0].FileView(name)
	checks, err := a.fileVerifications(ctx, states[0].RecordID)
	if err != nil {
		return err
	}
	if c, ok := checks[name]; ok {
		f.Verification = &c
	}
	for _, other := range states[1:] {
		f.AlsoIn = append(f.AlsoIn, other.RecordID)
	}
	writeJSON(w, http.StatusOK, f)
	return nil
}

// fileRecordings returns the recordings holding a file of that name,
// newest first, or errNotFound when none does.
func (a *API) fileRecordings(ctx context.Context, name string) ([]ledger.State, error) {
	states, err := a.store.FileRecordings(ctx, name)
	if err != nil {
		return nil, err
	}
	if len(states) == 0 {
		return nil, errNotFound
	}
	return states, nil
}

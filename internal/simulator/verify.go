package simulator

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/recledger/recledger/rc"
)

// Expected is what a receiver must show for a recording, given the
// callbacks it acknowledged, by CONTRACT.md's rules. It is computed here
// from the callbacks alone, not with the ledger's code, so that it checks
// that code.
type Expected struct {
	RecordID, RoomID, SessionID, UserID string
	Mode                                rc.Mode
	Status, UploadState                 string
	FileCount, UploadedCount            int
	TotalBytes                          int64
	StartedAt, EndedAt                  *int64 // RC's timestamps: the first start, the latest end
	LastError                           *ExpectedError
	Config                              *rc.Config // the first start's
	Files                               map[string]ExpectedFile
}

// ExpectedError is the failure a receiver must show as lastError: that of
// the latest failing callback.
type ExpectedError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	At      int64  `json:"at"`
}

// ExpectedFile is what a receiver must show for one file.
type ExpectedFile struct {
	Kind         string
	Size         *int64
	URL          *string
	UploadStatus string
}

// earlier orders callbacks as CONTRACT.md's "which one counts" choices
// need: RC's timestamp, then type, file name and code, so that the choice
// does not depend on arrival.
func earlier(a, b *rc.Callback) bool {
	switch {
	case a.Timestamp != b.Timestamp:
		return a.Timestamp < b.Timestamp
	case a.Type != b.Type:
		return a.Type < b.Type
	case a.Output.FileName != b.Output.FileName:
		return a.Output.FileName < b.Output.FileName
	}
	return a.Code < b.Code
}

// Expect computes the expected recording from the callbacks a receiver
// acknowledged (in any order, redeliveries included). The identity fields
// come from the first start callback (every callback of a recording names
// the room and session, but only the start names the recording's user),
// or without one from the earliest callback; the config and startedAt from
// the first start; endedAt from the latest end; lastError from the latest
// failing callback of any type.
func Expect(acked []Callback) (Expected, error) {
	var (
		e                   = Expected{Files: map[string]ExpectedFile{}}
		failed, ended       bool
		uploaded, upFailed  = map[string]string{}, map[string]bool{}
		endSize, segSize    = map[string]int64{}, map[string]int64{}
		byEnd, bySeg, named = map[string]bool{}, map[string]bool{}, map[string]bool{}
		identity, start     *rc.Callback
		lastFailure         *rc.Callback
	)
	for _, c := range acked {
		cb, err := rc.Parse(c.Body)
		if err != nil {
			return e, fmt.Errorf("an acknowledged callback does not parse: %w", err)
		}
		isStart := cb.Type == rc.TypeStart
		if identity == nil || (isStart && identity.Type != rc.TypeStart) ||
			((isStart == (identity.Type == rc.TypeStart)) && earlier(&cb, identity)) {
			identity = &cb
		}
		bad := cb.Code != rc.StatusOK && cb.Code != 0
		if bad && (lastFailure == nil || earlier(lastFailure, &cb)) {
			lastFailure = &cb
		}
		name := cb.Output.FileName
		switch cb.Type {
		case rc.TypeStart:
			failed = failed || bad
			if start == nil || earlier(&cb, start) {
				start = &cb
			}
		case rc.TypeSegment:
			bySeg[name] = true
			if cb.Output.FileSize != nil {
				segSize[name] = *cb.Output.FileSize
			}
		case rc.TypeEnd:
			failed, ended = failed || bad, true
			if e.EndedAt == nil || cb.Timestamp > *e.EndedAt {
				e.EndedAt = &cb.Timestamp
			}
			byEnd[name] = true
			if cb.Output.FileSize != nil {
				endSize[name] = *cb.Output.FileSize
			}
		case rc.TypeUpload:
			if bad {
				upFailed[name] = true
			} else {
				uploaded[name] = cb.Output.FileURL
			}
		default:
			continue // unknown types name no file
		}
		if cb.Type != rc.TypeStart && name != "" {
			named[name] = true
		}
	}
	if identity != nil {
		e.RecordID, e.RoomID, e.SessionID, e.UserID, e.Mode = identity.RecordID, identity.RoomID, identity.SessionID, identity.UserID, identity.Mode
	}
	if start != nil {
		e.StartedAt, e.Config = &start.Timestamp, start.Config
	}
	if lastFailure != nil {
		e.LastError = &ExpectedError{Code: lastFailure.Code, Message: lastFailure.ErrorMessage, At: lastFailure.Timestamp}
	}
	for name := range named {
		f := ExpectedFile{Kind: "unknown", UploadStatus: "pending"}
		switch {
		case byEnd[name]:
			f.Kind = "final"
		case bySeg[name]:
			f.Kind = "segment"
		}
		if n, ok := endSize[name]; ok {
			f.Size = &n
		} else if n, ok := segSize[name]; ok {
			f.Size = &n
		}
		if u, ok := uploaded[name]; ok {
			f.URL, f.UploadStatus = &u, "uploaded"
			e.UploadedCount++
		} else if upFailed[name] {
			f.UploadStatus = "failed"
		}
		if f.Size != nil {
			e.TotalBytes += *f.Size
		}
		e.Files[name] = f
	}
	e.FileCount = len(e.Files)
	anyFailedUpload := false
	for _, f := range e.Files {
		anyFailedUpload = anyFailedUpload || f.UploadStatus == "failed"
	}
	switch {
	case e.FileCount == 0:
		e.UploadState = "none"
	case e.UploadedCount == e.FileCount:
		e.UploadState = "complete"
	case anyFailedUpload:
		e.UploadState = "failed"
	case e.UploadedCount > 0:
		e.UploadState = "partial"
	default:
		e.UploadState = "pending"
	}
	switch {
	case failed:
		e.Status = "failed"
	case !ended:
		e.Status = "recording"
	case e.FileCount > 0 && e.UploadedCount == e.FileCount:
		e.Status = "complete"
	default:
		e.Status = "ended"
	}
	return e, nil
}

// shown is the part of the API's recording the verification reads.
type shown struct {
	RecordID      string         `json:"recordId"`
	RoomID        string         `json:"roomId"`
	SessionID     string         `json:"sessionId"`
	UserID        string         `json:"userId"`
	Mode          rc.Mode        `json:"mode"`
	Status        string         `json:"status"`
	UploadState   string         `json:"uploadState"`
	FileCount     int            `json:"fileCount"`
	UploadedCount int            `json:"uploadedCount"`
	TotalBytes    int64          `json:"totalBytes"`
	StartedAt     *int64         `json:"startedAt"`
	EndedAt       *int64         `json:"endedAt"`
	LastError     *ExpectedError `json:"lastError"`
	Config        *rc.Config     `json:"config"`
	FirstSeenAt   *int64         `json:"firstSeenAt"`
	LastEventAt   *int64         `json:"lastEventAt"`
	Findings      []shownFinding `json:"findings"`
	Files         []shownFile    `json:"files"`
}

// shownFile is the part of the API's file the verification reads.
type shownFile struct {
	FileName     string  `json:"fileName"`
	Kind         string  `json:"kind"`
	FileSize     *int64  `json:"fileSize"`
	FileURL      *string `json:"fileUrl"`
	UploadStatus string  `json:"uploadStatus"`
	// Verification is the storage check of an uploaded file.
	Verification *shownVerification `json:"verification"`
}

// Mismatch is one way a recording the API shows differs from what its
// acknowledged callbacks imply.
type Mismatch struct {
	RecordID string
	// Kind is what differs, the same for the same fault in any recording
	// ("status", "file size", "file not shown", "answer"), so that many
	// mismatches can be counted by cause.
	Kind   string
	Detail string
}

func (m Mismatch) String() string { return m.RecordID + ": " + m.Detail }

// Verify reads every recording from recledger's query API at server and
// compares it with what the acknowledged callbacks imply. It returns one
// mismatch per difference; none means the receiver's ledger is right.
// Findings are checked when the server reports them, with the default
// MaxOpen; storage verification is not (VerifyWith).
func Verify(ctx context.Context, server, token string, recs []Recording, acked map[string][]Callback) ([]Mismatch, error) {
	res, err := VerifyWith(ctx, VerifyOptions{Server: server, Token: token}, recs, acked)
	return res.Mismatches, err
}

// VerifyOptions say where the API is and what else to check.
type VerifyOptions struct {
	Server, Token string
	// Storage, when set, is the test storage the uploads went to, and the
	// server verifies storage: every uploaded file must show the
	// verification its object implies, and no other file one.
	Storage *Storage
	// MaxOpen is the server's --max-recording-length (DefaultMaxOpen when
	// 0), which not_ended findings depend on.
	MaxOpen time.Duration
	// Client makes the requests (a 10 s timeout when nil).
	Client *http.Client
}

// VerifyResult is what VerifyWith found.
type VerifyResult struct {
	Mismatches []Mismatch
	// Pending counts uploaded files whose verification is still pending
	// (each is a mismatch too): storage checks take their time, so a
	// caller polls while it falls.
	Pending int
	// Undecided counts clock findings (not_ended, stalled) within a
	// second of their limit, accepted shown or not: a caller looks again
	// to judge them.
	Undecided int
	// FindingsChecked says the server reports findings (it takes
	// ?finding=); an older one does not, and they are not checked.
	FindingsChecked bool
	// Findings counts the findings shown, by kind; Verifications the
	// uploaded files' verification states shown, by state.
	Findings, Verifications map[string]int
}

// VerifyWith is Verify with options: findings with the server's MaxOpen,
// and, with a Storage, the uploaded files' verification.
func VerifyWith(ctx context.Context, o VerifyOptions, recs []Recording, acked map[string][]Callback) (VerifyResult, error) {
	res := VerifyResult{Findings: map[string]int{}, Verifications: map[string]int{}}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if o.MaxOpen <= 0 {
		o.MaxOpen = DefaultMaxOpen
	}
	base := strings.TrimRight(o.Server, "/")
	var err error
	if res.FindingsChecked, err = reportsFindings(ctx, o, base); err != nil {
		return res, err
	}
	for _, rec := range recs {
		got, status, now, err := fetch(ctx, o, base+"/v1/recordings/"+url.PathEscape(rec.RecordID))
		if err != nil {
			return res, fmt.Errorf("verify %s: %w", rec.RecordID, err)
		}
		cbs := acked[rec.RecordID]
		if len(cbs) == 0 {
			if status != http.StatusNotFound {
				res.Mismatches = append(res.Mismatches, Mismatch{rec.RecordID, "answer", fmt.Sprintf("nothing of it was acknowledged, but the API answers %d", status)})
			}
			continue
		}
		if status != http.StatusOK {
			res.Mismatches = append(res.Mismatches, Mismatch{rec.RecordID, "answer", fmt.Sprintf("%d callbacks acknowledged, but the API answers %d", len(cbs), status)})
			continue
		}
		want, err := Expect(cbs)
		if err != nil {
			return res, err
		}
		res.Mismatches = append(res.Mismatches, compare(want, got)...)
		if res.FindingsChecked {
			ms, undecided := compareFindings(rec.RecordID, expectFindings(rec, want, got, now, o.MaxOpen), got.Findings)
			res.Mismatches, res.Undecided = append(res.Mismatches, ms...), res.Undecided+undecided
			for _, f := range got.Findings {
				res.Findings[f.Kind]++
			}
		}
		if o.Storage != nil {
			ms, pending := compareVerification(o.Storage, want, got, cbs, res.Verifications)
			res.Mismatches, res.Pending = append(res.Mismatches, ms...), res.Pending+pending
		}
	}
	return res, nil
}

// fetch GETs a recording and bounds the server's clock when it answered:
// by its Date header (whole seconds, and the request's round trip before
// it), else by the local clock around the request.
func fetch(ctx context.Context, o VerifyOptions, u string) (got shown, status int, now clock, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return got, 0, now, err
	}
	if o.Token != "" {
		req.Header.Set("Authorization", "Bearer "+o.Token)
	}
	t0 := time.Now()
	resp, err := o.Client.Do(req)
	if err != nil {
		return got, 0, now, err
	}
	defer resp.Body.Close()
	t1 := time.Now()
	now = clock{t0.UnixMilli(), t1.UnixMilli()}
	if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		now = clock{d.UnixMilli() - t1.Sub(t0).Milliseconds() - 1, d.UnixMilli() + 999}
	}
	if resp.StatusCode == http.StatusOK {
		err = json.NewDecoder(resp.Body).Decode(&got)
	}
	return got, resp.StatusCode, now, err
}

// reportsFindings asks whether the server reports findings: one that
// does takes the ?finding= filter, an older one refuses it as an unknown
// parameter.
func reportsFindings(ctx context.Context, o VerifyOptions, base string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/recordings?finding=any&limit=1", nil)
	if err != nil {
		return false, err
	}
	if o.Token != "" {
		req.Header.Set("Authorization", "Bearer "+o.Token)
	}
	resp, err := o.Client.Do(req)
	if err != nil {
		return false, fmt.Errorf("verify: %w", err)
	}
	defer resp.Body.Close()
	var answer struct {
		Error struct{ Code string } `json:"error"`
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		return true, nil
	case resp.StatusCode == http.StatusBadRequest && json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&answer) == nil &&
		answer.Error.Code == "unknown_parameter":
		return false, nil
	case resp.StatusCode == http.StatusNotFound:
		return false, nil // no list to ask (a receiver without recledger's API); each recording's answer tells
	}
	return false, fmt.Errorf("verify: GET /v1/recordings?finding=any answers %d", resp.StatusCode)
}

func compare(want Expected, got shown) []Mismatch {
	var out []Mismatch
	add := func(kind, format string, args ...any) {
		out = append(out, Mismatch{want.RecordID, kind, fmt.Sprintf(format, args...)})
	}
	diff := func(field string, w, g any) {
		if fmt.Sprint(w) != fmt.Sprint(g) {
			add(field, "%s is %v, want %v", field, g, w)
		}
	}
	fileDiff := func(name, attr string, w, g any) {
		if fmt.Sprint(w) != fmt.Sprint(g) {
			add("file "+attr, "file %s %s is %v, want %v", name, attr, g, w)
		}
	}
	diff("roomId", want.RoomID, got.RoomID)
	diff("sessionId", want.SessionID, got.SessionID)
	diff("userId", want.UserID, got.UserID)
	diff("mode", want.Mode, got.Mode)
	diff("status", want.Status, got.Status)
	diff("uploadState", want.UploadState, got.UploadState)
	diff("fileCount", want.FileCount, got.FileCount)
	diff("uploadedCount", want.UploadedCount, got.UploadedCount)
	diff("totalBytes", want.TotalBytes, got.TotalBytes)
	diff("startedAt", deref(want.StartedAt), deref(got.StartedAt))
	diff("endedAt", deref(want.EndedAt), deref(got.EndedAt))
	diff("lastError", deref(want.LastError), deref(got.LastError))
	diff("config", deref(want.Config), deref(got.Config))
	seen := map[string]bool{}
	for _, f := range got.Files {
		seen[f.FileName] = true
		w, ok := want.Files[f.FileName]
		if !ok {
			add("file not acknowledged", "file %s is shown but was never acknowledged", f.FileName)
			continue
		}
		fileDiff(f.FileName, "kind", w.Kind, f.Kind)
		fileDiff(f.FileName, "size", deref(w.Size), deref(f.FileSize))
		fileDiff(f.FileName, "url", deref(w.URL), deref(f.FileURL))
		fileDiff(f.FileName, "uploadStatus", w.UploadStatus, f.UploadStatus)
	}
	var missing []string
	for name := range want.Files {
		if !seen[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	for _, name := range missing {
		add("file not shown", "file %s was acknowledged but is not shown", name)
	}
	return out
}

func deref[T any](p *T) any {
	if p == nil {
		return "null"
	}
	return *p
}

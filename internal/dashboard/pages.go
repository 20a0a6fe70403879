package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// page is what every page's view carries for the layout.
type page struct {
	Title    string
	Nav      string // the current section: overview, recordings, quarantine
	Logout   bool   // a token is configured: offer to log out
	Live     bool   // the page follows the event stream
	LastSeq  int64  // where the stream starts
	RecordID string // the detail page follows only its recording
	Stream   string
	Search   string // the search box's value
	Now      time.Time
	Assets   map[string]string // asset name -> its versioned URL (shared; read only)
	// Destinations: the destination pages are served (the nav links them).
	Destinations bool
	// Outside: the page is shown to someone not (or no longer) let in, so
	// it offers no navigation, search or logout, which would only lead
	// back to the login.
	Outside bool
}

func (p *page) base() *page { return p }

type view interface{ base() *page }

type messageView struct {
	page
	Message string
}

type loginView struct {
	page
	Next     string
	Problem  string
	Insecure bool // the browser will not keep the Secure cookie
}

func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	p := v.base()
	p.Logout = d.opts.Access.TokenRequired()
	p.Stream = d.opts.StreamPath
	if p.Now.IsZero() {
		p.Now = d.opts.Now()
	}
	p.Assets = d.assetURLs
	p.Destinations = d.opts.Destinations != nil
	var buf bytes.Buffer
	if err := d.pages[name].Execute(&buf, v); err != nil {
		d.opts.Logger.Error("dashboard template", "page", name, "err", err)
		http.Error(w, "the page could not be drawn", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// lastSeq is where a live page's stream starts: the newest logged event.
func (d *Dashboard) lastSeq(ctx context.Context) (int64, error) {
	latest, err := d.store.LatestEvents(ctx, 1)
	if err != nil || len(latest) == 0 {
		return 0, err
	}
	return latest[0].Seq, nil
}

// countLink is one count on the overview, linking to what it counts.
type countLink struct {
	Label string
	Count int64
	Href  string
	Class string // the badge class of the state
	Alert bool   // non-zero and wants attention
}

type overviewView struct {
	page
	Statuses     []countLink
	Uploads      []countLink
	FilesPending int64
	FilesOverdue int64
	// StorageMissing counts the files storage verification did not find as
	// RC reported them; nil when the store keeps no checks.
	StorageMissing    *storageMissing
	Chart             chart
	CallbacksLastHour int64
	RejectedLastHour  int64
	QuarantineKept    int64
	Latest            []ledger.Event // newest first
}

func (d *Dashboard) overview(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	now := d.opts.Now()
	v := &overviewView{page: page{Title: "Overview", Nav: "overview", Live: true, Now: now}}
	st, err := d.store.Stats(ctx, now)
	if err != nil {
		return err
	}
	for _, s := range []ledger.Status{ledger.StatusRecording, ledger.StatusEnded, ledger.StatusComplete, ledger.StatusFailed} {
		n := st.RecordingsByStatus[s]
		v.Statuses = append(v.Statuses, countLink{Label: string(s), Count: n, Href: "/recordings?status=" + string(s),
			Class: "st-" + string(s), Alert: s == ledger.StatusFailed && n > 0})
	}
	for _, u := range []ledger.UploadState{ledger.UploadNone, ledger.UploadPending, ledger.UploadPartial, ledger.UploadComplete, ledger.UploadFailed, ledger.UploadOverdue} {
		n := st.RecordingsByUpload[u]
		v.Uploads = append(v.Uploads, countLink{Label: string(u), Count: n, Href: "/recordings?uploadState=" + string(u),
			Class: "up-" + string(u), Alert: (u == ledger.UploadFailed || u == ledger.UploadOverdue) && n > 0})
	}
	v.FilesPending, v.FilesOverdue, v.QuarantineKept = st.FilesPending, st.FilesOverdue, st.QuarantineCount
	if v.StorageMissing, err = d.storageMissing(ctx); err != nil {
		return err
	}
	hourAgo := ledger.MinuteOf(now.UnixMilli()) - 59*60_000
	minutes, err := d.store.Activity(ctx, hourAgo)
	if err != nil {
		return err
	}
	v.Chart = activityChart(minutes, hourAgo)
	for _, m := range minutes {
		v.CallbacksLastHour += m.Callbacks
		v.RejectedLastHour += m.Rejected
	}
	latest, err := d.store.LatestEvents(ctx, 10)
	if err != nil {
		return err
	}
	for i := len(latest) - 1; i >= 0; i-- {
		v.Latest = append(v.Latest, latest[i])
	}
	if len(latest) > 0 { // the newest event is where the page's stream starts
		v.LastSeq = latest[len(latest)-1].Seq
	}
	d.render(w, r, http.StatusOK, "overview", v)
	return nil
}

// option is one choice of a select.
type option struct{ Value, Label string }

var (
	statusOptions = []option{{"", "any"}, {"recording", "recording"}, {"ended", "ended"}, {"complete", "complete"}, {"failed", "failed"}}
	uploadOptions = []option{{"", "any"}, {"none", "none"}, {"pending", "pending"}, {"partial", "partial"},
		{"complete", "complete"}, {"failed", "failed"}, {"overdue", "overdue"}}
	modeOptions = func() []option {
		out := []option{{"", "any"}}
		for m := rc.Mode(0); m.Known(); m++ {
			out = append(out, option{strconv.Itoa(int(m)), fmt.Sprintf("%d · %s", m, m)})
		}
		return out
	}()
)

// filterForm is the recordings filter as the form shows it.
type filterForm struct {
	AppKey, RoomID, SessionID, UserID, Status, UploadState, Verification, Mode, Since, Until string
	Statuses, UploadStates, Verifications, Modes                                             []option
	Active                                                                                   bool // some filter is set
	Set                                                                                      int  // how many are set
}

type recordingsView struct {
	page
	Filter filterForm
	Items  []ledger.Recording
	Count  string // how many match: "3 recordings", "50 shown of 1,234 recordings"
	Older  string // the next page's URL
	First  string // the first page's URL, when this is a later one
	Notice string
}

// dateLayouts are what a datetime-local input sends (with and without
// seconds); the dashboard reads them as UTC, as its labels say.
var dateLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339}

func parseDate(field, v string) (*int64, error) {
	if v == "" {
		return nil, nil
	}
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil && ms >= 0 {
		return &ms, nil
	}
	for _, l := range dateLayouts {
		if t, err := time.ParseInLocation(l, v, time.UTC); err == nil {
			ms := t.UnixMilli()
			return &ms, nil
		}
	}
	return nil, &badInput{field, "want a date and time like 2026-11-27T09:30 (UTC) or Unix milliseconds"}
}

func (d *Dashboard) recordings(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	now := d.opts.Now()
	form := filterForm{
		AppKey: q.Get("appKey"), RoomID: q.Get("roomId"), SessionID: q.Get("sessionId"), UserID: q.Get("userId"),
		Status: q.Get("status"), UploadState: q.Get("uploadState"), Verification: q.Get("verification"), Mode: q.Get("mode"),
		Since: q.Get("since"), Until: q.Get("until"),
		Statuses: statusOptions, UploadStates: uploadOptions, Verifications: verificationOptions, Modes: modeOptions,
	}
	f := ledger.RecordingFilter{AppKey: form.AppKey, RoomID: form.RoomID, SessionID: form.SessionID, UserID: form.UserID,
		Cursor: q.Get("cursor"), Limit: ledger.DefaultPage, Now: now}
	// (found names the search that led here; the parameter it names too.)
	if err := checkParams(q, "appKey", "roomId", "sessionId", "userId", "status", "uploadState", "verification", "mode", "since", "until", "cursor", "found"); err != nil {
		return err
	}
	if err := checkIDFilters([2]string{"appKey", form.AppKey}, [2]string{"roomId", form.RoomID},
		[2]string{"sessionId", form.SessionID}, [2]string{"userId", form.UserID}); err != nil {
		return err
	}
	if !validOption(statusOptions, form.Status) {
		return &badInput{"status", "want recording, ended, complete or failed"}
	}
	f.Status = ledger.Status(form.Status)
	if !validOption(uploadOptions, form.UploadState) {
		return &badInput{"upload state", "want none, pending, partial, complete, failed or overdue"}
	}
	f.UploadState = ledger.UploadState(form.UploadState)
	if !validOption(verificationOptions, form.Verification) {
		return &badInput{"storage", "want missing, size_mismatch, unreachable, pending or verified"}
	}
	f.Verification = ledger.VerificationState(form.Verification)
	if form.Mode != "" {
		if !validOption(modeOptions, form.Mode) {
			return &badInput{"mode", "want 0 to 6"}
		}
		n, _ := strconv.Atoi(form.Mode)
		m := rc.Mode(n)
		f.Mode = &m
	}
	var err error
	if f.Since, err = parseDate("from", form.Since); err != nil {
		return err
	}
	if f.Until, err = parseDate("to", form.Until); err != nil {
		return err
	}
	for _, v := range []string{form.AppKey, form.RoomID, form.SessionID, form.UserID, form.Status, form.UploadState, form.Verification, form.Mode, form.Since, form.Until} {
		if v != "" {
			form.Set++
		}
	}
	form.Active = form.Set > 0

	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	// Only the first page follows the stream: new recordings go on top,
	// and a later page would shift under the reader.
	v := &recordingsView{page: page{Title: "Recordings", Nav: "recordings", Live: f.Cursor == "", Now: now}, Filter: form}
	if v.LastSeq, err = d.lastSeq(ctx); err != nil {
		return err
	}
	pg, err := d.store.ListRecordings(ctx, f)
	if errors.Is(err, ledger.ErrBadCursor) {
		return &badInput{"page", "that page link is not one this server made for these filters; start from the first page"}
	}
	if err != nil {
		return err
	}
	for _, st := range pg.Items {
		v.Items = append(v.Items, st.View(now))
	}
	total, err := d.store.CountRecordings(ctx, f, countUpTo+1)
	if err != nil {
		return err
	}
	v.Count = countCaption(len(v.Items), total, f.Cursor != "", "recording", "recordings")
	if pg.Next != "" {
		next := cloneQuery(q)
		next.Set("cursor", pg.Next)
		v.Older = "/recordings?" + next.Encode()
	}
	if f.Cursor != "" {
		first := cloneQuery(q)
		first.Del("cursor")
		v.First = "/recordings"
		if len(first) > 0 {
			v.First += "?" + first.Encode()
		}
	}
	// After a search: say what matched (made here, not taken from the URL,
	// so a crafted link cannot put its own words on the page).
	if what, ok := searchedBy[q.Get("found")]; ok {
		v.Notice = "Found by " + what + ": recordings whose " + what + " is " + strconv.Quote(q.Get(q.Get("found"))) + "."
	}
	d.render(w, r, http.StatusOK, "recordings", v)
	return nil
}

// countUpTo bounds the recordings a list counts (ledger.Store's
// CountRecordings): past it the page says "10,000+", and a broad filter on
// millions of recordings stays a cheap query.
const countUpTo = 10_000

// countCaption says how many of total match and how many a page shows;
// total counts up to countUpTo+1, which reads "10,000+". A total read a
// moment before the page (fewer than its rows) is the page's rows.
func countCaption(shown int, total int64, later bool, one, many string) string {
	noun := many
	if total == 1 {
		noun = one
	}
	all := groupDigits(total)
	if total > countUpTo {
		all, noun = groupDigits(countUpTo)+"+", many
	}
	switch {
	case later:
		return fmt.Sprintf("%s older shown of %s %s", groupDigits(int64(shown)), all, noun)
	case int64(shown) >= total:
		if shown == 1 {
			noun = one
		}
		return fmt.Sprintf("%s %s", groupDigits(int64(shown)), noun)
	}
	return fmt.Sprintf("%s shown of %s %s", groupDigits(int64(shown)), all, noun)
}

// groupDigits writes n with thousands separators: 12,345.
func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	if n < 0 {
		return "-" + groupDigits(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// searchedBy names the filters a search can land on.
var searchedBy = map[string]string{"roomId": "room", "sessionId": "session", "userId": "user", "appKey": "app key"}

func validOption(opts []option, v string) bool {
	for _, o := range opts {
		if o.Value == v {
			return true
		}
	}
	return false
}

func cloneQuery(q url.Values) url.Values {
	out := url.Values{}
	for k, vs := range q {
		if k == "found" {
			continue
		}
		for _, v := range vs {
			if v != "" {
				out.Add(k, v)
			}
		}
	}
	return out
}

// fileRow is one file on the detail page.
type fileRow struct {
	ledger.File
	Link   string // the URL when it is http(s), the only kinds a link may carry
	Player string // "video" or "audio" when the browser can play the format inline
}

// eventRow is one callback on the detail page's timeline.
type eventRow struct {
	ledger.Event
	Lag    string // arrival minus RC's timestamp
	Failed bool   // a code other than 200
	Raw    string // the body, indented
}

type recordingView struct {
	page
	// CanRecheck: storage verification runs, so the page offers to check
	// the files again; Notice says how many a re-check queued.
	CanRecheck bool
	Notice     string
	Rec        ledger.Recording
	Files      []fileRow
	Events     []eventRow
	Timeline   timeline
	Duration   string
	// ErrorCurrent: the recording's last reported failure still stands
	// (it failed, or an upload failed and was not retried successfully).
	ErrorCurrent bool
}

// players are the formats a browser plays inline; hls and flv need a
// player library, so they get their link only.
var players = map[string]string{"mp4": "video", "mkv": "video", "webm": "video", "mp3": "audio", "aac": "audio", "m4a": "audio"}

func (d *Dashboard) recording(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("recordId")
	if err := checkRecordID(id); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	now := d.opts.Now()
	v := &recordingView{page: page{Title: "Recording " + id, Nav: "recordings", Live: true, RecordID: id, Now: now}}
	var err error
	if v.LastSeq, err = d.lastSeq(ctx); err != nil {
		return err
	}
	st, err := d.store.Recording(ctx, id)
	if errors.Is(err, ledger.ErrNotFound) {
		return &notFound{"No recording has the recordId " + strconv.Quote(id) + "."}
	}
	if err != nil {
		return err
	}
	events, err := d.store.RecordingEvents(ctx, id)
	if err != nil {
		return err
	}
	v.Rec = st.View(now)
	var checks map[string]ledger.Verification
	if vs := d.verifications(); vs != nil {
		if checks, err = vs.FileVerifications(ctx, id); err != nil {
			return err
		}
		v.CanRecheck = d.opts.VerifyStorage
	}
	if n := r.URL.Query().Get("rechecked"); n != "" {
		if k, err := strconv.Atoi(n); err == nil && k >= 0 {
			v.Notice = strconv.Itoa(k) + " " + map[bool]string{true: "file", false: "files"}[k == 1] + " to check in storage again; the page shows each one's outcome as it comes."
		}
	}
	v.ErrorCurrent = v.Rec.Status == ledger.StatusFailed || v.Rec.UploadState == ledger.UploadFailed || v.Rec.UploadState == ledger.UploadOverdue
	for _, f := range v.Rec.Files {
		if c, ok := checks[f.FileName]; ok {
			f.Verification = &c
		}
		row := fileRow{File: f}
		if f.FileURL != nil && httpURL(*f.FileURL) {
			row.Link = *f.FileURL
			if f.UploadStatus == ledger.UploadStatusUploaded {
				row.Player = players[strings.ToLower(f.Format)]
			}
		}
		v.Files = append(v.Files, row)
	}
	for _, e := range events {
		row := eventRow{Event: e, Failed: e.Code != rc.StatusOK && e.Code != 0, Lag: signedDuration(time.Duration(e.ReceivedAt-e.Timestamp) * time.Millisecond)}
		var pretty bytes.Buffer
		if json.Indent(&pretty, e.Body, "", "  ") == nil {
			row.Raw = pretty.String()
		} else {
			row.Raw = string(e.Body)
		}
		v.Events = append(v.Events, row)
	}
	v.Timeline = newTimeline(events)
	if v.Rec.StartedAt != nil && v.Rec.EndedAt != nil {
		v.Duration = (time.Duration(*v.Rec.EndedAt-*v.Rec.StartedAt) * time.Millisecond).String()
	}
	d.render(w, r, http.StatusOK, "recording", v)
	return nil
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// rejectionRow is one refused request.
type rejectionRow struct {
	ledger.Rejection
	HeaderText string
	BodyText   string
}

type quarantineView struct {
	page
	Items []rejectionRow
	Count string // "2 refused requests", "50 shown of 1,234 refused requests"
	Older string
	First bool
}

func (d *Dashboard) quarantine(w http.ResponseWriter, r *http.Request) error {
	before := int64(0)
	if c := r.URL.Query().Get("cursor"); c != "" {
		n, err := strconv.ParseInt(c, 10, 64)
		if err != nil || n < 0 {
			return &badInput{"page", "not a page of the quarantine"}
		}
		before = n
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	items, err := d.store.QuarantineList(ctx, before, ledger.DefaultPage+1)
	if err != nil {
		return err
	}
	now := d.opts.Now()
	st, err := d.store.Stats(ctx, now)
	if err != nil {
		return err
	}
	v := &quarantineView{page: page{Title: "Quarantine", Nav: "quarantine", Now: now}, First: before == 0}
	if len(items) > ledger.DefaultPage {
		items = items[:ledger.DefaultPage]
		v.Older = "/quarantine?cursor=" + strconv.FormatInt(items[len(items)-1].ID, 10)
	}
	// The quarantine is capped, so its count is exact and cheap.
	v.Count = countCaption(len(items), st.QuarantineCount, !v.First, "refused request", "refused requests")
	for _, it := range items {
		var h strings.Builder
		names := make([]string, 0, len(it.Header))
		for n := range it.Header {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			for _, val := range it.Header[n] {
				fmt.Fprintf(&h, "%s: %s\n", n, val)
			}
		}
		v.Items = append(v.Items, rejectionRow{Rejection: it, HeaderText: h.String(), BodyText: strings.ToValidUTF8(string(it.Body), "\uFFFD")})
	}
	d.render(w, r, http.StatusOK, "quarantine", v)
	return nil
}

// search finds what the box names: a recordId or a file name opens its
// recording; a room, session, user or app key lists its recordings.
func (d *Dashboard) search(w http.ResponseWriter, r *http.Request) error {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if q == "" {
		http.Redirect(w, r, "/recordings", http.StatusSeeOther)
		return nil
	}
	if err := checkSearch(q); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	if _, err := d.store.Recording(ctx, q); err == nil {
		http.Redirect(w, r, "/recordings/"+url.PathEscape(q), http.StatusSeeOther)
		return nil
	} else if !errors.Is(err, ledger.ErrNotFound) {
		return err
	}
	states, err := d.store.FileRecordings(ctx, q)
	if err != nil {
		return err
	}
	if len(states) > 0 {
		http.Redirect(w, r, "/recordings/"+url.PathEscape(states[0].RecordID)+"#files", http.StatusSeeOther)
		return nil
	}
	for _, by := range []struct {
		param  string
		filter ledger.RecordingFilter
	}{
		{"roomId", ledger.RecordingFilter{RoomID: q, Limit: 1}},
		{"sessionId", ledger.RecordingFilter{SessionID: q, Limit: 1}},
		{"userId", ledger.RecordingFilter{UserID: q, Limit: 1}},
		{"appKey", ledger.RecordingFilter{AppKey: q, Limit: 1}},
	} {
		pg, err := d.store.ListRecordings(ctx, by.filter)
		if err != nil {
			return err
		}
		if len(pg.Items) > 0 {
			to := url.Values{by.param: {q}, "found": {by.param}}
			http.Redirect(w, r, "/recordings?"+to.Encode(), http.StatusSeeOther)
			return nil
		}
	}
	d.render(w, r, http.StatusNotFound, "message", &messageView{page: page{Title: "Nothing found", Search: q},
		Message: "Nothing matches " + strconv.Quote(q) + ". Search takes a recordId, a file name, or a room, session, user or app key, exactly as RC sends them."})
	return nil
}

// Package api is recledger's query API: recordings, files, the event log
// and the quarantine as JSON, behind a bearer token or, without one, for
// loopback clients only. Domain errors map to HTTP answers in one table.
package api

import (
	"context"
	_ "embed" // the OpenAPI document
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/recledger/recledger/internal/access"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// Store is what the API reads.
type Store interface {
	Recording(ctx context.Context, recordID string) (ledger.State, error)
	RecordingEvents(ctx context.Context, recordID string) ([]ledger.Event, error)
	ListRecordings(ctx context.Context, f ledger.RecordingFilter) (ledger.RecordingPage, error)
	FileRecordings(ctx context.Context, fileName string) ([]ledger.State, error)
	ListFiles(ctx context.Context, f ledger.FileFilter) (ledger.FilePage, error)
	Events(ctx context.Context, after int64, limit int) ([]ledger.Event, error)
	LatestEvents(ctx context.Context, n int) ([]ledger.Event, error)
	QuarantineList(ctx context.Context, before int64, limit int) ([]ledger.Rejection, error)
	Ping(ctx context.Context) error
}

// Options configure the API.
type Options struct {
	// Token, when set, is required as "Authorization: Bearer TOKEN" on every
	// endpoint but /healthz. When empty only loopback clients are answered.
	Token string
	// Access, when set, is the rule to apply instead of one made from
	// Token: the dashboard shares it, so its session cookie opens the API
	// (the event stream the dashboard follows) too.
	Access *access.Rule
	Now    func() time.Time // the server clock, for overdue
	Logger *slog.Logger
	// Metrics, when set, is served at /metrics under the same auth rule.
	Metrics http.Handler
	// Stopping, when closed, ends open event streams: http.Server.Shutdown
	// waits for handlers and does not cancel them.
	Stopping <-chan struct{}
	// StreamPoll and StreamHeartbeat pace the event stream (250 ms, 15 s).
	StreamPoll, StreamHeartbeat time.Duration
	// MaxStreams caps the event streams served at once; beyond it a stream
	// is answered 503 with Retry-After (100).
	MaxStreams int
	// StreamWriteTimeout is how long one write to a stream may wait for the
	// reader; past it the reader is dropped as too slow and resumes later
	// with Last-Event-ID (10 s).
	StreamWriteTimeout time.Duration
	// StreamReaders is how many streams may read the store at once; the
	// others wait their turn, so replays cannot starve the callbacks (a
	// quarter of GOMAXPROCS, at least 1).
	StreamReaders int
	// StreamSocketBuffer is the socket send buffer of a stream's connection
	// when the server sets ConnContext (64 KiB; Linux doubles it).
	StreamSocketBuffer int
	// Destinations, when set, serves /v1/destinations.
	Destinations *Destinations
	// Erase, when set, serves DELETE /v1/users/{userId} (token holders
	// only).
	Erase Eraser
	// VerifyStorage says storage verification runs (--verify-storage): the
	// re-check endpoints queue checks. Off, they answer 409
	// verification_off. The checks a store keeps (Verifications) are shown
	// either way.
	VerifyStorage bool
}

// API serves the query endpoints.
type API struct {
	store   Store
	opts    Options
	access  *access.Rule
	streams streamState
}

// New returns the API over store.
func New(store Store, o Options) *API {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.StreamPoll <= 0 {
		o.StreamPoll = defaultStreamPoll
	}
	if o.StreamHeartbeat <= 0 {
		o.StreamHeartbeat = defaultStreamHeartbeat
	}
	if o.MaxStreams <= 0 {
		o.MaxStreams = defaultMaxStreams
	}
	if o.StreamWriteTimeout <= 0 {
		o.StreamWriteTimeout = defaultStreamWriteTimeout
	}
	if o.StreamReaders <= 0 {
		o.StreamReaders = streamReaders()
	}
	if o.StreamSocketBuffer <= 0 {
		o.StreamSocketBuffer = defaultStreamSocketBuffer
	}
	if o.Access == nil {
		o.Access = access.New(o.Token, o.Now)
	}
	a := &API{store: store, opts: o, access: o.Access}
	a.streams.readers = make(chan struct{}, o.StreamReaders)
	return a
}

// Register adds the API's routes to mux and returns their patterns
// ("GET /v1/recordings", ...), which the OpenAPI document must match.
func (a *API) Register(mux *http.ServeMux) []string {
	// Each route declares the query parameters it reads (see takes): any
	// other is refused, so a misspelled filter cannot widen an answer.
	recordingFilters := []string{"appKey", "roomId", "sessionId", "userId", "recordIdPrefix", "status", "uploadState", "verification", "mode", "since", "until", "limit", "cursor"}
	routes := []struct {
		pattern string
		h       http.Handler
	}{
		{"GET /healthz", a.open(func(w http.ResponseWriter, _ *http.Request) error {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
			return nil
		})},
		{"GET /v1/openapi.json", a.open(func(w http.ResponseWriter, _ *http.Request) error {
			w.Header().Set("Content-Type", "application/json")
			w.Write(openAPI)
			return nil
		})},
		{"GET /readyz", a.guard(a.readyz(true))},
		{"GET /v1/recordings", a.guard(a.listRecordings, recordingFilters...)},
		{"GET /v1/recordings/{recordId}", a.guard(a.getRecording)},
		{"GET /v1/files", a.guard(a.listFiles, fileListParams...)},
		{"GET /v1/files/{fileName}", a.guard(a.getFile)},
		{"GET /v1/events", a.guard(a.listEvents, "after", "limit", "tail")},
		{"GET /v1/events/stream", a.guard(a.stream, "after", "from")},
		{"GET /v1/quarantine", a.guard(a.listQuarantine, "limit", "cursor")},
		{"POST /v1/recordings/{recordId}/verify", a.guard(a.verifyRecording)},
		{"POST /v1/files/{fileName}/verify", a.guard(a.verifyFile)},
		{"POST /v1/verifications/recheck", a.guard(a.recheckState, "state")},
	}
	if a.opts.Destinations != nil {
		routes = append(routes, []struct {
			pattern string
			h       http.Handler
		}{
			{"POST /v1/destinations", a.guard(a.createDestination)},
			{"GET /v1/destinations", a.guard(a.listDestinations)},
			{"GET /v1/destinations/{id}", a.guard(a.getDestination)},
			{"PATCH /v1/destinations/{id}", a.guard(a.patchDestination)},
			{"DELETE /v1/destinations/{id}", a.guard(a.deleteDestination)},
			{"GET /v1/destinations/{id}/attempts", a.guard(a.listAttempts, "limit")},
			{"GET /v1/destinations/{id}/dead-letters", a.guard(a.listDeadLetters, "limit")},
			{"POST /v1/destinations/{id}/redeliver", a.guard(a.redeliver)},
			{"POST /v1/destinations/{id}/test", a.guard(a.testDestination)},
			{"POST /v1/destinations/{id}/rotate-secret", a.guard(a.rotateSecret)},
			{"GET /v1/destinations/{id}/public-key", a.open(a.publicKey)},
		}...)
	}
	if a.opts.Erase != nil {
		routes = append(routes, struct {
			pattern string
			h       http.Handler
		}{"DELETE /v1/users/{userId}", a.tokenOnly(a.eraseUser, "appKey")})
	}
	if a.opts.Metrics != nil {
		routes = append(routes, struct {
			pattern string
			h       http.Handler
		}{"GET /metrics", a.guard(func(w http.ResponseWriter, r *http.Request) error {
			a.opts.Metrics.ServeHTTP(w, r)
			return nil
		}, "name[]")}) // promhttp's filter by metric name
	}
	patterns := make([]string, 0, len(routes))
	for _, r := range routes {
		mux.Handle(r.pattern, r.h)
		patterns = append(patterns, r.pattern)
	}
	return patterns
}

// RegisterInternal adds /metrics (when Options.Metrics is set), /readyz and
// /healthz to mux without the access rule: for a listener only a scraper
// and probes on an internal interface reach (serve's --metrics-addr). The
// main listener keeps them behind the rule.
func (a *API) RegisterInternal(mux *http.ServeMux) {
	mux.Handle("GET /healthz", a.open(func(w http.ResponseWriter, _ *http.Request) error {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return nil
	}))
	// No cause here: an error can name the database's host, user and
	// files, and this listener has no token to keep them from whoever
	// reaches it. The log has the cause.
	mux.Handle("GET /readyz", a.open(a.readyz(false)))
	if a.opts.Metrics != nil {
		mux.Handle("GET /metrics", a.open(func(w http.ResponseWriter, r *http.Request) error {
			a.opts.Metrics.ServeHTTP(w, r)
			return nil
		}, "name[]"))
	}
}

// openAPI is the OpenAPI 3.1 document of recledger's whole HTTP surface,
// the callback endpoint included; cmd/recledger's tests hold it true.
//
//go:embed openapi.json
var openAPI []byte

// queryTimeout bounds a query's wait for the store (and for the projections
// to include what was acknowledged before it).
const queryTimeout = 10 * time.Second

// Errors of the API's own.
var (
	errNotFound = errors.New("not found")
)

// badParam is a query parameter that could not be used.
type badParam struct {
	name, reason string
}

func (e *badParam) Error() string {
	if e.name == "Last-Event-ID" {
		return "header " + e.name + ": " + e.reason
	}
	return "query parameter " + e.name + ": " + e.reason
}

// The HTTP answer to each error, in one place.
var errorAnswers = []struct {
	err    error
	status int
	code   string
}{
	{access.ErrUnauthorized, http.StatusUnauthorized, "unauthorized"},
	{access.ErrForbidden, http.StatusForbidden, "forbidden"},
	{access.ErrTooManyAttempts, http.StatusTooManyRequests, "too_many_attempts"},
	{ledger.ErrNotFound, http.StatusNotFound, "not_found"},
	{errNotFound, http.StatusNotFound, "not_found"},
	{ledger.ErrBadCursor, http.StatusBadRequest, "bad_parameter"},
	{ledger.ErrBadLimit, http.StatusBadRequest, "bad_parameter"},
	{ledger.ErrBadFilter, http.StatusBadRequest, "bad_parameter"},
	{errTooManyStreams, http.StatusServiceUnavailable, "too_many_streams"},
	{errVerificationOff, http.StatusConflict, "verification_off"},
}

func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code := http.StatusInternalServerError, "internal"
	var bp *badParam
	if errors.As(err, &bp) {
		status, code = http.StatusBadRequest, "bad_parameter"
	}
	var bb *errBadBody
	if errors.As(err, &bb) {
		status, code = http.StatusBadRequest, "bad_request"
	}
	var up *unknownParam
	if errors.As(err, &up) {
		status, code = http.StatusBadRequest, "unknown_parameter"
	}
	for _, e := range errorAnswers {
		if errors.Is(err, e.err) {
			status, code = e.status, e.code
			break
		}
	}
	msg := err.Error()
	if code == "internal" {
		path := r.URL.Path
		if r.Pattern == "DELETE /v1/users/{userId}" {
			path = "/v1/users/{userId}" // an erasure's log lines must not name the person
		}
		a.opts.Logger.Error("query failed", "path", path, "err", err)
		status, code, msg = http.StatusServiceUnavailable, "unavailable", "the store could not answer; retry"
	}
	writeJSON(w, status, errorBody(code, msg))
}

// errorBody is the API's one error shape: {"error":{"code","message"}}.
func errorBody(code, msg string) any {
	return map[string]any{"error": map[string]string{"code": code, "message": msg}}
}

type handler func(w http.ResponseWriter, r *http.Request) error

// guard applies the access rule (which paces wrong tokens and, without a
// token, refuses host names that are not loopback ones), refuses query
// parameters other than those the endpoint takes, and turns a handler's
// error into its answer.
func (a *API) guard(h handler, takes ...string) http.Handler {
	return a.serve(h, true, takes)
}

// open is guard without the access rule: for what anyone may read.
func (a *API) open(h handler, takes ...string) http.Handler {
	return a.serve(h, false, takes)
}

func (a *API) serve(h handler, guarded bool, takes []string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if guarded {
			if err := a.access.Check(r); err != nil {
				if errors.Is(err, access.ErrUnauthorized) {
					w.Header().Set("WWW-Authenticate", `Bearer realm="recledger"`)
				}
				if wait := access.RetryAfter(err); wait > 0 { // a wrong token past its source's budget
					w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
				}
				a.writeError(w, r, err)
				return
			}
		}
		if err := checkQuery(r.URL.Query(), takes); err != nil {
			a.writeError(w, r, err)
			return
		}
		if err := h(w, r); err != nil {
			if r.Context().Err() != nil {
				return // the client went away; nobody reads the answer
			}
			a.writeError(w, r, err)
		}
	})
}

// maxCause bounds the error /readyz shows.
const maxCause = 512

// readyz answers whether the store can be written; with showCause, a
// failure's answer carries the store's error.
func (a *API) readyz(showCause bool) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := a.store.Ping(ctx); err != nil {
			a.opts.Logger.Warn("not ready: the store cannot be written", "err", err)
			body := map[string]string{"status": "store not writable"}
			if showCause {
				// The cause tells an operator what to fix (a full disk, an
				// unreachable database); this /readyz is behind the API's
				// access rule.
				cause := err.Error()
				if len(cause) > maxCause {
					cause = cause[:maxCause] + "..."
				}
				body["cause"] = cause
			}
			writeJSON(w, http.StatusServiceUnavailable, body)
			return nil
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		return nil
	}
}

// RecordingList is the answer of GET /v1/recordings.
type RecordingList struct {
	Items      []ledger.Recording `json:"items"`
	NextCursor string             `json:"nextCursor,omitempty"`
}

func (a *API) listRecordings(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := ledger.RecordingFilter{Cursor: q.Get("cursor")}
	for _, p := range []struct {
		name string
		dst  *string
	}{{"appKey", &f.AppKey}, {"roomId", &f.RoomID}, {"sessionId", &f.SessionID}, {"userId", &f.UserID},
		{"recordIdPrefix", &f.RecordIDPrefix}} {
		v, err := idFilter(q, p.name)
		if err != nil {
			return err
		}
		*p.dst = v
	}
	if s := q.Get("status"); s != "" {
		switch st := ledger.Status(s); st {
		case ledger.StatusRecording, ledger.StatusEnded, ledger.StatusComplete, ledger.StatusFailed:
			f.Status = st
		default:
			return &badParam{"status", "want recording, ended, complete or failed"}
		}
	}
	if s := q.Get("uploadState"); s != "" {
		switch us := ledger.UploadState(s); us {
		case ledger.UploadNone, ledger.UploadPending, ledger.UploadPartial, ledger.UploadComplete, ledger.UploadFailed, ledger.UploadOverdue:
			f.UploadState, f.Now = us, a.opts.Now()
		default:
			return &badParam{"uploadState", "want none, pending, partial, complete, failed or overdue"}
		}
	}
	var err error
	if f.Verification, err = verificationParam(r, "verification"); err != nil {
		return err
	}
	if f.Limit, err = intParam(q.Get("limit"), "limit", ledger.DefaultPage, 1, ledger.MaxPage); err != nil {
		return err
	}
	if f.Since, f.Until, err = timeRange(q); err != nil {
		return err
	}
	if v := q.Get("mode"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || !rc.Mode(n).Known() {
			return &badParam{"mode", "want 0 to 6"}
		}
		m := rc.Mode(n)
		f.Mode = &m
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	page, err := a.store.ListRecordings(ctx, f)
	if errors.Is(err, ledger.ErrBadCursor) {
		return &badParam{"cursor", "not one this server issued"}
	}
	if err != nil {
		return err
	}
	now := a.opts.Now()
	out := RecordingList{Items: make([]ledger.Recording, 0, len(page.Items)), NextCursor: page.Next}
	for _, st := range page.Items {
		rec := st.View(now)
		rec.Files = nil // the list view; the detail has them
		out.Items = append(out.Items, rec)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) getRecording(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "recordId")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	st, err := a.store.Recording(ctx, id)
	if err != nil {
		return err
	}
	events, err := a.store.RecordingEvents(ctx, id)
	if err != nil {
		return err
	}
	checks, err := a.fileVerifications(ctx, id)
	if err != nil {
		return err
	}
	rec := RecordingDetail{Recording: st.View(a.opts.Now()), Events: events}
	rec.Files = rec.Recording.Files
	if rec.Files == nil {
		rec.Files = []ledger.File{}
	}
	withVerification(rec.Files, checks)
	if rec.Events == nil {
		rec.Events = []ledger.Event{}
	}
	writeJSON(w, http.StatusOK, rec)
	return nil
}

// RecordingDetail is the answer of GET /v1/recordings/{recordId}: the
// recording with its files and events, both always present.
type RecordingDetail struct {
	ledger.Recording
	Files  []ledger.File  `json:"files"`
	Events []ledger.Event `json:"events"`
}

// EventList is the answer of GET /v1/events: Last is the seq to pass as
// after for the next page (the same as after when there is nothing new);
// More says the log held events past this page when it was read.
type EventList struct {
	Items []ledger.Event `json:"items"`
	Last  int64          `json:"last"`
	More  bool           `json:"more"`
}

// eventsPageBytes bounds a page of GET /v1/events, bodies and other
// fields (eventSize), beside its limit in rows; a page holds at least one
// event, however large.
const eventsPageBytes = 4 << 20

func (a *API) listEvents(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	after, err := intParam(q.Get("after"), "after", 0, 0, 1<<62)
	if err != nil {
		return err
	}
	limit, err := intParam(q.Get("limit"), "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	tail, err := intParam(q.Get("tail"), "tail", 0, 0, 1000)
	if err != nil {
		return err
	}
	var (
		events []ledger.Event
		more   bool
	)
	switch {
	case q.Has("tail") && tail == 0: // nothing, but where the log ends, to follow from there
		latest, err := a.store.LatestEvents(r.Context(), 1)
		if err != nil {
			return err
		}
		out := EventList{Items: []ledger.Event{}}
		if len(latest) > 0 {
			out.Last = latest[0].Seq
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	case tail > 0: // the newest events, as `events tail` shows them
		events, err = a.tailPage(r.Context(), tail, eventsPageBytes)
	default:
		events, more, err = a.eventPage(r.Context(), int64(after), limit, eventsPageBytes)
	}
	if err != nil {
		return err
	}
	out := EventList{Items: events, Last: int64(after), More: more}
	if out.Items == nil {
		out.Items = []ledger.Event{}
	}
	if len(events) > 0 {
		out.Last = events[len(events)-1].Seq
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// QuarantineList is the answer of GET /v1/quarantine, newest first.
type QuarantineList struct {
	Items      []ledger.Rejection `json:"items"`
	NextCursor string             `json:"nextCursor,omitempty"`
}

func (a *API) listQuarantine(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, err := intParam(q.Get("limit"), "limit", ledger.DefaultPage, 1, ledger.MaxPage)
	if err != nil {
		return err
	}
	before, err := intParam(q.Get("cursor"), "cursor", 0, 0, 1<<62)
	if err != nil {
		return err
	}
	items, err := a.store.QuarantineList(r.Context(), int64(before), limit+1)
	if err != nil {
		return err
	}
	out := QuarantineList{Items: items}
	if len(items) > limit {
		out.Items = items[:limit]
		out.NextCursor = strconv.FormatInt(items[limit-1].ID, 10)
	}
	if out.Items == nil {
		out.Items = []ledger.Rejection{}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// intParam reads an integer parameter within [lo, hi], def when absent.
func intParam(v, name string, def, lo, hi int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, &badParam{name, "want an integer from " + strconv.Itoa(lo) + " to " + strconv.Itoa(hi)}
	}
	return n, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // bodies and URLs as received: & stays &
	enc.Encode(v)            // the client has gone if this fails
}

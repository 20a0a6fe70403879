// Package ingest is recledger's callback endpoint, POST
// /v1/callbacks/recording: it checks size and content type, verifies RC's
// signature, parses the body, appends it to the durable log and only then
// answers 200. Everything it refuses is kept in the quarantine.
package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// Store is what ingest needs of the ledger's store.
type Store interface {
	Append(ctx context.Context, in ledger.Incoming) (ledger.Appended, error)
	Quarantine(ctx context.Context, r ledger.Rejection) error
}

// Options configure a Handler.
type Options struct {
	// Verifier checks signatures; required.
	Verifier *rc.Verifier
	// InsecureSkipSignature accepts callbacks that carry no signature at all
	// (development only); signed ones are still verified.
	InsecureSkipSignature bool
	// MaxBodyBytes bounds a body (rc.DefaultMaxBodyBytes when 0).
	MaxBodyBytes int64
	Now          func() time.Time
	Logger       *slog.Logger
	// OnAnswer, when set, is told of every answer: the callback's type name
	// ("" when the request was refused before parsing), the outcome
	// ("stored", "duplicate", "unavailable" or the refusal's error code) and
	// the time from arrival to answer (for metrics).
	OnAnswer func(typ, outcome string, took time.Duration)
	// OnStored, when set, is told of every callback stored (a redelivery
	// too), with its arrival time on the server's clock: the callback lag
	// metric compares it with the callback's own timestamp.
	OnStored func(cb *rc.Callback, receivedAt time.Time)
	// Remote names a request's sender in the log and the quarantine;
	// r.RemoteAddr when nil. serve gives the client a trusted proxy names
	// (access.Proxies.Client), so what is kept is the real client's.
	Remote func(r *http.Request) string
}

// Handler serves the callback endpoint.
type Handler struct {
	store   Store
	opts    Options
	refused *refusalLog
}

// statusRecorder carries what OnAnswer reports through the handler.
type statusRecorder struct {
	http.ResponseWriter
	typ, outcome string
}

// New returns a Handler appending to store.
func New(store Store, o Options) (*Handler, error) {
	if o.Verifier == nil {
		return nil, errors.New("ingest: a Verifier is required")
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = rc.DefaultMaxBodyBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Remote == nil {
		o.Remote = func(r *http.Request) string { return r.RemoteAddr }
	}
	return &Handler{store: store, opts: o, refused: &refusalLog{logger: o.Logger}}, nil
}

// Answer is the JSON body of a 200.
type Answer struct {
	Status string `json:"status"`
	Seq    int64  `json:"seq,omitempty"` // the feed seq, where the store knows it at once (SQLite)
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, errorBody("method_not_allowed", "use POST"))
		return
	}
	received := h.opts.Now()
	if h.opts.OnAnswer != nil {
		rec := &statusRecorder{ResponseWriter: w}
		w = rec
		defer func() { h.opts.OnAnswer(rec.typ, rec.outcome, time.Since(received)) }()
	}
	body, err := rc.ReadBody(r, h.opts.MaxBodyBytes)
	if err != nil {
		h.refuse(w, r, body, err)
		return
	}
	unsigned := false
	if _, err := h.opts.Verifier.Verify(r, body); err != nil {
		switch {
		case h.opts.InsecureSkipSignature && errors.Is(err, rc.ErrMissingSignature):
			unsigned = true
		case rc.StatusCode(err) == http.StatusServiceUnavailable: // the replay memory failed
			h.unavailable(w, r, err)
			return
		default:
			h.refuse(w, r, body, err)
			return
		}
	}
	cb, err := rc.Parse(body)
	if err != nil {
		h.refuse(w, r, body, err)
		return
	}
	if unsigned {
		h.opts.Logger.Warn("INSECURE: accepted an unsigned callback (--insecure-skip-signature)",
			"recordId", clip(cb.RecordID), "type", cb.Type.String(), "remote", clip(h.opts.Remote(r)))
	}
	a, err := h.store.Append(r.Context(), ledger.Incoming{Callback: cb, ReceivedAt: received})
	if errors.Is(err, ledger.ErrUnstorable) { // a retry would fail alike: 400, not 503
		h.refuse(w, r, body, err)
		return
	}
	if se, ok := errors.AsType[*rc.SignatureError](err); ok && errors.Is(se, rc.ErrReplayed) {
		// The store found the signature remembered with another body (by
		// another instance, which the verifier's memory had not heard of
		// yet): the verifier's refusal, answered as the verifier would.
		h.refuse(w, r, body, se)
		return
	}
	if err != nil {
		h.unavailable(w, r, err)
		return
	}
	if h.opts.Logger.Enabled(r.Context(), slog.LevelDebug) { // the arguments cost even when not logged
		h.opts.Logger.Debug("callback stored", "recordId", clip(cb.RecordID), "type", cb.Type.String(),
			"seq", a.Seq, "warnings", len(cb.Warnings))
	}
	if rec, ok := w.(*statusRecorder); ok {
		rec.typ, rec.outcome = cb.Type.String(), "stored"
	}
	if h.opts.OnStored != nil {
		h.opts.OnStored(&cb, received)
	}
	writeJSON(w, http.StatusOK, Answer{Status: "ok", Seq: a.Seq})
}

// unavailable answers 503 so RC delivers the callback again; the cause goes
// to the log, not to the sender.
func (h *Handler) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	if rec, ok := w.(*statusRecorder); ok {
		rec.outcome = "unavailable"
	}
	h.opts.Logger.Error("callback not stored; answered 503", "err", clip(err.Error()), "remote", clip(h.opts.Remote(r)))
	w.Header().Set("Retry-After", "1")
	writeJSON(w, http.StatusServiceUnavailable, errorBody("store_unavailable", "the callback could not be stored durably; retry"))
}

// refuse answers a 4xx and keeps the request in the quarantine.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, body []byte, err error) {
	status, code, msg := rc.StatusCode(err), rc.ErrorCode(err), clip(err.Error())
	switch {
	case errors.Is(err, ledger.ErrUnstorable):
		status, code, msg = http.StatusBadRequest, "unstorable_callback", unstorableReason(err)
	case status == http.StatusServiceUnavailable: // reading the body failed: the client went away
		status, code = http.StatusBadRequest, "unreadable_body"
	}
	if rec, ok := w.(*statusRecorder); ok {
		rec.outcome = code
	}
	size := int64(len(body))
	if status == http.StatusUnsupportedMediaType || status == http.StatusRequestEntityTooLarge {
		// Refused on its headers (or past the limit): answered at once,
		// the rest of the body unread. The connection closes after the
		// answer, or net/http would read what is left (up to 256 KiB, a
		// client that never sends it holding the answer back) to reuse it.
		w.Header().Set("Connection", "close")
		if body == nil {
			size = max(r.ContentLength, 0) // what it said it would send
		}
	}
	claimed := rc.ClaimedAppKey(r, body)
	rej := ledger.Rejection{
		At:       h.opts.Now().UnixMilli(),
		Status:   status,
		Reason:   code,
		AppKey:   claimed, // bounded and cleaned by the store, as the log line's below
		Message:  msg,
		Remote:   h.opts.Remote(r), // bounded and cleaned by the store
		Method:   r.Method,
		Path:     r.URL.Path,
		Header:   MaskHeader(r.Header),
		Body:     body,
		BodySize: size,
	}
	if qerr := h.store.Quarantine(r.Context(), rej); qerr != nil {
		h.opts.Logger.Error("quarantine failed", "err", clip(qerr.Error()))
	}
	appKey := ledger.Printable(claimed, ledger.MaxRejectionShort) // the sender chose it
	if h.refused.allow(h.opts.Now(), code, appKey) {
		h.opts.Logger.Warn("callback refused", "status", status, "reason", code, "appKey", appKey, "err", msg, "remote", clip(h.opts.Remote(r)))
	}
	writeJSON(w, status, errorBody(code, msg))
}

// maxEcho bounds each value a log line or an error message echoes of a
// request: a field, a header or an error built from them may be a megabyte
// an attacker chose.
const maxEcho = 200

func clip(s string) string { return ledger.Clip(s, maxEcho) }

// unstorableReason says why a callback cannot be stored: the field and
// the rule it breaks, or, for a value the database refused, its error
// (capped).
func unstorableReason(err error) string {
	if fe, ok := errors.AsType[*ledger.FieldError](err); ok {
		return fe.Error()
	}
	if re, ok := errors.AsType[*ledger.RefusedError](err); ok {
		return "unstorable callback: the store refused it: " + clip(re.Err.Error())
	}
	return clip(err.Error())
}

// secretHeaders are masked in the quarantine: signatures (a signature with
// its nonce and timestamp is a credential for its body within the
// tolerance) and the usual credentials.
var secretHeaders = map[string]bool{
	"Signature": true, "Rc-Signature": true, "Authorization": true, "Cookie": true, "Proxy-Authorization": true,
}

// MaskHeader returns a copy of h with secret values replaced by "***".
func MaskHeader(h http.Header) http.Header {
	out := make(http.Header, len(h))
	for k, vs := range h {
		if secretHeaders[http.CanonicalHeaderKey(k)] {
			masked := make([]string, len(vs))
			for i := range masked {
				masked[i] = "***"
			}
			out[k] = masked
			continue
		}
		out[k] = append([]string(nil), vs...)
	}
	return out
}

type errBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func errorBody(code, msg string) errBody {
	var b errBody
	b.Error.Code, b.Error.Message = code, strings.TrimPrefix(msg, "rc: ")
	return b
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v) // the sender has gone if this fails
}

package rc

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// Errors ReadBody returns.
var (
	ErrBodyTooLarge         = errors.New("body too large")
	ErrUnsupportedMediaType = errors.New("content type is not JSON")
)

// DefaultMaxBodyBytes bounds a callback body. RC's callbacks are well under
// 1 KiB; the limit only stops abuse.
const DefaultMaxBodyBytes = 1 << 20

// ReadBody reads a callback body of at most limit bytes (DefaultMaxBodyBytes
// when limit <= 0). It refuses a declared content type that is not JSON
// (application/json, text/json or any +json) with ErrUnsupportedMediaType;
// a request without one is read, since the body is judged by Parse anyway.
// With ErrBodyTooLarge it returns what it read (limit+1 bytes) when the body
// was longer than its declared length, nothing when the declared length was
// already too long.
func ReadBody(r *http.Request, limit int64) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !(mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")) {
			return nil, errorWith(ErrUnsupportedMediaType, "got "+quoteShort(ct))
		}
	}
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	if r.ContentLength > limit {
		return nil, errorWith(ErrBodyTooLarge, "limit "+strconv.FormatInt(limit, 10)+" bytes")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > limit {
		return body, errorWith(ErrBodyTooLarge, "limit "+strconv.FormatInt(limit, 10)+" bytes")
	}
	return body, nil
}

type detailError struct {
	err    error
	detail string
}

func (e *detailError) Error() string { return "rc: " + e.err.Error() + ": " + e.detail }
func (e *detailError) Unwrap() error { return e.err }

func errorWith(err error, detail string) error { return &detailError{err: err, detail: detail} }

// The HTTP answer to each error of this package, in one place.
var errorAnswers = []struct {
	err    error
	status int
	code   string
}{
	{ErrNotObject, http.StatusBadRequest, "invalid_json"},
	{ErrMissingField, http.StatusBadRequest, "missing_field"},
	{ErrInvalidField, http.StatusBadRequest, "invalid_field"},
	{ErrMissingSignature, http.StatusUnauthorized, "missing_signature"},
	{ErrMalformedSignature, http.StatusUnauthorized, "malformed_signature"},
	{ErrUnknownApp, http.StatusUnauthorized, "unknown_app"},
	{ErrAppKeyMismatch, http.StatusUnauthorized, "app_key_mismatch"},
	{ErrBadSignature, http.StatusUnauthorized, "bad_signature"},
	{ErrExpired, http.StatusUnauthorized, "expired_signature"},
	{ErrReplayed, http.StatusUnauthorized, "replayed_signature"},
	{ErrBodyTooLarge, http.StatusRequestEntityTooLarge, "body_too_large"},
	{ErrUnsupportedMediaType, http.StatusUnsupportedMediaType, "unsupported_media_type"},
}

// StatusCode returns the HTTP status that answers err: 400, 401, 413 or 415
// for this package's errors, 503 for any other, since an error that is not
// the request's fault (a store or replay memory that failed) should make RC
// send it again.
func StatusCode(err error) int {
	for _, a := range errorAnswers {
		if errors.Is(err, a.err) {
			return a.status
		}
	}
	return http.StatusServiceUnavailable
}

// ErrorCode returns a stable machine-readable code for err, such as
// "bad_signature" or "missing_field"; "unavailable" for errors not of this
// package.
func ErrorCode(err error) string {
	for _, a := range errorAnswers {
		if errors.Is(err, a.err) {
			return a.code
		}
	}
	return "unavailable"
}

// WriteError answers err as JSON {"error":{"code":..., "message":...}} with
// StatusCode(err). The message of an error not of this package is not sent,
// since it may describe the receiver's internals.
func WriteError(w http.ResponseWriter, err error) {
	status := StatusCode(err)
	msg := err.Error()
	if status == http.StatusServiceUnavailable {
		msg = "callback not stored; retry later"
	}
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": ErrorCode(err), "message": msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v) // the client has gone if this fails
}

// Handler returns a receiver for RC's callbacks. For each POST it reads the
// body (ReadBody, 1 MiB limit), verifies the signature (v.Verify), parses the
// body (Parse) and calls fn. It answers 200 when fn returns nil and 503 when
// it returns an error, so RC delivers the callback again; fn must therefore be
// idempotent (Callback.Key identifies a callback). Refused requests get 400,
// 401, 405, 413 or 415 with a JSON error body. v must not be nil.
func Handler(v *Verifier, fn func(ctx context.Context, cb Callback) error) http.Handler {
	if v == nil {
		panic("rc: Handler needs a Verifier")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeJSON(w, http.StatusMethodNotAllowed, map[string]any{
				"error": map[string]string{"code": "method_not_allowed", "message": "use POST"},
			})
			return
		}
		body, err := ReadBody(r, DefaultMaxBodyBytes)
		if err != nil {
			WriteError(w, err)
			return
		}
		if _, err := v.Verify(r, body); err != nil {
			WriteError(w, err)
			return
		}
		cb, err := Parse(body)
		if err != nil {
			WriteError(w, err)
			return
		}
		if err := fn(r.Context(), cb); err != nil {
			WriteError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

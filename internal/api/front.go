package api

import (
	"net/http"
	"slices"
	"strings"
	"unicode"

	"github.com/klauspost/compress/gzhttp"
)

// PageFunc answers a request for a page (not the API) that no route
// serves: status is 404 or 405 and message says why, for a person.
type PageFunc func(w http.ResponseWriter, r *http.Request, status int, message string)

// apiPaths are where clients expect JSON, errors included: the query API
// and the operational endpoints. Everything else is the dashboard's.
var apiPaths = []string{"/v1", "/healthz", "/readyz", "/metrics"}

// isAPIPath says whether path is one of apiPaths or below one.
func isAPIPath(path string) bool {
	for _, p := range apiPaths {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

// Front is the server's outermost handler. It serves mux, compressing
// answers (gzip, or zstd where the client prefers it) except those of the
// uncompressed patterns (the callback endpoint: RC's answers are tiny and
// ingest should stay cheap) and event streams, which must reach the
// reader as they are written. What mux has no route for (its own 404 and
// 405, which are plain text) it answers in the shape the path's client
// reads: the API's JSON error under apiPaths, page's HTML elsewhere. A
// 405 keeps mux's Allow header.
func Front(mux *http.ServeMux, page PageFunc, uncompressed ...string) http.Handler {
	routed, unrouted := compress(mux), compress(answerUnrouted(mux, page))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := mux.Handler(r)
		switch {
		case pattern == "":
			unrouted.ServeHTTP(w, r)
		case slices.Contains(uncompressed, pattern):
			mux.ServeHTTP(w, r)
		default:
			routed.ServeHTTP(w, r)
		}
	})
}

// compress wraps a handler with gzhttp's defaults (which skip answers
// already compressed, such as media types, and short ones), event streams
// excepted: gzhttp holds a short write until it has enough to compress.
var compress = func() func(http.Handler) http.HandlerFunc {
	wrap, err := gzhttp.NewWrapper(gzhttp.ContentTypeFilter(func(ct string) bool {
		return !strings.HasPrefix(strings.TrimSpace(strings.ToLower(ct)), "text/event-stream") && gzhttp.DefaultContentTypeFilter(ct)
	}))
	if err != nil {
		panic(err) // the options are constant: this is a programming error
	}
	return wrap
}()

// answerUnrouted answers a request mux has no pattern for; see Front.
func answerUnrouted(mux *http.ServeMux, page PageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, _ := mux.Handler(r)
		// mux's 404, its 405, or its redirect to a cleaned path: run it
		// into a recorder to tell which.
		rec := &statusRecorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		status := rec.status
		if status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
			for k, v := range rec.header {
				w.Header()[k] = v
			}
			w.WriteHeader(status)
			w.Write(rec.body)
			return
		}
		path := shownPath(r.URL.Path)
		msg := "no such path: " + path
		if status == http.StatusMethodNotAllowed {
			allow := rec.header.Get("Allow")
			w.Header().Set("Allow", allow)
			msg = r.Method + " is not allowed on " + path + "; allowed: " + allow
		} else if trimmed, ok := withoutSlash(mux, r); ok {
			msg += "; did you mean " + trimmed + "?"
		}
		if !isAPIPath(r.URL.Path) && page != nil {
			page(w, r, status, msg)
			return
		}
		code := "not_found"
		if status == http.StatusMethodNotAllowed {
			code = "method_not_allowed"
		}
		writeJSON(w, status, errorBody(code, msg))
	})
}

// withoutSlash returns r's path without its trailing slash when mux
// routes that path: the likeliest meaning of a typed URL that ends in one.
// shownPath is a request's path as an error may repeat it: at most
// maxShownPath bytes of valid UTF-8 with control characters replaced, so a
// 60 KB or NUL-laden path is named, not echoed.
func shownPath(p string) string {
	if len(p) > maxShownPath {
		p = p[:maxShownPath] + "..."
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '\uFFFD'
		}
		return r
	}, strings.ToValidUTF8(p, "\uFFFD"))
}

const maxShownPath = 256

func withoutSlash(mux *http.ServeMux, r *http.Request) (string, bool) {
	p := r.URL.Path
	if len(p) < 2 || !strings.HasSuffix(p, "/") {
		return "", false
	}
	trimmed := strings.TrimRight(p, "/")
	if trimmed == "" {
		return "", false
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path, r2.URL.RawPath = trimmed, ""
	if _, pattern := mux.Handler(r2); pattern == "" {
		return "", false
	}
	return trimmed, true
}

// statusRecorder keeps what mux's own handlers answer (a status line, a
// header or two, a short body), so Front can answer in its own shape.
type statusRecorder struct {
	header http.Header
	status int
	body   []byte
}

func (s *statusRecorder) Header() http.Header { return s.header }

func (s *statusRecorder) WriteHeader(status int) {
	if s.status == 0 {
		s.status = status
	}
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	s.body = append(s.body, b...)
	return len(b), nil
}

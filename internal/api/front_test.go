package api_test

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/api"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/ledger/ledgertest"
	"github.com/recledger/recledger/rc"
)

// TestFrontAnswersUnroutedInOneShape: what the mux has no route for is
// the API's JSON error under the API's paths and the page elsewhere, with
// the status (and a 405's Allow) the mux meant; routed paths and the
// mux's redirects to cleaned paths pass unchanged.
func TestFrontAnswersUnroutedInOneShape(t *testing.T) {
	mux := http.NewServeMux()
	api.New(fill(t), api.Options{}).Register(mux)
	mux.HandleFunc("GET /recordings", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "the recordings page") })
	page := func(w http.ResponseWriter, _ *http.Request, status int, message string) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		fmt.Fprintf(w, "<p>%s</p>", message)
	}
	srv := httptest.NewServer(api.Front(mux, page))
	defer srv.Close()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	for _, c := range []struct {
		method, path string
		status       int // 3: any redirect
		contentType  string
		code         string // the JSON error's code
		allow        string
		message      string // part of the message
	}{
		{"GET", "/v1/recordings", 200, "application/json", "", "", ""},
		{"GET", "/v1/nope", 404, "application/json", "not_found", "", "no such path: /v1/nope"},
		{"GET", "/v1", 404, "application/json", "not_found", "", "no such path: /v1"},
		{"GET", "/v1/recordings/", 404, "application/json", "not_found", "", "did you mean /v1/recordings?"},
		{"GET", "/v1/events/stream/", 404, "application/json", "not_found", "", "did you mean /v1/events/stream?"},
		{"GET", "/healthz/", 404, "application/json", "not_found", "", "did you mean /healthz?"},
		{"POST", "/v1/recordings", 405, "application/json", "method_not_allowed", "GET, HEAD", "POST is not allowed on /v1/recordings"},
		{"DELETE", "/readyz", 405, "application/json", "method_not_allowed", "GET, HEAD", "allowed: GET, HEAD"},
		{"GET", "/nope", 404, "text/html; charset=utf-8", "", "", "no such path: /nope"},
		{"GET", "/recordings/", 404, "text/html; charset=utf-8", "", "", "did you mean /recordings?"},
		{"POST", "/recordings", 405, "text/html; charset=utf-8", "", "GET, HEAD", "POST is not allowed on /recordings"},
		{"GET", "/v1//recordings", 3, "", "", "", ""}, // the mux's own redirect (3xx) to the clean path
		// Hostile paths are named, not echoed: a control character is
		// replaced, a long path cut.
		{"GET", "/v1/a%00b%1b%5B2J", 404, "application/json", "not_found", "", "no such path: /v1/a\ufffdb\ufffd[2J"},
		{"GET", "/v1/" + strings.Repeat("n", 60<<10), 404, "application/json", "not_found", "", "no such path: /v1/nnnn"},
		{"GET", "/" + strings.Repeat("n", 60<<10), 404, "text/html; charset=utf-8", "", "", "no such path: /nnnn"},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if status := resp.StatusCode; status != c.status && status/100 != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			if c.status == 3 {
				if loc := resp.Header.Get("Location"); loc != "/v1/recordings" {
					t.Errorf("Location %q, want /v1/recordings", loc)
				}
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != c.contentType {
				t.Errorf("Content-Type %q, want %q", ct, c.contentType)
			}
			if got := resp.Header.Get("Allow"); got != c.allow {
				t.Errorf("Allow %q, want %q", got, c.allow)
			}
			if !strings.Contains(string(body), c.message) {
				t.Errorf("body %.300s, want it to say %q", body, c.message)
			}
			if len(body) > 2048 || strings.ContainsAny(string(body), "\x00\x1b") {
				t.Errorf("body of %d bytes echoes the path: %.300q", len(body), body)
			}
			if c.code == "" {
				return
			}
			var e apiError
			if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != c.code {
				t.Errorf("body %s: %v, want code %s", body, err, c.code)
			}
		})
	}
}

// TestFrontCompresses: JSON and pages are compressed for a client that
// accepts gzip; the uncompressed patterns (the callback endpoint) and
// the event stream are not, and the stream still delivers live events as
// they are logged.
func TestFrontCompresses(t *testing.T) {
	s := fill(t)
	mux := http.NewServeMux()
	api.New(s, api.Options{StreamPoll: 10 * time.Millisecond}).Register(mux)
	big := strings.Repeat("<p>a page long enough to be worth compressing</p>\n", 100)
	mux.HandleFunc("GET /page", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, big)
	})
	mux.HandleFunc("/v1/callbacks/recording", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"pad":"`+strings.Repeat("x", 4096)+`"}`)
	})
	srv := httptest.NewServer(api.Front(mux, nil, "/v1/callbacks/recording"))
	defer srv.Close()
	// A client that asks for gzip and reads the answer as sent.
	raw := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	do := func(method, path, acceptEncoding string) *http.Response {
		req, _ := http.NewRequestWithContext(ctx, method, srv.URL+path, nil)
		if acceptEncoding != "" {
			req.Header.Set("Accept-Encoding", acceptEncoding)
		}
		resp, err := raw.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for _, c := range []struct {
		method, path, accept, encoding, contains string
	}{
		{"GET", "/v1/events?after=0", "gzip", "gzip", `"seq":8`},
		{"GET", "/page", "gzip", "gzip", "worth compressing"},
		{"GET", "/page", "", "", "worth compressing"},
		{"GET", "/v1/nope?" + strings.Repeat("x", 2000), "gzip", "", "no such path"}, // short: not worth it
		{"POST", "/v1/callbacks/recording", "gzip", "", `"pad"`},
	} {
		resp := do(c.method, c.path, c.accept)
		var body io.Reader = resp.Body
		if got := resp.Header.Get("Content-Encoding"); got != c.encoding {
			t.Errorf("%s %s: Content-Encoding %q, want %q", c.method, c.path, got, c.encoding)
		} else if got == "gzip" {
			zr, err := gzip.NewReader(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			body = zr
		}
		b, err := io.ReadAll(body)
		resp.Body.Close()
		if err != nil || !strings.Contains(string(b), c.contains) {
			t.Errorf("%s %s: %v, body lacks %q", c.method, c.path, err, c.contains)
		}
	}

	resp := do("GET", "/v1/events/stream?from=0", "gzip")
	defer resp.Body.Close()
	if ce, ct := resp.Header.Get("Content-Encoding"), resp.Header.Get("Content-Type"); ce != "" || ct != "text/event-stream" {
		t.Fatalf("stream: Content-Encoding %q, Content-Type %q", ce, ct)
	}
	r := bufio.NewReader(resp.Body)
	if got := eventIDs(t, r, 8); fmt.Sprint(got) != "[1 2 3 4 5 6 7 8]" {
		t.Fatalf("replayed %v", got)
	}
	if _, err := s.Append(ctx, ledger.Incoming{Callback: ledgertest.Callback(t, "rec-new", rc.TypeStart, 3*time.Hour, "", 200), ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if got := eventIDs(t, r, 1); fmt.Sprint(got) != "[9]" {
		t.Errorf("live event %v, want [9]", got)
	}
}

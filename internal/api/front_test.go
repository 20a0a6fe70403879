package api_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/recledger/recledger/internal/api"
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
				t.Errorf("body %s, want it to say %q", body, c.message)
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

package dashboard_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/recledger/recledger/internal/access"
	"github.com/recledger/recledger/internal/api"
	"github.com/recledger/recledger/internal/dashboard"
)

// TestErrorPageForUnroutedPaths: behind a token and not logged in, a path
// no route serves gets the dashboard's HTML page (the mux's status, a
// 405's Allow), styled by the site's stylesheet, showing the path as text
// and no navigation or logout; API paths keep their JSON.
func TestErrorPageForUnroutedPaths(t *testing.T) {
	s := fill(t, now)
	rule := access.New("s3cret-token-long-enough", nil)
	mux := http.NewServeMux()
	api.New(s, api.Options{Access: rule}).Register(mux)
	d, err := dashboard.New(s, dashboard.Options{Access: rule})
	if err != nil {
		t.Fatal(err)
	}
	d.Register(mux)
	srv := httptest.NewServer(api.Front(mux, d.ErrorPage))
	defer srv.Close()

	for _, c := range []struct {
		method, path string
		status       int
		allow, says  string
	}{
		{"GET", "/nope/%3Cscript%3Ealert(1)%3C/script%3E", 404, "", "no such path: /nope/<script>alert(1)</script>"},
		{"GET", "/quarantine/", 404, "", "did you mean /quarantine?"},
		{"POST", "/recordings", 405, "GET, HEAD", "POST is not allowed on /recordings"},
		{"PUT", "/", 405, "GET, HEAD", "PUT is not allowed on /"},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != c.status || resp.Header.Get("Allow") != c.allow {
				t.Errorf("%d Allow %q, want %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"), c.status, c.allow)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
				t.Errorf("no content policy: %q", csp)
			}
			_, doc, raw := fetchBody(t, resp)
			if strings.Contains(raw, "<script>alert") {
				t.Errorf("the path is not escaped:\n%s", raw)
			}
			if h1 := find(doc, tag("h1")); len(h1) != 1 || text(h1[0]) != http.StatusText(c.status) {
				t.Errorf("heading: %s", raw)
			}
			if msg := find(doc, hasAttr("class", "message")); len(msg) != 1 || !strings.Contains(text(msg[0]), c.says) {
				t.Errorf("message does not say %q:\n%s", c.says, raw)
			}
			if n := len(find(doc, tag("nav"))) + len(find(doc, tag("form"))) + len(find(doc, tag("script"))); n != 0 {
				t.Errorf("navigation, forms or scripts on the error page:\n%s", raw)
			}
			css := find(doc, hasAttr("rel", "stylesheet"))
			if len(css) != 1 {
				t.Fatalf("no stylesheet:\n%s", raw)
			}
			href, _ := attr(css[0], "href")
			if r, err := http.Get(srv.URL + href); err != nil || r.StatusCode != 200 || !strings.HasPrefix(href, "/static/app.") || !strings.HasSuffix(href, ".css") {
				t.Errorf("stylesheet %q: %v", href, err)
			} else {
				r.Body.Close()
			}
		})
	}

	resp, err := http.Get(srv.URL + "/v1/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("/v1/nope: %d %s, want the API's JSON 404", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// fetchBody reads and parses an answer's page.
func fetchBody(t *testing.T, resp *http.Response) (int, *html.Node, string) {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, doc, string(b)
}

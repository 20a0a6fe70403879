package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/rc"
)

// TestCallbackPathWithTrailingSlash: RC's console URL typed with a
// trailing slash still delivers: a signed callback to it is stored, and
// a GET there is the endpoint's own 405.
func TestCallbackPathWithTrailingSlash(t *testing.T) {
	srv := startServer(t, t.TempDir(), "--app", testApp+"="+testSecret)
	body, err := os.ReadFile(filepath.Join("..", "..", "rc", "testdata", "seed", "type1-start.json"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+srv.addr+"/v1/callbacks/recording/", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	s := rc.Signer{AppKey: testApp, Secret: testSecret}
	s.Apply(req, s.Sign())
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("signed callback to the slash URL: %d", resp.StatusCode)
	}
	resp, err = testClient.Get("http://" + srv.addr + "/v1/recordings/8329208b99410743dcfeb80548e2c0ec")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("the callback sent to the slash URL is not stored: %d", resp.StatusCode)
	}
	resp, err = testClient.Get("http://" + srv.addr + "/v1/callbacks/recording/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET on the slash URL: %d Allow %q, want 405 Allow POST", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// TestServerErrorShapes: the server as wired answers unknown API paths,
// wrong methods and trailing slashes with the API's JSON error, and
// dashboard paths with an HTML page, never Go's plain text.
func TestServerErrorShapes(t *testing.T) {
	srv := startServer(t, t.TempDir())
	for _, c := range []struct {
		method, path, contentType string
		status                    int
	}{
		{"GET", "/v1/nope", "application/json", 404},
		{"GET", "/v1/recordings/", "application/json", 404},
		{"DELETE", "/v1/events", "application/json", 405},
		{"POST", "/metrics", "application/json", 405},
		{"GET", "/nope", "text/html; charset=utf-8", 404},
		{"POST", "/quarantine", "text/html; charset=utf-8", 405},
	} {
		req, _ := http.NewRequest(c.method, "http://"+srv.addr+c.path, nil)
		resp, err := testClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || resp.Header.Get("Content-Type") != c.contentType {
			t.Errorf("%s %s: %d %q, want %d %q\n%s", c.method, c.path, resp.StatusCode, resp.Header.Get("Content-Type"), c.status, c.contentType, body)
			continue
		}
		if c.contentType == "application/json" {
			var e struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal(body, &e); err != nil || e.Error.Code == "" || !strings.Contains(e.Error.Message, c.path) {
				t.Errorf("%s %s: %s, want the error shape naming the path", c.method, c.path, body)
			}
		}
	}
}

// TestServerCompresses: the server as wired compresses the API's JSON and
// the dashboard's pages for a client that accepts gzip, while the event
// stream stays uncompressed and live.
func TestServerCompresses(t *testing.T) {
	srv := startServer(t, t.TempDir(), "--app", testApp+"="+testSecret)
	srv.postSeeds(t, "type1-start.json", "type2-segment.json", "type3-end.json", "type4-upload.json")
	raw := &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 20 * time.Second}
	get := func(path string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, "http://"+srv.addr+path, nil)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := raw.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for _, c := range []struct{ path, contentType, contains string }{
		{"/v1/events?after=0", "application/json", `"seq":4`},
		{"/recordings", "text/html; charset=utf-8", "8329208b99410743dcfeb80548e2c0ec"},
	} {
		resp := get(c.path)
		if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("Content-Type") != c.contentType {
			t.Errorf("%s: Content-Encoding %q Content-Type %q, want gzip %s", c.path, resp.Header.Get("Content-Encoding"), resp.Header.Get("Content-Type"), c.contentType)
			resp.Body.Close()
			continue
		}
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(zr)
		resp.Body.Close()
		if err != nil || !strings.Contains(string(b), c.contains) {
			t.Errorf("%s: %v, the body lacks %q", c.path, err, c.contains)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+srv.addr+"/v1/events/stream", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "" {
		t.Fatalf("the stream is compressed: %q", resp.Header.Get("Content-Encoding"))
	}
	r := bufio.NewReader(resp.Body)
	if _, err := r.ReadString('\n'); err != nil { // the stream is open, at the end of the log
		t.Fatal(err)
	}
	body := []byte(`{"type":1,"appKey":"` + testApp + `","recordId":"live-one","timestamp":1530027865231}`)
	if status, err := postSigned(srv.addr, body); err != nil || status != 200 {
		t.Fatalf("callback: %d %v", status, err)
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("the stream ended before the live event: %v", err)
		}
		if strings.HasPrefix(line, "data: ") {
			if !strings.Contains(line, "live-one") {
				t.Errorf("first streamed event %s, want the live one", line)
			}
			return
		}
	}
}

package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

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

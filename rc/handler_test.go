package rc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recledger/recledger/rc"
)

// TestHandler sends real HTTP requests to rc.Handler over loopback and checks
// each answer of CONTRACT.md's callback table.
func TestHandler(t *testing.T) {
	var (
		mu       sync.Mutex
		received []rc.Callback
		failNext bool
	)
	v := newTestVerifier(t, time.Now)
	srv := httptest.NewServer(rc.Handler(v, func(ctx context.Context, cb rc.Callback) error {
		mu.Lock()
		defer mu.Unlock()
		if failNext {
			failNext = false
			return errors.New("disk full at /var/lib/secret-path")
		}
		received = append(received, cb)
		return nil
	}))
	defer srv.Close()

	body := seedBody(t)
	signer := rc.Signer{AppKey: testApp, Secret: testSecret}
	send := func(method, contentType string, body []byte, sign bool) (int, string, http.Header) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+"/v1/callbacks/recording", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if sign {
			signer.Apply(req, signer.Sign())
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}

	tests := []struct {
		name        string
		method      string
		contentType string
		body        []byte
		sign        bool
		failStore   bool
		status      int
		code        string // error code, "" for success
	}{
		{"signed seed", "POST", "application/json", body, true, false, 200, ""},
		{"charset and no content type are fine", "POST", "application/json; charset=utf-8", body, true, false, 200, ""},
		{"no content type", "POST", "", body, true, false, 200, ""},
		{"unsigned", "POST", "application/json", body, false, false, 401, "missing_signature"},
		{"not JSON", "POST", "application/json", []byte(`{"appKey":"your_appkey",`), true, false, 400, "invalid_json"},
		{"no recordId", "POST", "application/json", []byte(`{"type":1,"appKey":"your_appkey"}`), true, false, 400, "missing_field"},
		{"form content", "POST", "application/x-www-form-urlencoded", body, true, false, 415, "unsupported_media_type"},
		{"too large", "POST", "application/json", append(bytes.Repeat([]byte(" "), rc.DefaultMaxBodyBytes), body...), true, false, 413, "body_too_large"},
		{"GET", "GET", "", nil, false, false, 405, "method_not_allowed"},
		{"store fails", "POST", "application/json", body, true, true, 503, "unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			failNext = tt.failStore
			before := len(received)
			mu.Unlock()
			status, answer, header := send(tt.method, tt.contentType, tt.body, tt.sign)
			if status != tt.status {
				t.Fatalf("status = %d, want %d (%s)", status, tt.status, answer)
			}
			if ct := header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			mu.Lock()
			got := len(received) - before
			mu.Unlock()
			if tt.code == "" {
				if got != 1 {
					t.Errorf("fn got %d callbacks, want 1", got)
				}
				return
			}
			if got != 0 {
				t.Errorf("fn got %d callbacks for a refused request", got)
			}
			var e struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal([]byte(answer), &e); err != nil {
				t.Fatalf("error body %q: %v", answer, err)
			}
			if e.Error.Code != tt.code || e.Error.Message == "" {
				t.Errorf("error = %+v, want code %q and a message", e.Error, tt.code)
			}
			if strings.Contains(answer, "secret-path") {
				t.Errorf("503 answer leaks the store's error: %s", answer)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(received) == 0 || received[0].RecordID != "8329208b99410743dcfeb80548e2c0ec" || received[0].Type != rc.TypeStart {
		t.Errorf("fn received %+v, want the parsed seed", received)
	}
}

func TestHandlerNeedsVerifier(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Handler(nil, fn) did not panic")
		}
	}()
	rc.Handler(nil, func(context.Context, rc.Callback) error { return nil })
}

func TestReadBodyDeclaredLength(t *testing.T) {
	req := httptest.NewRequest("POST", "/", strings.NewReader("{}"))
	req.ContentLength = 11
	if _, err := rc.ReadBody(req, 10); !errors.Is(err, rc.ErrBodyTooLarge) {
		t.Errorf("declared length over the limit: %v, want ErrBodyTooLarge", err)
	}
	req = httptest.NewRequest("POST", "/", strings.NewReader(`{"a":1}`))
	req.Header.Set("Content-Type", "application/cloudevents+json")
	if b, err := rc.ReadBody(req, 0); err != nil || string(b) != `{"a":1}` {
		t.Errorf("+json body: %q, %v", b, err)
	}
}

func TestErrorCodesAreDistinct(t *testing.T) {
	errs := []error{rc.ErrNotObject, rc.ErrMissingField, rc.ErrInvalidField, rc.ErrMissingSignature,
		rc.ErrMalformedSignature, rc.ErrUnknownApp, rc.ErrAppKeyMismatch, rc.ErrBadSignature, rc.ErrExpired,
		rc.ErrReplayed, rc.ErrBodyTooLarge, rc.ErrUnsupportedMediaType, errors.New("other")}
	seen := map[string]bool{}
	for _, err := range errs {
		code := rc.ErrorCode(err)
		if seen[code] {
			t.Errorf("code %q used twice", code)
		}
		seen[code] = true
	}
}

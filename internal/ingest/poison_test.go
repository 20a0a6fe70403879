package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/recledger/recledger/internal/ingest"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// callbackBody is a signed-app segment callback; fields overrides members
// with raw JSON.
func callbackBody(recordID string, n int, fields map[string]string) []byte {
	v := func(name, def string) string {
		if raw, ok := fields[name]; ok {
			return raw
		}
		b, _ := json.Marshal(def)
		return string(b)
	}
	return fmt.Appendf(nil, `{"timestamp":%d,"type":2,"appKey":%q,"recordId":%s,"roomId":%s,"sessionId":"s","userId":"u","mode":0,`+
		`"code":200,"errorMessage":%s,"output":{"fileName":%s,"fileSize":10}}`,
		1530027865231+int64(n), app, v("recordId", recordID), v("roomId", "room"), v("errorMessage", "ok"), v("fileName", fmt.Sprintf("f%d.mp4", n)))
}

// loopbackServer serves h on 127.0.0.1 with serve.go's header limit.
func loopbackServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.MaxHeaderBytes = 64 << 10 // as cmd/recledger/serve.go
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestPoisonCallbacksAreRefusedAlone sends signed callbacks the stores
// cannot hold (NUL in an id, a 300-character recordId, a 2,000-character
// fileName, a control character in roomId) concurrently with good ones:
// every good one is answered 200, every poison 400 unstorable_callback
// naming its field, and quarantined; a retried poison is still 400, never
// 503.
func TestPoisonCallbacksAreRefusedAlone(t *testing.T) {
	runOnStores(t, func(t *testing.T, store ledger.Store) {
		v, err := rc.NewVerifier(rc.VerifierConfig{Apps: map[string][]string{app: {secret}}, Replay: store})
		if err != nil {
			t.Fatal(err)
		}
		h, err := ingest.New(store, ingest.Options{Verifier: v})
		if err != nil {
			t.Fatal(err)
		}
		url := loopbackServer(t, h)
		poisons := []struct {
			body  []byte
			field string
		}{
			{callbackBody("", 1, map[string]string{"recordId": `"poison\u0000nul"`}), "recordId"},
			{callbackBody(strings.Repeat("r", 300), 2, nil), "recordId"},
			{callbackBody("poison-file", 3, map[string]string{"fileName": `"` + strings.Repeat("f", 2000) + `"`}), "output.fileName"},
			{callbackBody("poison-room", 4, map[string]string{"roomId": `"room\u0000"`}), "roomId"},
			{callbackBody("poison-esc", 5, map[string]string{"roomId": `"\u001b[2J"`}), "roomId"},
		}
		const goods = 40
		var wg sync.WaitGroup
		goodAnswers := make([]answer, goods)
		poisonAnswers := make([]answer, len(poisons))
		for i := range goods {
			wg.Go(func() {
				goodAnswers[i] = post(t, url, callbackBody(fmt.Sprintf("good-%02d", i), 100+i,
					map[string]string{"errorMessage": `"free text may hold \u0000"`}), signer(), "application/json")
			})
		}
		for i, p := range poisons {
			wg.Go(func() { poisonAnswers[i] = post(t, url, p.body, signer(), "application/json") })
		}
		wg.Wait()
		for i, a := range goodAnswers {
			if a.status != 200 {
				t.Errorf("good callback %d: %d %v", i, a.status, a.body)
			}
		}
		check := func(what string, i int, a answer) {
			t.Helper()
			msg, _ := a.body["error"].(map[string]any)["message"].(string)
			if a.status != 400 || errorCode(a) != "unstorable_callback" || !strings.Contains(msg, poisons[i].field) {
				t.Errorf("%s poison %d: %d %v; want 400 unstorable_callback naming %s", what, i, a.status, a.body, poisons[i].field)
			}
			if len(msg) > 300 {
				t.Errorf("%s poison %d: the answer echoes %d bytes", what, i, len(msg))
			}
		}
		for i, a := range poisonAnswers {
			check("first", i, a)
		}
		for i, p := range poisons { // RC retries what it was not answered 200: still 400
			check("retried", i, post(t, url, p.body, signer(), "application/json"))
		}
		q, err := store.QuarantineList(context.Background(), 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		quarantined := 0
		for _, r := range q {
			if r.Reason == "unstorable_callback" && r.Status == 400 {
				quarantined++
				found := false
				for _, p := range poisons {
					found = found || bytes.Equal(r.Body, p.body)
				}
				if !found {
					t.Errorf("quarantined body is none of the poisons: %.100q", r.Body)
				}
			}
		}
		if quarantined != 2*len(poisons) {
			t.Errorf("%d poisons quarantined, want %d", quarantined, 2*len(poisons))
		}
		evs, err := store.Events(context.Background(), 0, 1000)
		if err != nil || len(evs) != goods {
			t.Errorf("log holds %d events (%v), want the %d good ones", len(evs), err, goods)
		}
	})
}

// TestLogLinesCapWhatTheyEcho: a refused callback whose error would name
// a 300-byte recordId, and a callback not stored (the store closed) whose
// error names a 256-byte one: neither the log nor the answer echoes more
// than 200 bytes of a value.
func TestLogLinesCapWhatTheyEcho(t *testing.T) {
	store := sqliteStore(t)
	var (
		mu   sync.Mutex
		logs bytes.Buffer
	)
	v, err := rc.NewVerifier(rc.VerifierConfig{Apps: map[string][]string{app: {secret}}, Replay: rc.NewMemoryReplay(nil)})
	if err != nil {
		t.Fatal(err)
	}
	h, err := ingest.New(store, ingest.Options{Verifier: v, Logger: slog.New(slog.NewTextHandler(&lockedWriter{&mu, &logs}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	url := loopbackServer(t, h)
	run := strings.Repeat("Z", 201)
	a := post(t, url, callbackBody(strings.Repeat("Z", 300), 1, nil), signer(), "application/json")
	if a.status != 400 || strings.Contains(fmt.Sprint(a.body), run) {
		t.Errorf("unstorable: %d, answer echoes the recordId: %v", a.status, a.body)
	}
	store.Close()
	a = post(t, url, callbackBody(strings.Repeat("Z", 256), 2, nil), signer(), "application/json")
	if a.status != 503 {
		t.Errorf("closed store: %d %v, want 503", a.status, a.body)
	}
	mu.Lock()
	defer mu.Unlock()
	out := logs.String()
	if !strings.Contains(out, "callback refused") || !strings.Contains(out, "callback not stored") {
		t.Fatalf("log lines missing:\n%s", out)
	}
	if strings.Contains(out, run) {
		t.Errorf("a log line echoes over 200 bytes of a value:\n%.3000s", out)
	}
}

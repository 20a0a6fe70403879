package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/ingest"
	"github.com/recledger/recledger/internal/sqlitestore"
	"github.com/recledger/recledger/rc"
)

// fuzzMaxBody is the handler's body limit in the fuzz, small so that
// inputs reach it.
const fuzzMaxBody = 4096

// How a fuzz input signs its request (sign % signModes).
const (
	signNone     = iota // no signature
	signCorrect         // signed with the app's secret, now, in one of RC's styles
	signWrong           // signed with another secret
	signStale           // signed with the secret an hour ago
	signReplayed        // the last signature the handler accepted, again
	signGarbage         // signature headers taken from the input
	signModes
)

var fuzzMethods = []string{http.MethodPost, http.MethodPost, http.MethodPost, http.MethodGet, http.MethodPut, http.MethodHead, "PATCH", "BREW"}

var fuzzContentTypes = []string{"application/json", "application/json; charset=utf-8", "", "text/plain", "APPLICATION/JSON", "application/x-www-form-urlencoded"}

// FuzzHandler feeds the whole callback endpoint (the real ingest.Handler
// over a real SQLite store, one per fuzz process) requests built from the
// input: method, content type, signature (right, wrong, stale, replayed,
// garbage, in every style), an extra header, the query and the body. It
// checks the handler never panics, answers only with the statuses of
// CONTRACT.md (and 405 for another method), that a refused request leaves
// the log as it was and is kept in the quarantine, and that a 200 was
// logged.
func FuzzHandler(f *testing.F) {
	ctx := context.Background()
	// synchronous=normal: still a real SQLite store with every write
	// committed, without an fsync per fuzz input.
	store, err := sqlitestore.Open(ctx, filepath.Join(f.TempDir(), "fuzz.db"), sqlitestore.Options{Synchronous: sqlitestore.SyncNormal})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	v, err := rc.NewVerifier(rc.VerifierConfig{Apps: map[string][]string{app: {secret}}, Replay: store})
	if err != nil {
		f.Fatal(err)
	}
	h, err := ingest.New(store, ingest.Options{Verifier: v, MaxBodyBytes: fuzzMaxBody})
	if err != nil {
		f.Fatal(err)
	}
	var lastAccepted *http.Request // whose signature signReplayed reuses

	// newest returns the log's newest seq and the quarantine's newest id.
	newest := func(t *testing.T) (seq, quarantined int64) {
		t.Helper()
		evs, err := store.LatestEvents(ctx, 1)
		if err != nil {
			t.Fatalf("read the log: %v", err)
		}
		if len(evs) > 0 {
			seq = evs[0].Seq
		}
		rej, err := store.QuarantineList(ctx, 0, 1)
		if err != nil {
			t.Fatalf("read the quarantine: %v", err)
		}
		if len(rej) > 0 {
			quarantined = rej[0].ID
		}
		return seq, quarantined
	}

	f.Fuzz(func(t *testing.T, method, contentType, sign, style uint8, header, value, query string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/v1/callbacks/recording", bytes.NewReader(body))
		req.Method = fuzzMethods[int(method)%len(fuzzMethods)]
		if ct := fuzzContentTypes[int(contentType)%len(fuzzContentTypes)]; ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		if header != "" {
			req.Header[header] = append(req.Header[header], value) // as received: not canonical, maybe not even valid
		}
		req.URL.RawQuery = query
		styles := rc.Styles()
		signer := rc.Signer{AppKey: app, Secret: secret, Style: styles[int(style)%len(styles)], AppKeyInRequest: style >= 128}
		switch int(sign) % signModes {
		case signCorrect:
			signer.Apply(req, signer.Sign())
		case signWrong:
			signer.Secret = "not-" + secret
			signer.Apply(req, signer.Sign())
		case signStale:
			signer.Now = func() time.Time { return time.Now().Add(-time.Hour) }
			signer.Apply(req, signer.Sign())
		case signReplayed:
			if lastAccepted != nil {
				for _, k := range []string{"Nonce", "Timestamp", "Signature", "Rc-Nonce", "Rc-Timestamp", "Rc-Signature"} {
					if v, ok := lastAccepted.Header[k]; ok {
						req.Header[k] = v
					}
				}
				if q := lastAccepted.URL.RawQuery; q != "" {
					req.URL.RawQuery = q
				}
			}
		case signGarbage:
			for _, k := range []string{"Nonce", "Timestamp", "Signature"} {
				req.Header.Set(k, value)
			}
		}
		seqBefore, quarantinedBefore := newest(t)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		seqAfter, quarantinedAfter := newest(t)

		switch rec.Code {
		case http.StatusOK:
			var a ingest.Answer
			if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil || a.Status != "ok" {
				t.Fatalf("200 with an answer that is not ingest's: %v %q", err, rec.Body.Bytes())
			}
			if seqAfter <= seqBefore || a.Seq <= seqBefore || a.Seq > seqAfter {
				t.Fatalf("answered 200 (seq %d) but the log went from seq %d to %d", a.Seq, seqBefore, seqAfter)
			}
			lastAccepted = req
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
			if seqAfter != seqBefore {
				t.Fatalf("refused with %d (%s) but the log went from seq %d to %d", rec.Code, rec.Body.Bytes(), seqBefore, seqAfter)
			}
			if quarantinedAfter <= quarantinedBefore {
				t.Fatalf("refused with %d (%s) but not kept in the quarantine", rec.Code, rec.Body.Bytes())
			}
		case http.StatusMethodNotAllowed:
			if req.Method == http.MethodPost {
				t.Fatalf("a POST answered 405")
			}
			if seqAfter != seqBefore {
				t.Fatalf("refused with 405 but the log went from seq %d to %d", seqBefore, seqAfter)
			}
		case http.StatusServiceUnavailable:
			if seqAfter != seqBefore {
				t.Fatalf("answered 503 (%s) but the log went from seq %d to %d", rec.Body.Bytes(), seqBefore, seqAfter)
			}
		default:
			t.Fatalf("answered %d (%s): not one of 200, 400, 401, 405, 413, 415, 503", rec.Code, rec.Body.Bytes())
		}
		if rec.Code != http.StatusMethodNotAllowed && req.Method != http.MethodPost {
			t.Fatalf("%s answered %d, want 405", req.Method, rec.Code)
		}
	})
}

package ingest_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/recledger/recledger/internal/ingest"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// rejections keeps what is quarantined.
type rejections struct{ got []ledger.Rejection }

func (r *rejections) Append(context.Context, ledger.Incoming) (ledger.Appended, error) {
	return ledger.Appended{}, nil
}
func (r *rejections) Quarantine(_ context.Context, rej ledger.Rejection) error {
	r.got = append(r.got, rej)
	return nil
}

// TestRemoteNamesTheSender: the quarantine and the refusal's log line name
// the sender as Options.Remote reads it (serve: the client a trusted proxy
// forwarded for), and the peer's address as before without it.
func TestRemoteNamesTheSender(t *testing.T) {
	v, err := rc.NewVerifier(rc.VerifierConfig{Apps: map[string][]string{app: {secret}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		remote func(*http.Request) string
		want   string
	}{
		{"without", nil, "192.0.2.7:5000"},
		{"with", func(*http.Request) string { return "198.51.100.1" }, "198.51.100.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			store := &rejections{}
			var logs bytes.Buffer
			h, err := ingest.New(store, ingest.Options{Verifier: v, Remote: tt.remote, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest("POST", "/v1/callbacks/recording", strings.NewReader(`{"type":1}`))
			req.RemoteAddr = "192.0.2.7:5000"
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Forwarded-For", "198.51.100.1")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusUnauthorized || len(store.got) != 1 {
				t.Fatalf("answer %d, %d quarantined", rec.Code, len(store.got))
			}
			if store.got[0].Remote != tt.want || !strings.Contains(logs.String(), "remote="+tt.want) {
				t.Errorf("quarantine remote %q, log %q; want %q", store.got[0].Remote, logs.String(), tt.want)
			}
		})
	}
}

package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/recledger/recledger/internal/access"
	"github.com/recledger/recledger/internal/api"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/removal"
)

// eraseSite serves the API with an Erase that records its calls.
func eraseSite(t *testing.T, token string) (*httptest.Server, *access.Rule, *[]string) {
	t.Helper()
	rule := access.New(token, nil)
	var calls []string
	mux := http.NewServeMux()
	api.New(fill(t), api.Options{Access: rule, Erase: func(_ context.Context, user, app string) (removal.Erasure, error) {
		calls = append(calls, user+"|"+app)
		return removal.Erasure{Removed: ledger.Removed{Recordings: 2, LogRows: 9, Files: 3, Outbound: 4}, Quarantine: 1}, nil
	}}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, rule, &calls
}

func erase(t *testing.T, u string, header map[string]string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodDelete, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestEraseNeedsTheToken: DELETE /v1/users/{id} answers the bearer of the
// configured token only: not a loopback client of a server without a
// token, not a dashboard session cookie, not a wrong token.
func TestEraseNeedsTheToken(t *testing.T) {
	const token = "a-long-enough-test-token"
	open, _, openCalls := eraseSite(t, "")
	if status := erase(t, open.URL+"/v1/users/u1", nil); status != http.StatusForbidden {
		t.Errorf("loopback without a configured token: %d, want 403", status)
	}
	if len(*openCalls) != 0 {
		t.Errorf("erased without a token: %v", *openCalls)
	}

	srv, rule, calls := eraseSite(t, token)
	login := httptest.NewRequest(http.MethodPost, "/login", nil)
	cookie, err := rule.Login(login, token)
	if err != nil {
		t.Fatal(err)
	}
	if status := erase(t, srv.URL+"/v1/users/u1", map[string]string{"Cookie": cookie.String()}); status != http.StatusUnauthorized {
		t.Errorf("with a valid session cookie: %d, want 401", status)
	}
	for _, h := range []map[string]string{nil, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic " + token}} {
		if status := erase(t, srv.URL+"/v1/users/u1", h); status != http.StatusUnauthorized {
			t.Errorf("with %v: %d, want 401", h, status)
		}
	}
	if len(*calls) != 0 {
		t.Fatalf("erased without the token: %v", *calls)
	}
	req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/v1/users/u%201?appKey=app", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]int64
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("with the token: %d, %v", resp.StatusCode, err)
	}
	want := map[string]int64{"recordings": 2, "logRows": 9, "files": 3, "outbound": 4, "quarantine": 1}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("answer %s = %d, want %d (%v)", k, got[k], v, got)
		}
	}
	if len(*calls) != 1 || (*calls)[0] != "u 1|app" {
		t.Errorf("Erase called with %v, want [u 1|app]", *calls)
	}
}

// TestEraseHostileIDs: ids no stored value can hold, and unknown
// parameters, are refused with a 4xx before anything is erased.
func TestEraseHostileIDs(t *testing.T) {
	const token = "a-long-enough-test-token"
	srv, _, calls := eraseSite(t, token)
	auth := map[string]string{"Authorization": "Bearer " + token}
	for _, path := range []string{
		"/v1/users/a%00b",
		"/v1/users/" + strings.Repeat("x", 5000),
		"/v1/users/%ff%fe",
		"/v1/users/a%0Ab",
		"/v1/users/u1?appKey=a%00",
		"/v1/users/u1?userId=other",
		"/v1/users/",
	} {
		status := erase(t, srv.URL+path, auth)
		if status < 400 || status > 499 {
			t.Errorf("DELETE %.60s: %d, want a 4xx", path, status)
		}
	}
	if len(*calls) != 0 {
		t.Errorf("hostile ids were erased: %q", *calls)
	}
}

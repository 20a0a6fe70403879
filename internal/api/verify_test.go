package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/recledger/recledger/internal/api"
	"github.com/recledger/recledger/internal/ledger"
)

const (
	doneFile1 = "sess_room_u1_rec-done_1.mp4"
	doneFile2 = "sess_room_u1_rec-done_2.mp4"
)

// verifyingServer serves s's API with storage verification on or off.
func verifyingServer(t *testing.T, s ledger.Store, token string, on bool) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	api.New(s, api.Options{Token: token, VerifyStorage: on}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// fillChecks stores fillFiles' recordings and checks of rec-done's two
// files: the first found missing, the second still pending.
func fillChecks(t *testing.T, s ledger.Store) ledger.Verifications {
	t.Helper()
	fillFiles(t, s)
	v := s.(ledger.Verifications)
	ctx := context.Background()
	var checks []ledger.FileCheck
	for _, name := range []string{doneFile1, doneFile2} {
		checks = append(checks, ledger.FileCheck{RecordID: "rec-done", FileName: name, AppKey: "app", URLHash: ledger.URLHash("http://oss/" + name),
			Verification: ledger.Verification{State: ledger.VerifyPending}, NextAt: 1})
	}
	if err := v.QueueVerifications(ctx, checks, 5); err != nil {
		t.Fatal(err)
	}
	status, at := 404, int64(1_700_000_100_000)
	missing := checks[0]
	missing.Verification = ledger.Verification{State: ledger.VerifyMissing, HTTPStatus: &status, CheckedAt: &at, Attempts: 1, Error: "the storage answered 404"}
	missing.NextAt = 0
	if ok, err := v.SaveVerification(ctx, missing); err != nil || !ok {
		t.Fatalf("SaveVerification: %v, %v", ok, err)
	}
	return v
}

func post(t *testing.T, u, token string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 500 {
		t.Errorf("POST %.100s: %d %.200s", u, resp.StatusCode, b)
	}
	return resp.StatusCode, b
}

// TestVerificationViews: the files of a recording and GET /v1/files/{name}
// carry their storage check when there is one, and
// GET /v1/recordings?verification= lists the recordings with a file in
// that state.
func TestVerificationViews(t *testing.T) {
	onBothStores(t, func(t *testing.T, s ledger.Store) {
		fillChecks(t, s)
		srv := verifyingServer(t, s, "", false)
		var rec api.RecordingDetail
		if code := get(t, srv.URL+"/v1/recordings/rec-done", "", &rec); code != 200 {
			t.Fatalf("GET recording: %d", code)
		}
		got := map[string]*ledger.Verification{}
		for _, f := range rec.Files {
			got[f.FileName] = f.Verification
		}
		if v := got[doneFile1]; v == nil || v.State != ledger.VerifyMissing || v.HTTPStatus == nil || *v.HTTPStatus != 404 || v.Error == "" {
			t.Errorf("%s: verification %+v, want missing with 404", doneFile1, v)
		}
		if v := got[doneFile2]; v == nil || v.State != ledger.VerifyPending || v.CheckedAt != nil {
			t.Errorf("%s: verification %+v, want pending, not checked", doneFile2, v)
		}
		var stuck api.RecordingDetail
		get(t, srv.URL+"/v1/recordings/rec-stuck", "", &stuck)
		for _, f := range stuck.Files {
			if f.Verification != nil {
				t.Errorf("%s has a verification no check made: %+v", f.FileName, f.Verification)
			}
		}
		var file ledger.File
		if code := get(t, srv.URL+"/v1/files/"+doneFile1, "", &file); code != 200 || file.Verification == nil || file.Verification.State != ledger.VerifyMissing {
			t.Errorf("GET file: %d, verification %+v; want missing", code, file.Verification)
		}
		_, raw := getRaw(t, srv.URL+"/v1/files/sess_room_u1_rec-stuck_1.mp4")
		if strings.Contains(string(raw), `"verification"`) {
			t.Errorf("a file never checked shows a verification: %s", raw)
		}

		for _, tt := range []struct {
			state string
			want  []string
		}{{"missing", []string{"rec-done"}}, {"pending", []string{"rec-done"}}, {"verified", nil}, {"", []string{"rec-stuck", "rec-done"}}} {
			var list api.RecordingList
			if code := get(t, srv.URL+"/v1/recordings?verification="+tt.state, "", &list); code != 200 {
				t.Fatalf("verification=%s: %d", tt.state, code)
			}
			var ids []string
			for _, r := range list.Items {
				ids = append(ids, r.RecordID)
			}
			if strings.Join(ids, ",") != strings.Join(tt.want, ",") {
				t.Errorf("verification=%s: %v, want %v", tt.state, ids, tt.want)
			}
		}
		var e apiError
		if code := get(t, srv.URL+"/v1/recordings?verification=lost", "", &e); code != 400 || e.Error.Code != "bad_parameter" || !strings.Contains(e.Error.Message, "verification") {
			t.Errorf("verification=lost: %d %+v, want 400 bad_parameter naming it", code, e)
		}
	})
}

// TestVerificationRecheck: the three re-check endpoints queue what they
// name (202 with the count), 404 for what is unknown, 409 while
// verification is off, and behind the access rule.
func TestVerificationRecheck(t *testing.T) {
	onBothStores(t, func(t *testing.T, s ledger.Store) {
		v := fillChecks(t, s)
		const token = "t0ken"
		srv := verifyingServer(t, s, token, true)
		queued := func(path string, want int64) {
			t.Helper()
			code, body := post(t, srv.URL+path, token)
			var q api.Queued
			if err := json.Unmarshal(body, &q); code != http.StatusAccepted || err != nil || q.Queued != want {
				t.Errorf("POST %s: %d %s, want 202 queued %d", path, code, body, want)
			}
		}
		states := func() map[string]ledger.VerificationState {
			got, err := v.FileVerifications(context.Background(), "rec-done")
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]ledger.VerificationState{}
			for name, c := range got {
				out[name] = c.State
			}
			return out
		}
		queued("/v1/verifications/recheck?state=missing", 1)
		if got := states(); got[doneFile1] != ledger.VerifyPending {
			t.Errorf("after recheck?state=missing: %v, want %s pending", got, doneFile1)
		}
		queued("/v1/verifications/recheck?state=missing", 0)
		queued("/v1/files/"+doneFile2+"/verify", 1)
		queued("/v1/recordings/rec-done/verify", 2)
		queued("/v1/recordings/rec-stuck/verify", 0) // known, nothing checked yet
		due, err := v.DueVerifications(context.Background(), 1<<62, 10)
		if err != nil || len(due) != 2 {
			t.Errorf("due after the re-checks: %d, %v; want both files", len(due), err)
		}

		for _, tt := range []struct {
			path   string
			status int
			code   string
		}{
			{"/v1/recordings/nope/verify", 404, "not_found"},
			{"/v1/files/nope.mp4/verify", 404, "not_found"},
			{"/v1/verifications/recheck", 400, "bad_parameter"},
			{"/v1/verifications/recheck?state=lost", 400, "bad_parameter"},
			{"/v1/verifications/recheck?state=missing&appKey=x", 400, "unknown_parameter"},
		} {
			code, body := post(t, srv.URL+tt.path, token)
			var e apiError
			json.Unmarshal(body, &e)
			if code != tt.status || e.Error.Code != tt.code {
				t.Errorf("POST %s: %d %s, want %d %s", tt.path, code, body, tt.status, tt.code)
			}
		}
		for _, path := range []string{"/v1/recordings/rec-done/verify", "/v1/files/" + doneFile1 + "/verify", "/v1/verifications/recheck?state=missing"} {
			if code, _ := post(t, srv.URL+path, ""); code != http.StatusUnauthorized {
				t.Errorf("POST %s without the token: %d, want 401", path, code)
			}
			if code, _ := post(t, srv.URL+path, "wrong"); code != http.StatusUnauthorized {
				t.Errorf("POST %s with a wrong token: %d, want 401", path, code)
			}
		}

		off := verifyingServer(t, s, "", false)
		for _, path := range []string{"/v1/recordings/rec-done/verify", "/v1/files/" + doneFile1 + "/verify", "/v1/verifications/recheck?state=missing"} {
			code, body := post(t, off.URL+path, "")
			var e apiError
			json.Unmarshal(body, &e)
			if code != http.StatusConflict || e.Error.Code != "verification_off" || !strings.Contains(e.Error.Message, "--verify-storage") {
				t.Errorf("POST %s with verification off: %d %s, want 409 verification_off", path, code, body)
			}
		}
	})
}

// TestVerificationHostile: hostile path ids and states on the re-check
// endpoints and the verification filter, on both backends: never 5xx,
// 404 for a path id no store can hold, 400 for a state, the value not
// echoed.
func TestVerificationHostile(t *testing.T) {
	onBothStores(t, func(t *testing.T, s ledger.Store) {
		fillChecks(t, s)
		srv := verifyingServer(t, s, "", true)
		for _, hv := range hostileValues {
			for _, tt := range []struct {
				method, path string
				want         int
			}{
				{"POST", "/v1/recordings/" + hv.raw + "/verify", 404},
				{"POST", "/v1/files/" + hv.raw + "/verify", 404},
				{"POST", "/v1/verifications/recheck?state=" + hv.raw, 400},
				{"GET", "/v1/recordings?verification=" + hv.raw, 400},
			} {
				var (
					code int
					body []byte
				)
				if tt.method == "POST" {
					code, body = post(t, srv.URL+tt.path, "")
				} else {
					code, body = getRaw(t, srv.URL+tt.path)
				}
				name := hv.name + " " + tt.method + " " + tt.path[:min(len(tt.path), 40)]
				if code != tt.want {
					t.Errorf("%s: %d %.200s, want %d", name, code, body, tt.want)
				}
				if len(body) > 1000 {
					t.Errorf("%s: the answer is %d bytes; it echoes the value", name, len(body))
				}
			}
		}
		// A real file name with characters to escape still works.
		if code, body := post(t, srv.URL+"/v1/files/"+url.PathEscape(doneFile1)+"/verify", ""); code != http.StatusAccepted {
			t.Errorf("escaped real name: %d %s", code, body)
		}
	})
}

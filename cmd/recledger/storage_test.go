package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/delivery/webhook"
	"github.com/recledger/recledger/internal/ledger"
)

// presignedQuery is a presigned S3 GET URL's query (SigV4): gofakes3
// ignores it; the test storage refuses HEAD on it, as S3 does.
const presignedQuery = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDE2ESECRET%2F20261130%2Fus-east-1%2Fs3%2Faws4_request" +
	"&X-Amz-Date=20261130T030000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=e2esecretsignature0123456789"

// testStorage is an S3 bucket "rec" on loopback holding objects of the
// given sizes; it counts the requests it answers.
func testStorage(t *testing.T, objects map[string]int) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket("rec"); err != nil {
		t.Fatal(err)
	}
	for key, size := range objects {
		body := bytes.Repeat([]byte("v"), size)
		if _, err := backend.PutObject("rec", key, map[string]string{"Content-Type": "video/mp4"}, bytes.NewReader(body), int64(size), nil); err != nil {
			t.Fatal(err)
		}
	}
	s3 := gofakes3.New(backend).Server()
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.Method == http.MethodHead && r.URL.Query().Get("X-Amz-Signature") != "" {
			w.WriteHeader(http.StatusForbidden) // the signature covers GET only
			return
		}
		s3.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &requests
}

// rcBody is one of RC's callbacks for testApp.
func rcBody(recordID string, typ, ts int, file, output string) []byte {
	return fmt.Appendf(nil, `{"timestamp":%d,"type":%d,"appKey":%q,"recordId":%q,"roomId":"111","sessionId":"sess","userId":"222","mode":1,`+
		`"code":200,"errorMessage":"Success","output":{"fileName":%q%s}}`, 1530027865231+ts, typ, testApp, recordID, file, output)
}

// TestStorageVerificationEndToEnd: a real serve with --verify-storage
// checks the files RC reported uploaded against an S3 store on loopback
// (presigned URLs: HEAD refused, a one-byte GET answers), reports each
// file's verification in the API and the metrics, and sends
// recording.file_verified and recording.file_missing to a webhook; a
// file whose host is not on --storage-hosts is unreachable, with no
// event. No log line holds a URL's query string.
func TestStorageVerificationEndToEnd(t *testing.T) {
	storage, requests := testStorage(t, map[string]int{"room/present.mp4": 1000, "room/wrong.mp4": 500})
	other, otherRequests := testStorage(t, map[string]int{"room/elsewhere.mp4": 1000}) // not listed
	secret := webhook.NewSecret().Reveal()
	hook := newHookReceiver(t, secret)
	hook.script = func(int) (int, http.Header) { return 204, nil }
	token := "storage-e2e-token-0123456789abcdefghij"
	hostPort := strings.TrimPrefix(storage.URL, "http://")
	// The guide's serve line, with this test's storage added to its hosts
	// (the storage hosts add up).
	words := shellWords(t, opsBlock(t, "serve-verify-storage"))
	if len(words) < 2 || words[0] != "recledger" || words[1] != "serve" {
		t.Fatalf("serve-verify-storage is not a recledger serve line: %q", words)
	}
	srv := startServer(t, t.TempDir(), append(words[2:], "--app", testApp+"="+testSecret, "--api-token", token, "--log-level", "debug",
		"--allow-private-destinations", "--webhook", "http://"+hook.addr+"/hooks="+secret,
		"--storage-hosts", hostPort)...)

	const rec = "e2e-storage"
	files := map[string]string{ // name → upload URL
		"present.mp4":   storage.URL + "/rec/room/present.mp4?" + presignedQuery,
		"absent.mp4":    storage.URL + "/rec/room/absent.mp4?" + presignedQuery,
		"wrong.mp4":     storage.URL + "/rec/room/wrong.mp4?" + presignedQuery,
		"plain.mp4":     storage.URL + "/rec/room/present.mp4", // no query: HEAD answers
		"elsewhere.mp4": other.URL + "/rec/room/elsewhere.mp4?" + presignedQuery,
	}
	bodies := [][]byte{rcBody(rec, 1, 0, "tmp.mp4", "")}
	i := 0
	for name, u := range files {
		i++
		bodies = append(bodies, rcBody(rec, 2, i*1000, name, `,"fileSize":1000`), rcBody(rec, 4, i*1000+500, name, fmt.Sprintf(`,"fileUrl":%q`, u)))
	}
	bodies = append(bodies, rcBody(rec, 3, 60_000, "", ""))
	postAll(t, srv.addr, bodies)

	want := map[string]ledger.VerificationState{"present.mp4": ledger.VerifyVerified, "plain.mp4": ledger.VerifyVerified,
		"absent.mp4": ledger.VerifyMissing, "wrong.mp4": ledger.VerifySizeMismatch, "elsewhere.mp4": ledger.VerifyUnreachable}
	var view ledger.Recording
	deadline := time.Now().Add(30 * time.Second)
	for {
		apiGet(t, srv.addr, token, "/v1/recordings/"+rec, &view)
		done := 0
		for _, f := range view.Files {
			if f.Verification != nil && f.Verification.State == want[f.FileName] {
				done++
			}
		}
		if done == len(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("verification did not reach the expected states in 30 s: %+v\n%s", view.Files, srv.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, f := range view.Files {
		v := f.Verification
		switch f.FileName {
		case "present.mp4":
			if v.HTTPStatus == nil || *v.HTTPStatus != 206 || v.Size == nil || *v.Size != 1000 || v.CheckedAt == nil || v.Attempts != 1 {
				t.Errorf("present.mp4: %+v", v)
			}
		case "wrong.mp4":
			if v.Size == nil || *v.Size != 500 || v.Error == "" {
				t.Errorf("wrong.mp4: %+v", v)
			}
		case "elsewhere.mp4":
			if v.Error != "storage host not on --storage-hosts" {
				t.Errorf("elsewhere.mp4: %+v", v)
			}
		}
	}
	if n := otherRequests.Load(); n != 0 {
		t.Errorf("the storage not listed got %d requests", n)
	}
	if requests.Load() == 0 {
		t.Error("the listed storage got no request")
	}

	// The webhook gets file_verified for the two present files and
	// file_missing for the absent and the wrongly sized one; nothing for
	// the unreachable one.
	wantIDs := map[string]bool{}
	for name, st := range want {
		switch st {
		case ledger.VerifyVerified:
			wantIDs[delivery.ID(testApp, rec, delivery.FileVerified, name)] = true
		case ledger.VerifyMissing, ledger.VerifySizeMismatch:
			wantIDs[delivery.ID(testApp, rec, delivery.FileMissing, name)] = true
		}
	}
	unwanted := map[string]bool{delivery.ID(testApp, rec, delivery.FileVerified, "elsewhere.mp4"): true,
		delivery.ID(testApp, rec, delivery.FileMissing, "elsewhere.mp4"): true}
	deadline = time.Now().Add(30 * time.Second)
	for {
		got := 0
		for _, id := range hook.got()[rec] {
			if wantIDs[id] {
				got++
			}
			if unwanted[id] {
				t.Fatalf("an event for the unreachable file: %s", id)
			}
		}
		if got == len(wantIDs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the webhook got %d of the %d verification events in 30 s", got, len(wantIDs))
		}
		time.Sleep(50 * time.Millisecond)
	}

	req, _ := http.NewRequest(http.MethodGet, "http://"+srv.addr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	metricsText, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := string(metricsText)
	for series, v := range map[string]float64{
		`recledger_storage_files{state="verified"}`:          2,
		`recledger_storage_files{state="missing"}`:           1,
		`recledger_storage_files{state="size_mismatch"}`:     1,
		`recledger_storage_files{state="unreachable"}`:       1,
		`recledger_storage_files{state="pending"}`:           0,
		`recledger_storage_checks_total{outcome="verified"}`: 2,
		`recledger_storage_check_duration_seconds_count`:     5,
	} {
		if got := metricValue(t, m, series); got != v {
			t.Errorf("%s = %v, want %v", series, got, v)
		}
	}
	for _, leak := range []string{"e2esecretsignature", "AKIDE2ESECRET", "X-Amz-Signature"} {
		if strings.Contains(srv.logs.String(), leak) {
			t.Errorf("the server's log holds %q", leak)
		}
	}
	if !strings.Contains(srv.logs.String(), `"msg":"storage verification on: uploaded files are checked at their URLs"`) ||
		!strings.Contains(srv.logs.String(), hostPort) {
		t.Errorf("no start line naming the storage hosts:\n%s", srv.logs)
	}
	if !strings.Contains(srv.logs.String(), `"msg":"storage checked"`) {
		t.Errorf("no check was logged (at debug):\n%s", srv.logs)
	}
	srv.stop(t)
}

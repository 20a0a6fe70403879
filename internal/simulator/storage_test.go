package simulator

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/storagecheck"
)

// storageScenario generates a scenario whose uploads go to a test storage
// at srv, with the storage faults, and serves it.
func storageScenario(t *testing.T, faults Faults) ([]Recording, *Storage, *httptest.Server) {
	t.Helper()
	var st *Storage
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { st.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	recs := Generate(Options{AppKey: "app", Recordings: 30, Seed: 41, Start: time.UnixMilli(vt0), FailedRecordings: 0.3, Faults: faults, Storage: srv.URL})
	st = NewStorage(recs)
	return recs, st, srv
}

// TestStorageAnswersAsS3Does asks the storage by hand: HEAD, a ranged GET,
// a whole GET, an absent key, a cut query string and a PUT.
func TestStorageAnswersAsS3Does(t *testing.T) {
	recs, st, _ := storageScenario(t, Faults{Absent: Share{Count: 1}})
	var present, absent File
	var refusing, answering string // a present object whose path refuses HEAD, and one that answers it
	for _, rec := range recs {
		for _, f := range rec.Files {
			if !rec.uploadSent(f) {
				continue
			}
			p := ObjectPath(rec.RecordID, f.Name)
			switch {
			case f.Absent:
				absent = f
			case f.Size > 0 && headRefused(p) && refusing == "":
				refusing = f.URL
			case f.Size > 0 && !headRefused(p) && answering == "":
				answering, present = f.URL, f
			}
		}
	}
	if absent.URL == "" || refusing == "" || answering == "" {
		t.Fatal("the scenario lacks an absent file, or one whose HEAD is refused, or one whose HEAD is answered")
	}
	if !strings.Contains(answering, "X-Amz-Algorithm=AWS4-HMAC-SHA256&") || !strings.Contains(answering, "&X-Amz-Signature=") {
		t.Errorf("the fileUrl does not look presigned: %s", answering)
	}
	do := func(method, u string, header ...string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		return resp, string(b)
	}
	u, _ := url.Parse(answering)
	obj, ok := st.Object(u.Path)
	if !ok || obj.Size != present.Size {
		t.Fatalf("object %s: %+v, %v; want size %d", u.Path, obj, ok, present.Size)
	}

	resp, body := do(http.MethodHead, answering)
	if resp.StatusCode != 200 || resp.ContentLength != obj.Size || resp.Header.Get("ETag") != obj.ETag || resp.Header.Get("Content-Type") != obj.ContentType || body != "" {
		t.Errorf("HEAD: %d, length %d, %v; want 200 and %+v", resp.StatusCode, resp.ContentLength, resp.Header, obj)
	}
	resp, body = do(http.MethodGet, answering, "Range", "bytes=0-0")
	if resp.StatusCode != 206 || resp.Header.Get("Content-Range") != "bytes 0-0/"+itoa(obj.Size) || body != "\x00" {
		t.Errorf("ranged GET: %d, Content-Range %q, body %q", resp.StatusCode, resp.Header.Get("Content-Range"), body)
	}
	resp, body = do(http.MethodGet, answering, "Range", "bytes=251-253")
	if resp.StatusCode != 206 || body != "\x00\x01\x02" {
		t.Errorf("GET bytes 251-253: %d, %q; want the pattern 0 1 2", resp.StatusCode, body)
	}
	resp, _ = do(http.MethodHead, refusing)
	if resp.StatusCode != 403 {
		t.Errorf("HEAD of a path presigned for GET: %d, want 403", resp.StatusCode)
	}
	resp, body = do(http.MethodGet, absent.URL, "Range", "bytes=0-0")
	if resp.StatusCode != 404 || !strings.Contains(body, "<Code>NoSuchKey</Code>") {
		t.Errorf("absent object: %d %s, want 404 NoSuchKey", resp.StatusCode, body)
	}
	cut := strings.Replace(answering, "X-Amz-Signature=", "X-Amz-Signature=0", 1)
	resp, body = do(http.MethodGet, cut, "Range", "bytes=0-0")
	if resp.StatusCode != 403 || !strings.Contains(body, "SignatureDoesNotMatch") {
		t.Errorf("a wrong signature: %d %s, want 403 SignatureDoesNotMatch", resp.StatusCode, body)
	}
	resp, _ = do(http.MethodGet, strings.Split(answering, "?")[0])
	if resp.StatusCode != 403 {
		t.Errorf("no query string: %d, want 403", resp.StatusCode)
	}
	// A hostile key, signed: not found, and the error body escapes it.
	hostile := presign(strings.Split(answering, "/recordings/")[0], ObjectPath("<r>", "a&b\x00"+strings.Repeat("x", 1<<14)), time.UnixMilli(vt0))
	resp, body = do(http.MethodGet, strings.ReplaceAll(hostile, "\x00", "%00"), "Range", "bytes=0-0")
	if resp.StatusCode != 404 || strings.Contains(body, "<r>") || !strings.Contains(body, "&lt;r&gt;") || !strings.Contains(body, "a&amp;b") {
		t.Errorf("a hostile key: %d %.200s", resp.StatusCode, body)
	}
	resp, _ = do(http.MethodPut, answering)
	if resp.StatusCode != 405 {
		t.Errorf("PUT: %d, want 405", resp.StatusCode)
	}
	got := st.Requests()
	if want := (StorageRequests{Head: 2, Ranged: 4, Whole: 0, Refused: 2, Other: 1}); got != want {
		t.Errorf("requests counted %+v, want %+v", got, want)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestCheckerAgreesWithTheStorageModel checks every uploaded file with the
// storage checker recledger uses: each comes to the state, status, size,
// type and ETag the oracle expects (Storage.want), the faults' files
// missing and size_mismatch, the others verified; and no check
// downloaded a whole object.
func TestCheckerAgreesWithTheStorageModel(t *testing.T) {
	recs, st, srv := storageScenario(t, Faults{Absent: Share{Count: 3}, WrongSize: Share{Count: 3}})
	hosts, err := storagecheck.ParseHosts(strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	checker := storagecheck.New(storagecheck.Options{Hosts: hosts, RatePerHost: 1000, PerHost: 8})
	states, statuses := map[string]int{}, map[int]int{}
	for _, rec := range recs {
		for _, f := range rec.Files {
			if !rec.uploadSent(f) {
				continue
			}
			size := f.Size
			r := checker.Check(context.Background(), f.URL, &size)
			u, _ := url.Parse(f.URL)
			w := st.want(u.Path, &size)
			states[string(r.State)]++
			statuses[r.HTTPStatus]++
			got := wantVerification{State: string(r.State), HTTPStatus: r.HTTPStatus, ContentType: r.ContentType, ETag: r.ETag}
			if r.Size != nil && w.State != "missing" {
				got.Size = *r.Size
			}
			if got != w {
				t.Errorf("%s: the checker found %+v (%v), the model wants %+v", f.Name, got, r.Err, w)
			}
		}
	}
	if states["missing"] != 3 || states["size_mismatch"] != 3 || states["verified"] < 20 || len(states) != 3 {
		t.Errorf("states %v: want 3 missing, 3 size_mismatch, the rest verified", states)
	}
	for _, code := range []int{200, 206, 404, 416} { // HEAD, ranged GET, absent, an empty file's range
		if statuses[code] == 0 {
			t.Errorf("no check ended with HTTP %d (statuses %v): the scenario does not cover it", code, statuses)
		}
	}
	if got := st.Requests(); got.Whole != 0 || got.Refused != 0 || got.Ranged == 0 || got.Head == 0 {
		t.Errorf("requests %+v: want HEADs and ranged GETs, no whole GET, none refused", got)
	}
}

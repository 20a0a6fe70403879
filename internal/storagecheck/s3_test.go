package storagecheck

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// presigned is the query of a presigned S3 GET URL (SigV4 in the query).
// gofakes3 does not check signatures; refuseSignedHead plays S3's part of
// refusing HEAD on a URL signed for GET.
const presigned = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20261130%2Fus-east-1%2Fs3%2Faws4_request" +
	"&X-Amz-Date=20261130T030000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host" +
	"&X-Amz-Signature=SECRET0123456789abcdef0123456789abcdef0123456789abcdef0123456789"

// countingWriter counts the body bytes a handler writes.
type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n.Add(int64(n))
	return n, err
}

// newS3 serves an in-memory S3 bucket "rec" holding room1/a.mp4 (1000
// bytes) on loopback, refusing HEAD on presigned URLs as S3 does (the
// signature covers the method). It counts requests by method and body
// bytes sent.
func newS3(t testing.TB) (srv *httptest.Server, methods map[string]*atomic.Int32, bodyBytes *atomic.Int64) {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket("rec"); err != nil {
		t.Fatal(err)
	}
	content := bytes.Repeat([]byte("v"), 1000)
	if _, err := backend.PutObject("rec", "room1/a.mp4", map[string]string{"Content-Type": "video/mp4"}, bytes.NewReader(content), int64(len(content)), nil); err != nil {
		t.Fatal(err)
	}
	s3 := gofakes3.New(backend).Server()
	methods = map[string]*atomic.Int32{http.MethodHead: {}, http.MethodGet: {}}
	bodyBytes = &atomic.Int64{}
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c := methods[r.Method]; c != nil {
			c.Add(1)
		}
		if r.Method == http.MethodHead && r.URL.Query().Get("X-Amz-Signature") != "" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		s3.ServeHTTP(countingWriter{w, bodyBytes}, r)
	}))
	t.Cleanup(srv.Close)
	return srv, methods, bodyBytes
}

func TestCheckS3(t *testing.T) {
	for _, tc := range []struct {
		name       string
		path       string
		query      string
		want       *int64
		state      State
		status     int
		heads, get int32
	}{
		{name: "plain URL, HEAD", path: "/rec/room1/a.mp4", want: size(1000), state: Verified, status: 200, heads: 1},
		{name: "plain URL, wrong size", path: "/rec/room1/a.mp4", want: size(999), state: SizeMismatch, status: 200, heads: 1},
		{name: "plain URL, missing", path: "/rec/room1/b.mp4", want: size(1000), state: Missing, status: 404, heads: 1},
		{name: "presigned, ranged GET", path: "/rec/room1/a.mp4", query: presigned, want: size(1000), state: Verified, status: 206, heads: 1, get: 1},
		{name: "presigned, wrong size", path: "/rec/room1/a.mp4", query: presigned, want: size(1), state: SizeMismatch, status: 206, heads: 1, get: 1},
		{name: "presigned, missing", path: "/rec/room1/b.mp4", query: presigned, want: size(1000), state: Missing, status: 404, heads: 1, get: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, methods, bodyBytes := newS3(t)
			c, _ := newChecker(t, srv.Listener.Addr().String(), nil)
			u := srv.URL + tc.path
			if tc.query != "" {
				u += "?" + tc.query
			}
			r := c.Check(context.Background(), u, tc.want)
			if r.State != tc.state || r.HTTPStatus != tc.status {
				t.Fatalf("got %s %d %v, want %s %d", r.State, r.HTTPStatus, r.Err, tc.state, tc.status)
			}
			if h, g := methods[http.MethodHead].Load(), methods[http.MethodGet].Load(); h != tc.heads || g != tc.get {
				t.Errorf("%d HEAD, %d GET; want %d, %d", h, g, tc.heads, tc.get)
			}
			if r.State == Verified || r.State == SizeMismatch {
				if r.Size == nil || *r.Size != 1000 || r.ETag == "" || !strings.HasPrefix(r.ContentType, "video/mp4") {
					t.Errorf("size %v, etag %q, type %q", r.Size, r.ETag, r.ContentType)
				}
				if n := bodyBytes.Load(); n > 1 {
					t.Errorf("the store sent %d body bytes, want at most 1", n)
				}
			}
			if r.Err != nil && strings.Contains(r.Err.Error(), "SECRET") {
				t.Errorf("the error shows the signature: %v", r.Err)
			}
		})
	}
}

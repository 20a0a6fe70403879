package simulator

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync/atomic"
	"time"
)

// The test storage is a plain-HTTP stand-in for the customer's object
// storage: it answers HEAD and (ranged) GET for the objects the simulated
// recordings uploaded, with their sizes, content types and ETags, as S3
// does for presigned URLs. It holds no bytes: an object's content is a
// pattern generated on the fly.

// storageBucket is the first path element of every object.
const storageBucket = "recordings"

// storageSecret signs the presigned-looking URLs. It is no secret: the
// point is only that a URL whose query string was cut or altered is
// refused, as a real presigned URL would be.
const storageSecret = "recledger-simulator-storage"

// ObjectPath is the URL path of a recording's file in the test storage.
func ObjectPath(recordID, fileName string) string {
	return "/" + storageBucket + "/" + recordID + "/" + fileName
}

// presign returns base+p with a query string shaped like an AWS SigV4
// presigned URL's, signed for at.
func presign(base, p string, at time.Time) string {
	date := at.UTC().Format("20060102T150405Z")
	q := "X-Amz-Algorithm=AWS4-HMAC-SHA256" +
		"&X-Amz-Credential=" + url.QueryEscape("SIMULATOR/"+date[:8]+"/us-east-1/s3/aws4_request") +
		"&X-Amz-Date=" + date + "&X-Amz-Expires=604800&X-Amz-SignedHeaders=host" +
		"&X-Amz-Signature=" + signature(p, date)
	return strings.TrimRight(base, "/") + p + "?" + q
}

func signature(p, date string) string {
	m := hmac.New(sha256.New, []byte(storageSecret))
	m.Write([]byte(p + "\n" + date))
	return hex.EncodeToString(m.Sum(nil))
}

// Object is what the test storage holds at one path.
type Object struct {
	Size        int64
	ContentType string
	ETag        string // quoted, as S3 sends it
}

// headRefused reports whether the storage refuses HEAD for a path (403,
// as S3 does for a URL presigned for GET), so that a checker must fall
// back to a ranged GET: half the paths, fixed by the path alone.
func headRefused(p string) bool {
	h := fnv.New32a()
	h.Write([]byte(p))
	return h.Sum32()%2 == 1
}

// contentTypes are the types the storage gives files by extension.
var contentTypes = map[string]string{
	".mp4": "video/mp4", ".mkv": "video/x-matroska", ".flv": "video/x-flv",
	".hls": "application/vnd.apple.mpegurl", ".m3u8": "application/vnd.apple.mpegurl",
	".aac": "audio/aac", ".mp3": "audio/mpeg",
}

// Storage is the test storage. Its objects are fixed when it is made, so
// it is safe for concurrent use.
type Storage struct {
	objects map[string]Object
	// Requests counts the answers by kind: "HEAD", "GET range", "GET"
	// (a whole object), "refused" (a bad signature), "other".
	heads, ranged, whole, refused, other atomic.Int64
}

// NewStorage returns a storage holding the objects recs uploaded: every
// file whose upload RC reports, except those of the fault absent, with
// StoredSize bytes.
func NewStorage(recs []Recording) *Storage {
	s := &Storage{objects: map[string]Object{}}
	for _, rec := range recs {
		for _, f := range rec.Files {
			if !rec.uploadSent(f) || f.Absent {
				continue
			}
			p := ObjectPath(rec.RecordID, f.Name)
			ct := contentTypes[path.Ext(f.Name)]
			if ct == "" {
				ct = "application/octet-stream"
			}
			sum := sha256.Sum256(fmt.Appendf(nil, "%s %d", p, f.StoredSize))
			s.objects[p] = Object{Size: f.StoredSize, ContentType: ct, ETag: `"` + hex.EncodeToString(sum[:16]) + `"`}
		}
	}
	return s
}

// Object returns the object at the URL path p.
func (s *Storage) Object(p string) (Object, bool) {
	o, ok := s.objects[p]
	return o, ok
}

// Len is how many objects the storage holds.
func (s *Storage) Len() int { return len(s.objects) }

// StorageRequests counts what a storage was asked.
type StorageRequests struct {
	Head    int64 `json:"head"`
	Ranged  int64 `json:"rangedGet"`
	Whole   int64 `json:"wholeGet"` // GETs without a Range: a checker should send none
	Refused int64 `json:"refused"`  // unsigned or wrongly signed
	Other   int64 `json:"other"`
}

// Requests returns the counts so far.
func (s *Storage) Requests() StorageRequests {
	return StorageRequests{s.heads.Load(), s.ranged.Load(), s.whole.Load(), s.refused.Load(), s.other.Load()}
}

// s3Error writes an S3 error answer; HEAD answers carry no body.
func s3Error(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		fmt.Fprintf(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s</Message><Resource>%s</Resource></Error>\n",
			code, msg, xmlText(r.URL.Path))
	}
}

func xmlText(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// ServeHTTP answers HEAD and GET (ranges included) for the objects, 404
// NoSuchKey for others, 403 for a URL whose signature does not match its
// path, and 405 for other methods.
func (s *Storage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodHead && r.Method != http.MethodGet {
		s.other.Add(1)
		w.Header().Set("Allow", "GET, HEAD")
		s3Error(w, r, http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.")
		return
	}
	q := r.URL.Query()
	sig, date := q.Get("X-Amz-Signature"), q.Get("X-Amz-Date")
	if sig == "" || !hmac.Equal([]byte(sig), []byte(signature(r.URL.Path, date))) {
		s.refused.Add(1)
		s3Error(w, r, http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.")
		return
	}
	switch {
	case r.Method == http.MethodHead:
		s.heads.Add(1)
		if headRefused(r.URL.Path) {
			s3Error(w, r, http.StatusForbidden, "AccessDenied", "Access Denied")
			return
		}
	case r.Header.Get("Range") != "":
		s.ranged.Add(1)
	default:
		s.whole.Add(1)
	}
	o, ok := s.objects[r.URL.Path]
	if !ok {
		s3Error(w, r, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
		return
	}
	if o.Size == 0 && r.Method == http.MethodGet && r.Header.Get("Range") != "" {
		// No byte to give: S3's InvalidRange, with the length.
		w.Header().Set("Content-Range", "bytes */0")
		s3Error(w, r, http.StatusRequestedRangeNotSatisfiable, "InvalidRange", "The requested range is not satisfiable")
		return
	}
	w.Header().Set("Content-Type", o.ContentType)
	w.Header().Set("ETag", o.ETag)
	http.ServeContent(w, r, "", time.Time{}, &pattern{size: o.Size})
}

// pattern is an object's generated content: byte i is i mod 251.
type pattern struct{ size, off int64 }

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(b)), p.size-p.off))
	for i := range n {
		b[i] = byte((p.off + int64(i)) % 251)
	}
	p.off += int64(n)
	return n, nil
}

func (p *pattern) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += p.off
	case io.SeekEnd:
		offset += p.size
	default:
		return 0, errors.New("pattern: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("pattern: negative position")
	}
	p.off = offset
	return offset, nil
}

// want is the verification a checker must come to for an object at path
// p when RC's size is rcSize (nil: RC gave none): the state, and the
// storage's last answer (status, size, type, ETag).
func (s *Storage) want(p string, rcSize *int64) wantVerification {
	o, ok := s.objects[p]
	if !ok {
		return wantVerification{State: "missing", HTTPStatus: http.StatusNotFound}
	}
	w := wantVerification{State: "verified", HTTPStatus: http.StatusOK, Size: o.Size, ContentType: o.ContentType, ETag: o.ETag}
	if headRefused(p) {
		w.HTTPStatus = http.StatusPartialContent
		if o.Size == 0 { // InvalidRange, "bytes */0"
			w.HTTPStatus, w.ContentType, w.ETag = http.StatusRequestedRangeNotSatisfiable, "application/xml", ""
		}
	}
	if rcSize != nil && *rcSize != o.Size {
		w.State = "size_mismatch"
	}
	return w
}

// wantVerification is what the oracle expects of one uploaded file's
// verification.
type wantVerification struct {
	State       string
	HTTPStatus  int
	Size        int64 // when the object is there
	ContentType string
	ETag        string
}

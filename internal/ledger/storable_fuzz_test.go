package ledger_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// FuzzStorable: whatever a body holds, a callback CheckStorable accepts
// has ids a PostgreSQL TEXT column and an index take (valid UTF-8, no
// control character, within the bounds), and TextColumn and
// PrepareRejection give text without NUL or invalid UTF-8.
func FuzzStorable(f *testing.F) {
	f.Add([]byte(`{"type":1,"appKey":"a","recordId":"r\u0000","roomId":"\u001b","errorMessage":"\u0000"}`), "v\x00\xff")
	f.Add([]byte("{\"type\":2,\"appKey\":\"a\",\"recordId\":\"\xff\xfe\",\"output\":{\"fileName\":\"\u200f\"}}"), "ok")
	f.Fuzz(func(t *testing.T, body []byte, s string) {
		cb, err := rc.Parse(body)
		if err == nil && ledger.CheckStorable(&cb) == nil {
			for _, id := range []string{cb.AppKey, cb.RecordID, cb.RoomID, cb.SessionID, cb.UserID, cb.Output.FileName} {
				if !utf8.ValidString(id) || strings.IndexFunc(id, unicode.IsControl) >= 0 || len(id) > ledger.MaxFileNameBytes {
					t.Fatalf("accepted an id a store cannot index: %q", id)
				}
			}
		}
		if tc := ledger.TextColumn(s); !utf8.ValidString(tc) || strings.IndexByte(tc, 0) >= 0 {
			t.Fatalf("TextColumn(%q) = %q", s, tc)
		}
		sr := ledger.PrepareRejection(ledger.Rejection{Message: s, Remote: s, Path: s, Reason: s, AppKey: s, Method: s,
			Header: http.Header{s: {s, s}}, Body: body})
		if !utf8.ValidString(sr.AppKey) || strings.IndexFunc(sr.AppKey, unicode.IsControl) >= 0 || len(sr.AppKey) > ledger.MaxRejectionShort+len("…(12345678 bytes)") {
			t.Fatalf("PrepareRejection kept a claimed app key that is not a bounded printable label: %q", sr.AppKey)
		}
		for _, v := range []string{sr.Message, sr.Remote, sr.Path, sr.Reason, sr.Method, string(sr.HeaderJSON)} {
			if !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 || bytes.Contains(sr.HeaderJSON, []byte(`\u0000`)) {
				t.Fatalf("PrepareRejection kept text a TEXT/JSONB column refuses: %q", v)
			}
		}
	})
}

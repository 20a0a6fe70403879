package ledgertest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/recledger/recledger/internal/ledger"
)

// Quarantine: refused requests kept, within caps.

func testQuarantine(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	ctx := context.Background()
	big := bytes.Repeat([]byte("x"), ledger.MaxQuarantineBody+100)
	for i := range 5 {
		r := ledger.Rejection{At: int64(1000 + i), Status: 401, Reason: "bad_signature", AppKey: fmt.Sprint("app", i), Message: fmt.Sprint("attempt ", i),
			Remote: "127.0.0.1:5555", Method: "POST", Path: "/v1/callbacks/recording",
			Header: http.Header{"Signature": {"***"}}, Body: []byte(`{"n":1}`), BodySize: 7}
		if i == 4 {
			r.Body, r.BodySize = big, int64(len(big))
		}
		if err := s.Quarantine(ctx, r); err != nil {
			t.Fatalf("Quarantine: %v", err)
		}
	}
	page, err := s.QuarantineList(ctx, 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 3 || page[0].Message != "attempt 4" || page[2].Message != "attempt 2" {
		t.Fatalf("newest page = %+v", page)
	}
	if len(page[0].Body) != ledger.MaxQuarantineBody || page[0].BodySize != int64(len(big)) {
		t.Errorf("kept %d of a %d-byte body (size %d), want %d", len(page[0].Body), len(big), page[0].BodySize, ledger.MaxQuarantineBody)
	}
	if page[1].Header.Get("Signature") != "***" || page[1].Remote != "127.0.0.1:5555" || page[1].Status != 401 || page[1].AppKey != "app3" {
		t.Errorf("rejection fields lost: %+v", page[1])
	}
	rest, err := s.QuarantineList(ctx, page[2].ID, 10)
	if err != nil || len(rest) != 2 || rest[0].Message != "attempt 1" {
		t.Errorf("next page = %+v, %v", rest, err)
	}
}

// testQuarantineAppKey: the app key a refused request claimed is kept, and
// one a hostile sender chose (NUL, control characters, invalid UTF-8, a
// megabyte) is stored bounded and cleaned, the same on every backend,
// beside the rest of its row.
func testQuarantineAppKey(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	ctx := context.Background()
	for _, tt := range []struct{ name, claimed, want string }{
		{"plain", "your_appkey", "your_appkey"},
		{"none", "", ""},
		{"NUL bytes", "your\x00app\x00key", "yourappkey"},
		{"log injection", "k\r\nlevel=ERROR msg=\"forged\"\x1b[2J", "klevel=ERROR msg=\"forged\"[2J"},
		{"invalid UTF-8", "k\xff\xfe", "k\uFFFD"}, // a run of bad bytes is one U+FFFD
		{"huge", strings.Repeat("k", 1<<20), strings.Repeat("k", ledger.MaxRejectionShort) + "…(1048576 bytes)"},
		{"huge of NUL", strings.Repeat("\x00", 1<<20) + "k", "k"},
	} {
		r := ledger.Rejection{At: 1000, Status: 401, Reason: "bad_signature", AppKey: tt.claimed, Message: tt.name,
			Header: http.Header{"Appkey": {tt.claimed}}, Body: []byte(`{}`)}
		if err := s.Quarantine(ctx, r); err != nil {
			t.Fatalf("%s: Quarantine: %v", tt.name, err)
		}
		got, err := s.QuarantineList(ctx, 0, 1)
		if err != nil || len(got) != 1 {
			t.Fatalf("%s: QuarantineList = %d rows, %v", tt.name, len(got), err)
		}
		if got[0].AppKey != tt.want || got[0].Message != tt.name {
			t.Errorf("%s: stored app key %q (row %q), want %q", tt.name, ledger.Clip(got[0].AppKey, 100), got[0].Message, ledger.Clip(tt.want, 100))
		}
	}
}

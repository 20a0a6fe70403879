package ledgertest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
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
		r := ledger.Rejection{At: int64(1000 + i), Status: 401, Reason: "bad_signature", Message: fmt.Sprint("attempt ", i),
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
	if page[1].Header.Get("Signature") != "***" || page[1].Remote != "127.0.0.1:5555" || page[1].Status != 401 {
		t.Errorf("rejection fields lost: %+v", page[1])
	}
	rest, err := s.QuarantineList(ctx, page[2].ID, 10)
	if err != nil || len(rest) != 2 || rest[0].Message != "attempt 1" {
		t.Errorf("next page = %+v, %v", rest, err)
	}
}

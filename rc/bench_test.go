package rc_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/recledger/recledger/rc"
)

func BenchmarkParse(b *testing.B) {
	body := seedBody(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rc.Parse(body); err != nil {
			b.Fatal(err)
		}
	}
}

// signedPool signs n requests for body with distinct nonces, as RC's
// deliveries would arrive; the benchmarks cycle through them.
func signedPool(b *testing.B, body []byte, n int) []*http.Request {
	reqs := make([]*http.Request, n)
	for i := range reqs {
		req := httptest.NewRequest(http.MethodPost, "/v1/callbacks/recording", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		s := rc.Signer{AppKey: testApp, Secret: testSecret, Now: fixedClock(testNow), Nonce: func() string { return strconv.Itoa(i) }}
		s.Apply(req, s.Sign())
		reqs[i] = req
	}
	return reqs
}

// BenchmarkVerify verifies signed requests with the default in-memory replay
// memory. The pool holds 16384 distinct signatures: the first pass inserts
// them, later passes find them remembered (redeliveries), both map work.
func BenchmarkVerify(b *testing.B) {
	body := seedBody(b)
	v := newTestVerifier(b, fixedClock(testNow))
	reqs := signedPool(b, body, 1<<14)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := v.Verify(reqs[i&(len(reqs)-1)], body); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkParseAndVerify is the whole per-callback cost of this package on
// the ingest path: Verify then Parse.
func BenchmarkParseAndVerify(b *testing.B) {
	body := seedBody(b)
	v := newTestVerifier(b, fixedClock(testNow))
	reqs := signedPool(b, body, 1<<14)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := v.Verify(reqs[i&(len(reqs)-1)], body); err != nil {
			b.Fatal(err)
		}
		if _, err := rc.Parse(body); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkSign(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		rc.Sign(testSecret, "14314", "1408710653000")
	}
}

func BenchmarkParseFileName(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := rc.ParseFileNameUser("1K6-Q3uj6w7cfbGSq0ahA9_1775_123456_RongCloudRTC_1577616009233.mkv", "1K6-Q3uj6w7cfbGSq0ahA9", "1775", "123456"); !ok {
			b.Fatal("not parsed")
		}
	}
}

// BenchmarkParseAndVerifyCompact is the same on the seed without white
// space, as a sender that does not pretty-print would post it.
func BenchmarkParseAndVerifyCompact(b *testing.B) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, seedBody(b)); err != nil {
		b.Fatal(err)
	}
	body := buf.Bytes()
	v := newTestVerifier(b, fixedClock(testNow))
	reqs := signedPool(b, body, 1<<14)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := v.Verify(reqs[i&(len(reqs)-1)], body); err != nil {
			b.Fatal(err)
		}
		if _, err := rc.Parse(body); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

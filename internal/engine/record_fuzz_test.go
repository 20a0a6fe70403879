package engine_test

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/recledger/recledger/internal/engine"
)

// FuzzDecodeRecord feeds DecodeRecord any bytes: it must not panic, must
// refuse with ErrBadRecord, and whatever it accepts must encode and decode
// to the same record. The seeds are the golden blobs of every version, a
// few random records and the committed corpus in testdata/fuzz.
func FuzzDecodeRecord(f *testing.F) {
	for _, name := range []string{"record-v1.bin", "record-v2.bin", "record-v3.bin"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	r := rand.New(rand.NewPCG(5, 6))
	for range 8 {
		rec := randomRecord(r, r.IntN(12))
		b, err := engine.EncodeRecord(&rec)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := engine.DecodeRecord(b)
		if err != nil {
			if !errors.Is(err, engine.ErrBadRecord) {
				t.Fatalf("DecodeRecord error %v is not ErrBadRecord", err)
			}
			return
		}
		again, err := engine.EncodeRecord(&rec)
		if err != nil {
			t.Fatalf("EncodeRecord of a decoded record: %v", err)
		}
		got, err := engine.DecodeRecord(again)
		if err != nil {
			t.Fatalf("DecodeRecord of a re-encoded record: %v\n%x", err, again)
		}
		if diff := cmp.Diff(rec, got); diff != "" {
			t.Fatalf("re-encoded record differs (-first decode +second):\n%s", diff)
		}
	})
}

package logbody_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/recledger/recledger/internal/logbody"
)

// FuzzDecode gives Decode any stored bytes (it must not panic, and must
// refuse with ErrBadBody) and Encode any body (Decode must give it back
// exactly).
func FuzzDecode(f *testing.F) {
	for _, name := range []string{"body-format0.bin", "body-format2.bin", "body.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, b := range heldOut(1)[:4] {
		f.Add(logbody.Encode(b))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := logbody.Decode(b); err != nil && !errors.Is(err, logbody.ErrBadBody) {
			t.Fatalf("Decode error %v is not ErrBadBody", err)
		}
		got, err := logbody.Decode(logbody.Encode(b))
		if err != nil {
			t.Fatalf("Decode(Encode(%x)): %v", b, err)
		}
		if !bytes.Equal(got, b) {
			t.Fatalf("Decode(Encode(%x)) = %x", b, got)
		}
	})
}

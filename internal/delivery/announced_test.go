package delivery_test

import (
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

var update = flag.Bool("update", false, "rewrite testdata/announced.hex (only before any record stores the format)")

// announcedState is a recording part-way (five events): started, two files created,
// one uploaded, one upload failed, a third file not yet announced.
func announcedState(t testing.TB) (ledger.State, delivery.Announced) {
	var (
		st ledger.State
		a  delivery.Announced
	)
	at := t0
	for _, cb := range []rc.Callback{
		callback(rc.TypeStart, t0, "", 200),
		callback(rc.TypeSegment, t0+1_800_000, file(0), 200),
		callback(rc.TypeUpload, t0+1_805_000, file(0), 200),
		callback(rc.TypeSegment, t0+3_600_000, file(1), 200),
		callback(rc.TypeUpload, t0+3_605_000, file(1), 500),
	} {
		at += 1000
		st = ledger.Apply(st, cb, at)
		delivery.Rules{}.Derive(&st, &a, at)
	}
	st = ledger.Apply(st, callback(rc.TypeSegment, t0+5_400_000, file(2), 200), at+1000) // not derived yet
	return st, a
}

// TestAnnouncedRoundTrip: the compact form reads back to the same
// Announced, and holds what the golden file holds (a change to the
// format must be a new record version, not a silent one).
func TestAnnouncedRoundTrip(t *testing.T) {
	st, a := announcedState(t)
	if a.Count != 5 {
		t.Fatalf("setup: %d events announced, want 5", a.Count)
	}
	b := a.AppendBinary([]byte{0xEE}, &st)[1:]
	back, n, err := delivery.ParseAnnounced(append(b, 0xFF), &st)
	if err != nil || n != len(b) {
		t.Fatalf("ParseAnnounced: %d of %d bytes, %v", n, len(b), err)
	}
	if diff := cmp.Diff(a, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	golden := filepath.Join("testdata", "announced.hex")
	if *update {
		if err := os.WriteFile(golden, []byte(hex.EncodeToString(b)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(b); got != strings.TrimSpace(string(want)) {
		t.Errorf("compact form %s, golden %s", got, want)
	}
	// Derive goes on from what was read back as from the original.
	r := delivery.Rules{Settle: time.Minute}
	got, want2 := r.Derive(&st, &back, t0+10_000), r.Derive(&st, &a, t0+10_000)
	if diff := cmp.Diff(want2, got); diff != "" {
		t.Errorf("deriving from the read-back (-original +read back):\n%s", diff)
	}
}

// TestVerificationFlags: the verifier's types (file_verified,
// file_missing) take new bits of the file byte: the golden bytes, written
// before they existed, read as they did (no file verified or missing),
// and a file's verification events round trip on their own bits.
func TestVerificationFlags(t *testing.T) {
	st, a := announcedState(t)
	golden, err := os.ReadFile(filepath.Join("testdata", "announced.hex"))
	if err != nil {
		t.Fatal(err)
	}
	old, err := hex.DecodeString(strings.TrimSpace(string(golden)))
	if err != nil {
		t.Fatal(err)
	}
	back, _, err := delivery.ParseAnnounced(old, &st)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, back); diff != "" {
		t.Errorf("bytes stored before the verification types (-want +got):\n%s", diff)
	}
	a.Files[file(0)][delivery.FileVerified] = true
	a.Files[file(1)][delivery.FileMissing] = true
	a.Count += 2
	b := a.AppendBinary(nil, &st)
	// count, recording byte, then the files in name order: file(0),
	// file(1), file(2).
	if want := []byte{7, 0x01, 0x01 | 0x04 | 0x08, 0x01 | 0x02 | 0x10, 0x00}; string(b) != string(want) {
		t.Errorf("compact form %x, want %x", b, want)
	}
	back, _, err = delivery.ParseAnnounced(b, &st)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, back); diff != "" {
		t.Errorf("round trip with verification events (-want +got):\n%s", diff)
	}
}

func TestParseAnnouncedRefuses(t *testing.T) {
	st, a := announcedState(t)
	b := a.AppendBinary(nil, &st)
	for name, bad := range map[string][]byte{
		"empty":                   nil,
		"a count that never ends": {0x80, 0x80, 0x80},
		"no file bytes":           b[:2],
		"one file byte short":     b[:len(b)-1],
		"a huge count":            {0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0, 0, 0},
	} {
		if _, _, err := delivery.ParseAnnounced(bad, &st); !errors.Is(err, delivery.ErrBadAnnounced) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzParseAnnounced: no bytes make ParseAnnounced panic; what it reads
// writes back to the bytes it read, or to the same Announced.
func FuzzParseAnnounced(f *testing.F) {
	st, a := announcedState(f)
	f.Add(a.AppendBinary(nil, &st))
	f.Add([]byte{0, 0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, n, err := delivery.ParseAnnounced(b, &st)
		if err != nil {
			return
		}
		again, _, err := delivery.ParseAnnounced(got.AppendBinary(nil, &st), &st)
		if err != nil || !cmp.Equal(got, again) || n > len(b) {
			t.Fatalf("%x: read %+v, which writes back to %+v (%v)", b, got, again, err)
		}
	})
}

package logbody_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/klauspost/compress/s2"

	"github.com/recledger/recledger/internal/logbody"
)

var update = flag.Bool("update", false, "rewrite testdata/body-format2.bin (only before any row uses format 2)")

func roundTrip(t *testing.T, body []byte) []byte {
	t.Helper()
	stored := logbody.Encode(body)
	got, err := logbody.Decode(stored)
	if err != nil {
		t.Fatalf("Decode(Encode(%d bytes)): %v", len(body), err)
	}
	if !bytes.Equal(got, body) {
		t.Fatalf("Decode(Encode(body)) differs:\n got %q\nwant %q", got, body)
	}
	return stored
}

func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 3000)
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	sim := heldOut(3)
	tests := []struct {
		name   string
		body   []byte
		format byte
	}{
		{"empty", []byte{}, logbody.FormatRaw},
		{"one byte", []byte("{"), logbody.FormatRaw},
		{"a stored format 2 body as a body", []byte{2, 2, 0x04, '{', '}'}, logbody.FormatRaw},
		{"random bytes", random, logbody.FormatRaw},
		{"simulator start", sim[0], logbody.FormatDict2},
		{"simulator last", sim[len(sim)-1], logbody.FormatDict2},
		{"not JSON but repetitive", bytes.Repeat([]byte("abc\x00"), 1000), logbody.FormatDict2},
		{"over MaxBody", bytes.Repeat([]byte("{}"), logbody.MaxBody/2+1), logbody.FormatRaw},
		{"at MaxBody", bytes.Repeat([]byte("{}"), logbody.MaxBody/2), logbody.FormatDict2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stored := roundTrip(t, tt.body)
			if stored[0] != tt.format {
				t.Errorf("stored in format %d, want %d", stored[0], tt.format)
			}
			if tt.format == logbody.FormatDict2 && len(stored) >= len(tt.body) {
				t.Errorf("compressed %d bytes to %d", len(tt.body), len(stored))
			}
		})
	}
	for _, bare := range []string{"{}", " {}", "\t{}", "\n{}", "\r\n{\"type\":1}"} {
		if got, err := logbody.Decode([]byte(bare)); err != nil || string(got) != bare {
			t.Errorf("Decode(%q) of a body stored bare = %q, %v; want it back", bare, got, err)
		}
	}
	if got := logbody.Encode(nil); !bytes.Equal(got, []byte{logbody.FormatRaw}) {
		t.Errorf("Encode(nil) = %x, want 00", got)
	}
}

// TestCompressionPays holds the figure the disk goal rests on: simulator
// bodies the dictionary was not built from come to well under half their
// size (41% when this was written).
func TestCompressionPays(t *testing.T) {
	raw, stored := 0, 0
	for _, b := range heldOut(500) {
		raw += len(b)
		stored += len(roundTrip(t, b))
	}
	t.Logf("%d bytes stored as %d (%.1f%%)", raw, stored, 100*float64(stored)/float64(raw))
	if stored*100 > raw*45 {
		t.Errorf("%d bytes stored as %d, want at most 45%%", raw, stored)
	}
}

// TestOldRowsStillLoad decodes a stored body of each format, and a bare
// body as rows were stored before formats. The format 2 file pins the
// dictionary and the block layout; it is rewritten only with -update,
// which is right only before any row used format 2.
func TestOldRowsStillLoad(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("testdata", "body.json"))
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(filepath.Join("testdata", "body-format2.bin"), logbody.Encode(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"body.json", "body-format0.bin", "body-format2.bin"} { // body.json: a row stored bare
		stored, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := logbody.Decode(stored)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(got, body) {
			t.Errorf("%s decodes to %q, want testdata/body.json", name, got)
		}
	}
}

// claims is a stored format 2 body whose block says it decodes to n
// bytes, followed by tail.
func claims(n uint64, tail ...byte) []byte {
	return append(binary.AppendUvarint([]byte{logbody.FormatDict2}, n), tail...)
}

func TestDecodeRejects(t *testing.T) {
	valid := logbody.Encode(heldOut(1)[0])
	d := s2.NewDict(logbody.Dictionary(logbody.FormatDict2))
	// A real block of one byte over MaxBody: it would decode, but Encode
	// never writes it, and a row that claims it is damaged.
	overMax := append([]byte{logbody.FormatDict2}, d.Encode(nil, bytes.Repeat([]byte("{}"), logbody.MaxBody/2+1))...)
	tests := []struct {
		name   string
		stored []byte
	}{
		{"empty", nil},
		{"unknown format", []byte{3, '{', '}'}},
		{"format 1, zstd, retired", []byte{1, 0x20, 0x01, 0x09, 0x00, '{', '}'}},
		{"not a body, not a format", []byte("[1]")},
		{"format 2 without a block", []byte{logbody.FormatDict2}},
		{"truncated block", valid[:len(valid)-3]},
		{"damaged block", append(append([]byte{}, valid[:8]...), bytes.Repeat([]byte{0xff}, len(valid)-8)...)},
		{"length longer than the block", claims(401, valid[3:]...)},
		{"length not a varint", append([]byte{logbody.FormatDict2}, bytes.Repeat([]byte{0x80}, 6)...)},
		{"claims a terabyte", claims(1<<40, 0x0c, '{', '}')},
		{"claims 4 GiB", claims(1<<32-1, 0x0c, '{', '}')},
		{"claims 64 MiB", claims(64<<20, 0x0c, '{', '}')},
		{"claims one byte over MaxBody", claims(logbody.MaxBody+1, 0x0c, '{', '}')},
		{"decodes past MaxBody", overMax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			got, err := logbody.Decode(tt.stored)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, logbody.ErrBadBody) {
				t.Errorf("Decode = %d bytes, %v; want ErrBadBody", len(got), err)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 2*logbody.MaxBody {
				t.Errorf("Decode allocated %d bytes for %d stored", alloc, len(tt.stored))
			}
		})
	}
	if len(overMax) > logbody.MaxBody/8 {
		t.Errorf("the over-MaxBody block is %d bytes: it should be a small row claiming much", len(overMax))
	}
}

// TestConcurrent shares the one dictionary between goroutines,
// as the stores' writers and readers will (run it with -race).
func TestConcurrent(t *testing.T) {
	bodies := heldOut(20)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < len(bodies); i += 2 {
				got, err := logbody.Decode(logbody.Encode(bodies[i]))
				if err == nil && !bytes.Equal(got, bodies[i]) {
					err = fmt.Errorf("body %d came back as %q", i, got)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

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

	"github.com/recledger/recledger/internal/logbody"
)

var update = flag.Bool("update", false, "rewrite testdata/body-format1.bin (only before any row uses format 1)")

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
		{"a leading format byte", []byte{1, 0x28, 0xb5, 0x2f, 0xfd}, logbody.FormatRaw},
		{"random bytes", random, logbody.FormatRaw},
		{"simulator start", sim[0], logbody.FormatDict1},
		{"simulator last", sim[len(sim)-1], logbody.FormatDict1},
		{"not JSON but repetitive", bytes.Repeat([]byte("abc\x00"), 1000), logbody.FormatDict1},
		{"over MaxBody", bytes.Repeat([]byte("{}"), logbody.MaxBody/2+1), logbody.FormatRaw},
		{"at MaxBody", bytes.Repeat([]byte("{}"), logbody.MaxBody/2), logbody.FormatDict1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stored := roundTrip(t, tt.body)
			if stored[0] != tt.format {
				t.Errorf("stored in format %d, want %d", stored[0], tt.format)
			}
			if tt.format == logbody.FormatDict1 && len(stored) >= len(tt.body) {
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
// bodies the dictionary was not trained on come to well under half their
// size.
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
// body as rows were stored before formats. The format 1
// file pins the dictionary and the frame layout; it is rewritten only with
// -update, which is right only before any row used format 1.
func TestOldRowsStillLoad(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("testdata", "body.json"))
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(filepath.Join("testdata", "body-format1.bin"), logbody.Encode(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"body.json", "body-format0.bin", "body-format1.bin"} { // body.json: a row stored bare
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

// frame builds a stored format 1 body by hand: a zstd frame header (no
// magic) with the given content size, and blocks.
func frame(contentSize uint64, blocks ...[]byte) []byte {
	b := []byte{logbody.FormatDict1}
	if contentSize > 0 {
		b = append(b, 0xe0) // 8-byte content size, single segment, no dictionary id
		b = binary.LittleEndian.AppendUint64(b, contentSize)
	} else {
		b = append(b, 0x00, 0x50) // no content size; window descriptor: 1 MiB
	}
	for _, blk := range blocks {
		b = append(b, blk...)
	}
	return b
}

// rleBlock is a zstd block repeating one byte n times (n < 2^21).
func rleBlock(n int, last bool) []byte {
	h := uint32(n)<<3 | 1<<1 // type RLE
	if last {
		h |= 1
	}
	return []byte{byte(h), byte(h >> 8), byte(h >> 16), 'x'}
}

func TestDecodeRejects(t *testing.T) {
	valid := logbody.Encode(heldOut(1)[0])
	var manyRLE [][]byte
	for i := range 100 { // 100 blocks of 127 KiB: 12.4 MiB from 400 bytes
		manyRLE = append(manyRLE, rleBlock(127<<10, i == 99))
	}
	tests := []struct {
		name   string
		stored []byte
	}{
		{"empty", nil},
		{"unknown format", []byte{2, '{', '}'}},
		{"not a body, not a format", []byte("[1]")},
		{"format 1 without a frame", []byte{logbody.FormatDict1}},
		{"truncated frame", valid[:len(valid)-3]},
		{"damaged frame", append(append([]byte{}, valid[:8]...), bytes.Repeat([]byte{0xff}, len(valid)-8)...)},
		{"claims a terabyte", frame(1<<40, rleBlock(10, true))},
		{"expands past MaxBody", frame(0, manyRLE...)},
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
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8*logbody.MaxBody {
				t.Errorf("Decode allocated %d bytes for %d stored", alloc, len(tt.stored))
			}
		})
	}
}

// TestConcurrent shares the one encoder and decoder between goroutines,
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

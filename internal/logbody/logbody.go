// Package logbody is the stored form of callback bodies: the log keeps
// every body byte for byte, and most of a body is the same field names and
// value shapes as every other, so bodies are compressed with zstd and a
// dictionary trained on RC-shaped callbacks (the simulator's), built in.
//
// A stored body starts with a format byte. Format 0 is the body itself,
// what Encode writes when compression does not pay. Rows written before
// this package hold a bare body, which rc.Parse accepted and so starts
// with '{' or JSON white space: Decode gives those back as they are, so
// format bytes are never one of those five.
//
// Format 1 is a zstd frame made with dict1.zdict (16 KiB, trained by
// TestWriteDictionary). A dictionary never changes once rows use it
// (training is not reproducible byte for byte, so the file is the
// dictionary, and TestDictionaryFrozen holds its hash); a better one gets a
// new file and a new format byte, and Decode keeps reading the old ones.
//
// On simulator bodies it has not seen, format 1 stores about 39% of the
// bytes (401 bytes to 155 on average); see the package's benchmarks.
package logbody

import (
	_ "embed"
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// The formats: the first byte of a stored body.
const (
	FormatRaw   byte = 0 // the body follows as it is
	FormatDict1 byte = 1 // a zstd frame made with dict1.zdict follows, without its magic number and checksum
)

// MaxBody is the largest body Encode compresses; larger ones (ingest
// refuses bodies over 1 MiB unless configured otherwise) are stored raw, so
// Decode never has to expand a frame past it, whatever a damaged row
// claims: a hostile row costs a few MaxBody of memory, not gigabytes.
const MaxBody = 1 << 20

// ErrBadBody is returned by Decode for bytes it cannot read.
var ErrBadBody = errors.New("bad stored body")

// dict1 is format 1's dictionary, trained on simulator bodies by
// TestWriteDictionary; TestDictionaryFrozen holds it still.
//
//go:embed dict1.zdict
var dict1 []byte

// zstdMagic starts every zstd frame; stored frames leave it out (the
// format byte says what follows), which saves 4 bytes a row.
var zstdMagic = [4]byte{0x28, 0xb5, 0x2f, 0xfd}

// coders are the encoder and decoder of format 1. klauspost's EncodeAll
// and DecodeAll are safe for concurrent use and keep their own pools, so
// one of each serves every caller; they are built on first use.
var coders = sync.OnceValues(func() (*coderPair, error) {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderDict(dict1),
		zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithEncoderCRC(false), // the database keeps its own checksums
	)
	if err != nil {
		return nil, fmt.Errorf("zstd encoder: %w", err)
	}
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderDicts(dict1),
		zstd.WithDecoderMaxMemory(MaxBody),
		zstd.WithDecoderMaxWindow(MaxBody),
	)
	if err != nil {
		return nil, fmt.Errorf("zstd decoder: %w", err)
	}
	return &coderPair{enc: enc, dec: dec}, nil
})

type coderPair struct {
	enc *zstd.Encoder
	dec *zstd.Decoder
}

// Encode returns the stored form of body: compressed when that makes it
// smaller, else the body behind a format 0 byte.
func Encode(body []byte) []byte {
	if len(body) > 0 && len(body) <= MaxBody {
		if c, err := coders(); err == nil {
			out := c.enc.EncodeAll(body, make([]byte, 1, 1+len(body)))
			out[0] = FormatDict1
			if len(out) > 1+len(zstdMagic) && len(out)-len(zstdMagic) < 1+len(body) {
				// Drop the magic number right after the format byte.
				return append(out[:1], out[1+len(zstdMagic):]...)
			}
		}
		// An encoder that cannot be built (the embedded dictionary does
		// not load) leaves bodies raw: still stored, just bigger.
	}
	out := make([]byte, 1+len(body))
	out[0] = FormatRaw
	copy(out[1:], body)
	return out
}

// Decode returns the body stored as stored, which is Encode's output or a
// bare body stored before formats. A format 0 or bare body shares
// stored's memory.
func Decode(stored []byte) ([]byte, error) {
	if len(stored) == 0 {
		return nil, fmt.Errorf("empty: %w", ErrBadBody)
	}
	switch stored[0] {
	case FormatRaw:
		return stored[1:], nil
	case '{', ' ', '\t', '\n', '\r':
		return stored, nil // a body stored bare, before formats
	case FormatDict1:
		c, err := coders()
		if err != nil {
			return nil, fmt.Errorf("format 1: %w", err)
		}
		frame := make([]byte, 0, len(zstdMagic)+len(stored)-1)
		frame = append(append(frame, zstdMagic[:]...), stored[1:]...)
		body, err := c.dec.DecodeAll(frame, nil)
		if err != nil {
			return nil, fmt.Errorf("format 1: %w: %w", ErrBadBody, err)
		}
		return body, nil
	}
	return nil, fmt.Errorf("format %d: %w", stored[0], ErrBadBody)
}

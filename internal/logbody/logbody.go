// Package logbody is the stored form of callback bodies: the log keeps
// every body byte for byte, and most of a body is the same field names and
// value shapes as every other, so bodies are compressed with s2 (LZ77
// without entropy coding: 1.5 to 2 µs a body, where zstd took 18-22 µs of
// the acknowledged path's 100 µs budget) against a dictionary of RC-shaped
// callbacks (the simulator's), built in.
//
// A stored body starts with a format byte. Format 0 is the body itself,
// what Encode writes when compression does not pay. Rows written before
// this package hold a bare body, which rc.Parse accepted and so starts
// with '{' or JSON white space: Decode gives those back as they are, so
// format bytes are never one of those five.
//
// Format 2 is an s2 block made with dict2.s2dict: one example of each body
// shape the simulator sends (about 20 KiB; see TestWriteDictionary). The
// file holds the dictionary serialized (its repeat offset, then its bytes),
// so nothing in it depends on how a library version would pick the repeat
// offset. A dictionary never changes once rows use it (TestDictionaryFrozen
// holds its hash); a better one gets a new file and a new format byte, and
// Decode keeps reading the old ones. Format 1, zstd with a trained
// dictionary, was never stored outside tests and is retired: Decode
// refuses it like any unknown format.
//
// s2 blocks carry no checksum (the database keeps its own): Decode
// catches a damaged block only when it no longer parses.
//
// On simulator bodies it has not seen, format 2 stores about 41% of the
// bytes (401 bytes to 165 on average); see the package's benchmarks.
package logbody

import (
	_ "embed"
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/compress/s2"
)

// The formats: the first byte of a stored body.
const (
	FormatRaw   byte = 0 // the body follows as it is
	FormatDict2 byte = 2 // an s2 block made with dict2.s2dict follows
)

// MaxBody is the largest body Encode compresses; larger ones (ingest
// refuses bodies over 1 MiB unless configured otherwise) are stored raw, so
// Decode refuses a block that claims more, whatever a damaged row says: a
// hostile row costs at most MaxBody of memory, not gigabytes.
const MaxBody = 1 << 20

// ErrBadBody is returned by Decode for bytes it cannot read.
var ErrBadBody = errors.New("bad stored body")

// dict2File is format 2's dictionary as s2.Dict.Bytes serializes it,
// written by TestWriteDictionary; TestDictionaryFrozen holds it still.
//
//go:embed dict2.s2dict
var dict2File []byte

// dict2 is format 2's dictionary, loaded on first use; nil if the file
// does not load. Its Encode and Decode are safe for concurrent use (the
// dictionary's hash table is built once, under a sync.Once).
var dict2 = sync.OnceValue(func() *s2.Dict { return s2.NewDict(dict2File) })

// Encode returns the stored form of body: compressed when that makes it
// smaller, else the body behind a format 0 byte.
func Encode(body []byte) []byte {
	if len(body) > 0 && len(body) <= MaxBody {
		if d := dict2(); d != nil {
			out := make([]byte, 1+s2.MaxEncodedLen(len(body)))
			out[0] = FormatDict2
			if block := d.Encode(out[1:], body); len(block) < len(body) {
				return out[:1+len(block)] // block is out[1:]: it fitted
			}
		}
		// A dictionary that does not load leaves bodies raw: still
		// stored, just bigger.
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
	case FormatDict2:
		d := dict2()
		if d == nil {
			return nil, errors.New("format 2: dictionary dict2.s2dict does not load")
		}
		block := stored[1:]
		// The block starts with its decoded length, and Dict.Decode
		// allocates that much before reading on: check it first.
		n, err := s2.DecodedLen(block)
		if err != nil {
			return nil, fmt.Errorf("format 2: %w: %w", ErrBadBody, err)
		}
		if n > MaxBody {
			return nil, fmt.Errorf("format 2: claims %d bytes, over MaxBody: %w", n, ErrBadBody)
		}
		body, err := d.Decode(nil, block)
		if err != nil {
			return nil, fmt.Errorf("format 2: %w: %w", ErrBadBody, err)
		}
		return body, nil
	}
	return nil, fmt.Errorf("format %d: %w", stored[0], ErrBadBody)
}

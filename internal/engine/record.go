package engine

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// Record is what the engine keeps of one recording: the folded state, the
// seq of its first event (the page order), and its event index: every
// logged callback of it, duplicates included, with the identity hash that
// tells a redelivery from a new callback.
type Record struct {
	State    ledger.State
	FirstSeq int64
	Events   []EventRef
	// Announced is what the recording has told destinations
	// (delivery.Rules.Derive), kept so no event is announced twice.
	Announced delivery.Announced
}

// EventRef is one logged callback of a recording.
type EventRef struct {
	Seq       int64
	Identity  uint64 // the first 8 bytes of ledger.IdentityHash
	Duplicate bool
}

// Identity is the hash EventRef keeps of a callback's identity: 64 bits,
// compared only among one recording's callbacks.
func Identity(k rc.Key) uint64 { return binary.BigEndian.Uint64(ledger.IdentityHash(k)) }

// The stored encodings. Version 1 (ledger.State as JSON, starting with '{')
// and version 2 (a version byte, then JSON) were written by earlier builds
// and are still read; version 3 (record_v3.go) is a binary form about a
// tenth of version 2's size; EncodeRecord writes version 4, which is
// version 3 followed by what the recording announced
// (delivery.Announced.AppendBinary). A version 3 record reads as having
// announced nothing, so a recording stored before outbound delivery
// announces its story once, the next time a callback touches it.
const (
	recordV2 = 2
	recordV3 = 3
	recordV4 = 4
)

type recordJSON struct {
	State    ledger.State `json:"s"`
	FirstSeq int64        `json:"f"`
	Events   []EventRef   `json:"e"`
}

// EncodeRecord returns the stored form of r: version 4. The same record
// always gives the same bytes (files go in name order), so a rebuild can be
// compared with the live projection byte for byte.
func EncodeRecord(r *Record) ([]byte, error) {
	b := encodeV3(r)
	b[0] = recordV4
	return r.Announced.AppendBinary(b, &r.State), nil
}

// ErrBadRecord is returned by DecodeRecord for bytes it cannot read.
var ErrBadRecord = errors.New("bad record encoding")

// DecodeRecord reads a stored record of any version. A version 1 blob
// (ledger.State as JSON, written before the engine) gives the state without
// an event index.
func DecodeRecord(b []byte) (Record, error) {
	if len(b) == 0 {
		return Record{}, fmt.Errorf("empty: %w", ErrBadRecord)
	}
	switch b[0] {
	case '{': // version 1
		var st ledger.State
		if err := json.Unmarshal(b, &st); err != nil {
			return Record{}, fmt.Errorf("%w: %w", ErrBadRecord, err)
		}
		return Record{State: st}, nil
	case recordV2:
		var r recordJSON
		if err := json.Unmarshal(b[1:], &r); err != nil {
			return Record{}, fmt.Errorf("%w: %w", ErrBadRecord, err)
		}
		return Record{State: r.State, FirstSeq: r.FirstSeq, Events: r.Events}, nil
	case recordV3, recordV4:
		r, err := decodeV3(b[1:], b[0] == recordV4)
		if err != nil {
			return Record{}, fmt.Errorf("version %d: %w", b[0], err)
		}
		return r, nil
	}
	return Record{}, fmt.Errorf("version %d: %w", b[0], ErrBadRecord)
}

// DecodeState reads the state of a stored record.
func DecodeState(b []byte) (ledger.State, error) {
	r, err := DecodeRecord(b)
	return r.State, err
}

// sortedNames returns the names of files in order.
func sortedNames(files map[string]ledger.FileState) []string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// nameIndex is the position of name in sorted names, or -1.
func nameIndex(names []string, name string) int {
	if i, ok := slices.BinarySearch(names, name); ok {
		return i
	}
	return -1
}

// sharedPrefix is the length of the common prefix of a and b.
func sharedPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// splitURL finds the file's name inside its URL (storage URLs usually end
// with it), so the name need not be stored twice.
func splitURL(url, name string) (before, after string, ok bool) {
	if name == "" {
		return "", "", false
	}
	i := strings.Index(url, name)
	if i < 0 {
		return "", "", false
	}
	return url[:i], url[i+len(name):], true
}

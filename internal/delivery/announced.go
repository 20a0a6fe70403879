package delivery

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/recledger/recledger/internal/ledger"
)

// The compact form of Announced, kept in the engine's record beside the
// state it was derived from: the count, a byte of recording-wide event
// types, then one byte of file event types per file of the state, the
// files in name order, so file names (already in the state) are not
// stored twice. Each type has a fixed bit (flagBits), apart from the
// order of Types, so that adding a type (as file_verified and
// file_missing were) leaves stored records meaning what they meant.

// ErrBadAnnounced is returned by ParseAnnounced for bytes it cannot read.
var ErrBadAnnounced = errors.New("bad announced events")

// flagBits are the types' bits: recording-wide types in the first byte,
// file types in the file bytes. Never renumber one; a new type takes a
// free bit (three left in each byte).
var flagBits = map[Type]byte{
	Started: 1 << 0, Ended: 1 << 1, Failed: 1 << 2, Completed: 1 << 3, UploadOverdue: 1 << 4,
	FileCreated: 1 << 0, UploadFailed: 1 << 1, FileUploaded: 1 << 2, FileVerified: 1 << 3, FileMissing: 1 << 4,
}

func flags(done map[Type]bool) byte {
	var b byte
	for t, ok := range done {
		if ok {
			b |= flagBits[t]
		}
	}
	return b
}

// unflags reads a byte of the given types' bits; bits of no type are
// ignored (a later version's types).
func unflags(b byte, types []Type) map[Type]bool {
	var out map[Type]bool
	for _, t := range types {
		if b&flagBits[t] != 0 {
			if out == nil {
				out = map[Type]bool{}
			}
			out[t] = true
		}
	}
	return out
}

var (
	recordingTypes = []Type{Started, Ended, Failed, Completed, UploadOverdue}
	fileTypes      = []Type{FileCreated, UploadFailed, FileUploaded, FileVerified, FileMissing}
)

// AppendBinary appends a's compact form to b; st is the state a was
// derived from (what it says of files not in st, which Derive never
// announces, is not kept).
func (a *Announced) AppendBinary(b []byte, st *ledger.State) []byte {
	b = binary.AppendUvarint(b, uint64(a.Count))
	b = append(b, flags(a.Done))
	for _, name := range sortedNames(st) {
		b = append(b, flags(a.Files[name]))
	}
	return b
}

// ParseAnnounced reads what AppendBinary wrote for the state st and
// returns it with the number of bytes read.
func ParseAnnounced(b []byte, st *ledger.State) (Announced, int, error) {
	count, n := binary.Uvarint(b)
	if n <= 0 || count > 1<<31 {
		return Announced{}, 0, fmt.Errorf("%w: count", ErrBadAnnounced)
	}
	names := sortedNames(st)
	if len(b) < n+1+len(names) {
		return Announced{}, 0, fmt.Errorf("%w: %d bytes for %d files", ErrBadAnnounced, len(b)-n, len(names))
	}
	a := Announced{Count: int(count), Done: unflags(b[n], recordingTypes)}
	n++
	for _, name := range names {
		if f := unflags(b[n], fileTypes); f != nil {
			if a.Files == nil {
				a.Files = map[string]map[Type]bool{}
			}
			a.Files[name] = f
		}
		n++
	}
	return a, n, nil
}

func sortedNames(st *ledger.State) []string {
	names := make([]string, 0, len(st.Files))
	for name := range st.Files {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Clone returns a copy of a that shares no map with it: a projection step
// changes its copy while the cached record stays as stored.
func (a Announced) Clone() Announced {
	c := Announced{Count: a.Count}
	if a.Done != nil {
		c.Done = maps.Clone(a.Done)
	}
	if a.Files != nil {
		c.Files = make(map[string]map[Type]bool, len(a.Files))
		for name, f := range a.Files {
			c.Files[name] = maps.Clone(f)
		}
	}
	return c
}

package delivery

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/recledger/recledger/internal/ledger"
)

// The compact form of Announced, kept in the engine's record beside the
// state it was derived from: the count, a byte of recording-wide types,
// then one byte of file types per file of the state, the files in name
// order, so file names (already in the state) are not stored twice. A
// bit n of a byte stands for Types[n].

// ErrBadAnnounced is returned by ParseAnnounced for bytes it cannot read.
var ErrBadAnnounced = errors.New("bad announced events")

func bit(t Type) byte { return 1 << slices.Index(Types, t) }

func flags(done map[Type]bool) byte {
	var b byte
	for t, ok := range done {
		if ok {
			b |= bit(t)
		}
	}
	return b
}

func unflags(b byte) map[Type]bool {
	if b == 0 {
		return nil
	}
	out := map[Type]bool{}
	for i, t := range Types {
		if b&(1<<i) != 0 {
			out[t] = true
		}
	}
	return out
}

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
	a := Announced{Count: int(count), Done: unflags(b[n])}
	n++
	for _, name := range names {
		if f := unflags(b[n]); f != nil {
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

package delivery

import (
	"slices"
	"testing"
)

// TestFlagBits: every type has a bit in exactly one of the two bytes, and
// no two types of a byte share one.
func TestFlagBits(t *testing.T) {
	all := append(slices.Clone(recordingTypes), fileTypes...)
	slices.Sort(all)
	types := slices.Clone(Types)
	slices.Sort(types)
	if !slices.Equal(all, types) {
		t.Fatalf("recording and file types %v, want each of %v once", all, types)
	}
	for _, group := range [][]Type{recordingTypes, fileTypes} {
		var used byte
		for _, ty := range group {
			b := flagBits[ty]
			if b == 0 || b&(b-1) != 0 || used&b != 0 {
				t.Errorf("%s: bit %08b (used %08b)", ty, b, used)
			}
			used |= b
		}
	}
}

// TestUnknownBitsIgnored: bits a later version may set read as nothing.
func TestUnknownBitsIgnored(t *testing.T) {
	if got := unflags(0xff, fileTypes); len(got) != len(fileTypes) {
		t.Errorf("all bits of a file byte read as %v", got)
	}
	if got := unflags(0xe0, recordingTypes); got != nil {
		t.Errorf("bits of no recording type read as %v", got)
	}
	if got := unflags(0xe0, fileTypes); got != nil {
		t.Errorf("bits of no file type read as %v", got)
	}
}

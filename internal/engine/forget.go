package engine

import (
	"fmt"

	"github.com/recledger/recledger/internal/ledger"
)

// Forgotten gathers what removing some recordings touches, from their
// stored records, for a store's Forget (both stores read the same).
type Forgotten struct {
	IDs    []string            // the recordings found
	Seqs   []int64             // the feed seqs of their callbacks, duplicates included
	Files  int64               // their files
	Totals ledger.TotalsChange // how the totals move when they go
}

// Add reads one stored record.
func (f *Forgotten) Add(id string, blob []byte) error {
	rec, err := DecodeRecord(blob)
	if err != nil {
		return fmt.Errorf("forget %s: %w", ledger.Clip(id, 64), err)
	}
	if f.Totals == nil {
		f.Totals = ledger.TotalsChange{}
	}
	f.IDs = append(f.IDs, id)
	for _, e := range rec.Events {
		f.Seqs = append(f.Seqs, e.Seq)
	}
	f.Files += int64(len(rec.State.Files))
	f.Totals.Move(rec.State, ledger.State{})
	return nil
}

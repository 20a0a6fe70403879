package engine

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

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

// recordV2 is the second encoding: a version byte, then JSON.
const recordV2 = 2

type recordJSON struct {
	State    ledger.State `json:"s"`
	FirstSeq int64        `json:"f"`
	Events   []EventRef   `json:"e"`
}

// EncodeRecord returns the stored form of r.
func EncodeRecord(r *Record) ([]byte, error) {
	b, err := json.Marshal(recordJSON{State: r.State, FirstSeq: r.FirstSeq, Events: r.Events})
	if err != nil {
		return nil, fmt.Errorf("encode record %s: %w", r.State.RecordID, err)
	}
	return append([]byte{recordV2}, b...), nil
}

// ErrBadRecord is returned by DecodeRecord for bytes it cannot read.
var ErrBadRecord = errors.New("bad record encoding")

// DecodeRecord reads a stored record. A version 1 blob (ledger.State as
// JSON, written before the engine) gives the state without an event index.
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
	}
	return Record{}, fmt.Errorf("version %d: %w", b[0], ErrBadRecord)
}

// DecodeState reads the state of a stored record.
func DecodeState(b []byte) (ledger.State, error) {
	r, err := DecodeRecord(b)
	return r.State, err
}

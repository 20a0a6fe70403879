package engine

import (
	"crypto/sha256"
	"encoding/binary"
	"time"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/logbody"
	"github.com/recledger/recledger/rc"
)

// Event is the feed's view of a logged row, from the body as the log
// stores it (logbody). The log keeps only the bytes; the fields come from
// the body. A body that no longer parses (logged by a build whose Parse
// accepted it) is shown with its bytes and type unknown; one that cannot
// be read at all (a damaged row), with no body.
func Event(seq, receivedAt int64, stored []byte, duplicate bool) ledger.Event {
	if Tombstone(stored) {
		return ledger.Event{Seq: seq, ReceivedAt: receivedAt, TypeName: RemovedTypeName, Removed: true}
	}
	body, err := logbody.Decode(stored)
	if err != nil {
		return ledger.Event{Seq: seq, ReceivedAt: receivedAt, TypeName: rc.Type(0).String(), Duplicate: duplicate}
	}
	cb, err := rc.Parse(body)
	if err != nil {
		return ledger.Event{Seq: seq, ReceivedAt: receivedAt, TypeName: rc.Type(0).String(), Body: body, Duplicate: duplicate}
	}
	e := ledger.NewEvent(cb, time.UnixMilli(receivedAt))
	e.Seq, e.Duplicate = seq, duplicate
	return e
}

// RemovedTypeName is the typeName of a tombstone in the feed.
const RemovedTypeName = "removed"

// Tombstone reports whether a stored log body is a tombstone: the row of
// a removed recording, whose body is empty (logbody.Encode never gives an
// empty encoding: a callback is at least "{}").
func Tombstone(stored []byte) bool { return len(stored) == 0 }

// NameHash is the key stores index file names by (a lookup then checks the
// name in the records it finds): 64 bits of the name's SHA-256.
func NameHash(name string) int64 {
	h := sha256.Sum256([]byte(name))
	return int64(binary.BigEndian.Uint64(h[:8]))
}

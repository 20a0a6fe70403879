package engine

import (
	"strings"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// In the single modes one recording holds the files of every user of the
// room, each named after its user (rc/naming.go), while the recording's
// userId is only the first callback's: an erasure must find a user's
// recordings by the file names too. The stores' file-name index (rows of
// NameHash) therefore also holds, for each file, a row of
// NameHash(UserKey(u)) for each user u the name may name, and
// Remover.NamingRecordings looks a user up by that row.

// UserKey is the entry of the file-name index that says a recording's
// file names name user. It starts with a NUL, which no file name holds
// (ledger refuses control characters in stored ids and lookups), so it
// never reads as a file; a lookup checks the record anyway.
func UserKey(user string) string { return "\x00user\x00" + user }

// fileUserPart is the part of a file name between the session and room
// ids and the timestamp: the user id, then the stream tag if any. ok is
// false for a name that fits no pattern or the mix pattern (no user).
func fileUserPart(name string, st *ledger.State) (string, bool) {
	p, ok := rc.ParseFileName(name, st.SessionID, st.RoomID)
	if !ok || p.UserID == "" {
		return "", false
	}
	if p.StreamTag != "" {
		return p.UserID + "_" + p.StreamTag, true
	}
	return p.UserID, true
}

// fileUserKeys are the UserKeys of every user name may name: ids may hold
// '_' and the stream tag is optional, so "a_b_c" may be user "a", "a_b"
// or "a_b_c".
func fileUserKeys(name string, st *ledger.State) []string {
	part, ok := fileUserPart(name, st)
	if !ok {
		return nil
	}
	var keys []string
	for i := 0; i < len(part); i++ {
		if part[i] == '_' && i > 0 {
			keys = append(keys, UserKey(part[:i]))
		}
	}
	return append(keys, UserKey(part))
}

// NamesUser reports whether one of st's file names may name user (by
// RC's naming rule, as fileUserKeys reads it).
func NamesUser(st *ledger.State, user string) bool {
	for name := range st.Files {
		if part, ok := fileUserPart(name, st); ok && (part == user || strings.HasPrefix(part, user+"_")) {
			return true
		}
	}
	return false
}

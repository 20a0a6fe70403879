package ledger

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"

	"github.com/recledger/recledger/rc"
)

// IdentityHash is the SHA-256 of a callback's identity (rc.Key), which
// stores index to tell redeliveries from new callbacks. Lengths prefix the
// strings so no two keys share an encoding.
func IdentityHash(k rc.Key) []byte {
	h := sha256.New()
	var buf [8]byte
	for _, s := range []string{k.AppKey, k.RecordID, k.FileName} {
		binary.BigEndian.PutUint64(buf[:], uint64(len(s)))
		h.Write(buf[:])
		h.Write([]byte(s))
	}
	for _, n := range []int64{int64(k.Type), k.Timestamp, int64(k.Code)} {
		binary.BigEndian.PutUint64(buf[:], uint64(n))
		h.Write(buf[:])
	}
	return h.Sum(nil)
}

// EncodeCursor makes the opaque cursor after a page that ended at the
// recording whose first event has seq firstSeq, for filter f: a cursor
// carries a checksum of its filter, since used with another filter it
// would skip that filter's recordings.
func EncodeCursor(firstSeq int64, f RecordingFilter) string {
	return base64.RawURLEncoding.EncodeToString([]byte("r2:" + strconv.FormatInt(firstSeq, 10) + ":" + strconv.FormatUint(uint64(filterScope(f)), 36)))
}

// DecodeCursor reads f's cursor, or returns ErrBadCursor.
func DecodeCursor(f RecordingFilter) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(f.Cursor)
	if err == nil {
		if rest, ok := strings.CutPrefix(string(b), "r2:"); ok {
			seqText, scopeText, _ := strings.Cut(rest, ":")
			seq, err1 := strconv.ParseInt(seqText, 10, 64)
			sc, err2 := strconv.ParseUint(scopeText, 36, 32)
			if err1 == nil && err2 == nil && seq > 0 {
				if uint32(sc) != filterScope(f) {
					return 0, fmt.Errorf("cursor belongs to other filters: %w", ErrBadCursor)
				}
				return seq, nil
			}
		}
	}
	return 0, fmt.Errorf("cursor %.40q: %w", f.Cursor, ErrBadCursor)
}

// filterScope checksums what a filter selects (not its page).
func filterScope(f RecordingFilter) uint32 {
	h := crc32.NewIEEE()
	for _, s := range []string{f.AppKey, f.RoomID, f.SessionID, f.UserID, string(f.Status), f.RecordIDPrefix} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	for _, p := range []*int64{f.Since, f.Until} {
		if p != nil {
			h.Write([]byte(strconv.FormatInt(*p, 10)))
		}
		h.Write([]byte{0})
	}
	if f.Mode != nil {
		h.Write([]byte(strconv.Itoa(int(*f.Mode))))
	}
	if f.UploadState != "" { // written only when set: older cursors stay valid
		h.Write([]byte{0})
		h.Write([]byte(f.UploadState))
	}
	if f.Verification != "" {
		h.Write([]byte{1})
		h.Write([]byte(f.Verification))
	}
	if f.Finding != "" {
		h.Write([]byte{2})
		h.Write([]byte(f.Finding))
	}
	return h.Sum32()
}

// PageLimit checks and defaults a filter's limit.
func PageLimit(f RecordingFilter) (int, error) {
	switch {
	case f.Limit == 0:
		return DefaultPage, nil
	case f.Limit < 0 || f.Limit > MaxPage:
		return 0, fmt.Errorf("limit %d, want 1 to %d: %w", f.Limit, MaxPage, ErrBadLimit)
	}
	return f.Limit, nil
}

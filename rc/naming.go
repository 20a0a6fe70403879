package rc

import (
	"strconv"
	"strings"
)

// RC names recording files by one of three patterns, joined with '_':
//
//	mix modes (3-5):        SessionId_RoomId_Timestamp.Format
//	single modes (0-2):     SessionId_RoomId_UserId_StreamTag_Timestamp.Format
//	single-user mix (6):    SessionId_RoomId_UserId_Timestamp.Format
//
// Timestamp is Unix ms. RC's own mode-1 example has no StreamTag, so the tag
// is optional in single modes (the default stream may have none), which makes
// a single-mode name without a tag look exactly like a single-user mix name.
// RC advises against relying on the names; they are a hint, and ids may
// themselves contain '_', so parsing uses whatever ids are already known.

// NameParts are the pieces of a recording file name.
type NameParts struct {
	SessionID string `json:"sessionId"`
	RoomID    string `json:"roomId"`
	UserID    string `json:"userId,omitempty"`    // empty in the mix pattern
	StreamTag string `json:"streamTag,omitempty"` // single modes only, and optional there
	Timestamp int64  `json:"timestamp"`
	Format    string `json:"format"` // the extension without the dot, for example "mp4"
}

// FileName builds the name RC gives a file: the mix pattern when UserID is
// empty, the single-user mix pattern when StreamTag is empty, else the single
// pattern. A StreamTag without a UserID is ignored.
func FileName(p NameParts) string {
	var b strings.Builder
	b.Grow(len(p.SessionID) + len(p.RoomID) + len(p.UserID) + len(p.StreamTag) + len(p.Format) + 24)
	b.WriteString(p.SessionID)
	b.WriteByte('_')
	b.WriteString(p.RoomID)
	if p.UserID != "" {
		b.WriteByte('_')
		b.WriteString(p.UserID)
		if p.StreamTag != "" {
			b.WriteByte('_')
			b.WriteString(p.StreamTag)
		}
	}
	b.WriteByte('_')
	b.WriteString(strconv.FormatInt(p.Timestamp, 10))
	b.WriteByte('.')
	b.WriteString(p.Format)
	return b.String()
}

// ParseFileName reads a file name by RC's naming rules. sessionID and roomID
// are the ids the callback carried (either may be empty); when the name
// starts with them they are used to split it, so ids containing '_' are read
// correctly. Otherwise each id is taken up to the next '_', and the caller can
// compare the result with the callback to show the mismatch. The user id and
// stream tag are told apart at the last '_'; use ParseFileNameUser when the
// user id is known.
//
// ok is false when the name fits no pattern: no extension, no numeric
// timestamp, or too few parts.
func ParseFileName(name, sessionID, roomID string) (NameParts, bool) {
	return ParseFileNameUser(name, sessionID, roomID, "")
}

// ParseFileNameUser is ParseFileName with the user id known too, which
// splits user ids containing '_' from the stream tag correctly.
func ParseFileNameUser(name, sessionID, roomID, userID string) (NameParts, bool) {
	var p NameParts
	dot := strings.LastIndexByte(name, '.')
	if dot < 0 || !isFormat(name[dot+1:]) {
		return NameParts{}, false
	}
	p.Format = name[dot+1:]
	base := name[:dot]
	us := strings.LastIndexByte(base, '_')
	if us < 0 {
		return NameParts{}, false
	}
	ts := base[us+1:]
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || !allDigits(ts) {
		return NameParts{}, false
	}
	p.Timestamp = n
	rest := base[:us]
	var ok bool
	if p.SessionID, rest, ok = takeID(rest, sessionID); !ok {
		return NameParts{}, false
	}
	if p.RoomID, rest, ok = takeID(rest, roomID); !ok {
		return NameParts{}, false
	}
	switch {
	case rest == "":
		// mix pattern
	case userID != "" && rest == userID:
		p.UserID = rest
	case userID != "" && strings.HasPrefix(rest, userID+"_") && len(rest) > len(userID)+1:
		p.UserID, p.StreamTag = userID, rest[len(userID)+1:]
	default:
		if i := strings.LastIndexByte(rest, '_'); i > 0 && i < len(rest)-1 {
			p.UserID, p.StreamTag = rest[:i], rest[i+1:]
		} else {
			p.UserID = rest
		}
	}
	return p, true
}

// FileNameParts reads the callback's output.fileName using its own ids.
func (c *Callback) FileNameParts() (NameParts, bool) {
	return ParseFileNameUser(c.Output.FileName, c.SessionID, c.RoomID, c.UserID)
}

// takeID takes one id off the front of s: known, when s starts with it and a
// '_' or the end follows, else everything up to the next '_'. A '_' must be
// followed by more: an empty part fits no pattern.
func takeID(s, known string) (id, rest string, ok bool) {
	if known != "" && strings.HasPrefix(s, known) {
		switch {
		case len(s) == len(known):
			return known, "", true
		case s[len(known)] == '_':
			rest = s[len(known)+1:]
			return known, rest, rest != ""
		}
	}
	id, rest, found := strings.Cut(s, "_")
	return id, rest, id != "" && (!found || rest != "")
}

func isFormat(s string) bool {
	if s == "" || len(s) > 10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

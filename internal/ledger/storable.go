package ledger

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/recledger/recledger/rc"
)

// ErrUnstorable is the error of a callback no store will ever accept: a
// 4xx for the sender, never a 503 it would retry forever. Test it with
// errors.Is; a *FieldError says which field and why.
var ErrUnstorable = errors.New("unstorable callback")

// Bounds of the fields stores index (bytes of UTF-8). RC's ids are short
// ASCII (it caps roomId, sessionId and userId at 64 characters; its
// recordIds are 32 hex digits), so no real callback comes near them.
const (
	MaxIDBytes       = 256  // appKey, recordId, roomId, sessionId, userId
	MaxFileNameBytes = 1024 // output.fileName
)

// FieldError is a callback field outside what stores accept. It matches
// ErrUnstorable under errors.Is. Its text names the field and the rule,
// never the value (which may be huge or hostile).
type FieldError struct {
	Field  string // JSON name, for example "recordId" or "output.fileName"
	Reason string // for example "300 bytes, at most 256"
}

func (e *FieldError) Error() string { return "unstorable callback: " + e.Field + ": " + e.Reason }

// Is makes errors.Is(err, ErrUnstorable) true.
func (e *FieldError) Is(target error) bool { return target == ErrUnstorable }

// CheckStorable reports whether every store accepts cb: the one rule both
// backends share, so SQLite and PostgreSQL store the same set of callbacks.
//
// The fields that identify a recording or a file (they are indexed
// columns, filter values in URLs, and are printed in logs, the CLI and the
// dashboard) must be valid UTF-8, within their bound and free of control
// characters (Unicode Cc: C0, DEL, C1). NUL cannot be held by a
// PostgreSQL TEXT at all; the other control characters are refused too
// because no RC id holds them and in an id they only serve to forge log
// lines or drive a terminal. Format characters (RTL marks, zero-width
// joiners) and emoji are accepted.
//
// Free-text fields (errorMessage, extra, fileUrl, the config's strings,
// videoResolution) are accepted whatever they hold: the raw body is stored
// byte-exact and a store's TEXT copy of them goes through TextColumn.
func CheckStorable(cb *rc.Callback) error {
	for _, f := range []struct {
		name, v string
		max     int
	}{
		{"appKey", cb.AppKey, MaxIDBytes},
		{"recordId", cb.RecordID, MaxIDBytes},
		{"roomId", cb.RoomID, MaxIDBytes},
		{"sessionId", cb.SessionID, MaxIDBytes},
		{"userId", cb.UserID, MaxIDBytes},
		{"output.fileName", cb.Output.FileName, MaxFileNameBytes},
	} {
		if err := checkID(f.name, f.v, f.max); err != nil {
			return err
		}
	}
	return nil
}

// RefusedError is a callback the database refused alone, with an error a
// value can cause (a constraint, a data exception): it passed
// CheckStorable, yet no retry would store it. It matches ErrUnstorable
// under errors.Is; Err is the database's error.
type RefusedError struct{ Err error }

func (e *RefusedError) Error() string {
	return "unstorable callback: the store refused it: " + e.Err.Error()
}
func (e *RefusedError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrUnstorable) true.
func (e *RefusedError) Is(target error) bool { return target == ErrUnstorable }

func checkID(field, v string, maxBytes int) error {
	if len(v) > maxBytes {
		return &FieldError{Field: field, Reason: fmt.Sprintf("%d bytes, at most %d", len(v), maxBytes)}
	}
	for i, r := range v {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(v[i:], "\uFFFD"):
			return &FieldError{Field: field, Reason: fmt.Sprintf("invalid UTF-8 at byte %d", i)}
		case unicode.IsControl(r):
			return &FieldError{Field: field, Reason: fmt.Sprintf("control character %U at byte %d", r, i)}
		}
	}
	return nil
}

// TextColumn returns s as every store's TEXT columns can hold it: invalid
// UTF-8 and NUL (which PostgreSQL's TEXT and JSONB refuse) become U+FFFD.
// Stores use it for each TEXT copy of a free-text value; the raw body, kept
// as bytes, stays exact.
func TextColumn(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// Clip returns s cut to at most n bytes (at a character boundary) with
// "…(N bytes)" appended when it was longer: what logs and error messages
// echo of a value an attacker chose.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s…(%d bytes)", s[:cut], len(s))
}

// CheckLookup reports whether v could equal a stored value of the id field
// named field: "appKey", "recordId", "roomId", "sessionId", "userId" or
// "fileName" (output.fileName's bound). A value that breaks CheckStorable's
// rule for that field is in no store; worse, PostgreSQL refuses NUL and
// invalid UTF-8 even as a query parameter where SQLite just finds nothing.
// Readers (the API, the dashboard) check filters and path ids with it
// before the store, so both backends answer the same. The *FieldError
// names field and the rule, never the value.
func CheckLookup(field, v string) error {
	maxBytes := MaxIDBytes
	if field == "fileName" {
		maxBytes = MaxFileNameBytes
	}
	return checkID(field, v, maxBytes)
}

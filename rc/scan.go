package rc

import (
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"unicode/utf8"
)

// A callback is a small, shallow JSON object, and only a dozen of its members
// matter. Decoding it through encoding/json into maps or reflection-driven
// lenient types costs several times more than the walk below, which steps
// over one object's members without building anything and leaves each value
// as a position in the body. The walk validates as it goes, exactly as
// json.Valid would (FuzzParse holds it to that), so nothing reads the body
// twice; and it is robust on any input: it never reads out of bounds and
// always advances.

// Kinds of JSON values, as the first byte that introduces them.
const (
	kindAbsent = 0
	kindString = '"'
	kindNumber = '0'
	kindNull   = 'n'
	kindTrue   = 't'
	kindFalse  = 'f'
	kindObject = '{'
	kindArray  = '['
)

// maxDepth is encoding/json's nesting limit, kept so the two agree on what
// is valid.
const maxDepth = 10000

// value locates one JSON value in the body. For strings, start and end
// enclose the contents without the quotes.
type value struct {
	kind    byte
	escaped bool // a string holding a backslash escape
	start   int
	end     int
}

// objectReader walks the members of one JSON object.
type objectReader struct {
	data    []byte
	pos     int
	depth   int  // containers around the members, the object included
	members int  // members read so far
	bad     bool // the input is not valid JSON
}

// openObject positions a reader after the '{' at or after start (past
// white space). It reports false when there is no object there.
func openObject(data []byte, start int) (objectReader, bool) {
	r := objectReader{data: data, pos: start, depth: 1}
	r.skipSpace()
	if r.pos >= len(data) || data[r.pos] != '{' {
		return r, false
	}
	r.pos++
	return r, true
}

func (r *objectReader) skipSpace() {
	for r.pos < len(r.data) {
		switch r.data[r.pos] {
		case ' ', '\t', '\n', '\r':
			r.pos++
		default:
			return
		}
	}
}

// next returns the next member of the object; ok is false at the end of the
// object or when the input is not valid JSON (then r.bad is set).
func (r *objectReader) next() (key, val value, ok bool) {
	r.skipSpace()
	if r.pos >= len(r.data) {
		r.bad = true
		return key, val, false
	}
	switch c := r.data[r.pos]; {
	case c == '}':
		r.pos++
		return key, val, false
	case r.members == 0:
	case c == ',':
		r.pos++
		r.skipSpace()
	default:
		r.bad = true
		return key, val, false
	}
	if r.pos >= len(r.data) || r.data[r.pos] != '"' {
		r.bad = true
		return key, val, false
	}
	key, good := r.readString()
	r.skipSpace()
	if !good || r.pos >= len(r.data) || r.data[r.pos] != ':' {
		r.bad = true
		return key, val, false
	}
	r.pos++
	r.skipSpace()
	val, good = r.readValue(r.depth)
	if !good {
		r.bad = true
		return key, val, false
	}
	r.members++
	return key, val, true
}

// end reports whether only white space follows the object just closed.
func (r *objectReader) end() bool {
	r.skipSpace()
	return !r.bad && r.pos == len(r.data)
}

// String bytes that need a closer look: quotes, escapes and the control
// characters JSON forbids. Eight at a time: x has such a byte when
// hasLess(x, 0x20) | hasByte(x, '"') | hasByte(x, '\\') is not zero.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

func specialBytes(x uint64) uint64 {
	less := (x - ones*0x20) &^ x
	q := x ^ (ones * '"')
	bs := x ^ (ones * '\\')
	return (less | (q-ones)&^q | (bs-ones)&^bs) & highs
}

// readString reads and checks the string starting at r.pos (a '"').
func (r *objectReader) readString() (value, bool) {
	v := value{kind: kindString, start: r.pos + 1}
	d := r.data
	i := r.pos + 1
	for {
		for i+8 <= len(d) {
			// The lowest flagged byte is always a true one (borrows only
			// run upwards), so jump straight to it.
			if m := specialBytes(binary.LittleEndian.Uint64(d[i:])); m != 0 {
				i += bits.TrailingZeros64(m) / 8
				break
			}
			i += 8
		}
		if i >= len(d) {
			r.pos = len(d)
			return v, false
		}
		switch c := d[i]; {
		case c == '"':
			v.end = i
			r.pos = i + 1
			return v, true
		case c == '\\':
			v.escaped = true
			n := validEscape(d[i+1:])
			if n == 0 {
				r.pos = len(d)
				return v, false
			}
			i += 1 + n
		case c < 0x20:
			r.pos = len(d)
			return v, false
		default:
			i++
		}
	}
}

// validEscape returns the length of the escape at the start of b (after the
// backslash), or 0 when it is not one JSON allows.
func validEscape(b []byte) int {
	if len(b) == 0 {
		return 0
	}
	switch b[0] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 1
	case 'u':
		if len(b) < 5 {
			return 0
		}
		for _, c := range b[1:5] {
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return 0
			}
		}
		return 5
	}
	return 0
}

// readValue reads and checks the value at r.pos; depth counts the containers
// it is in.
func (r *objectReader) readValue(depth int) (value, bool) {
	if r.pos >= len(r.data) {
		return value{}, false
	}
	switch c := r.data[r.pos]; {
	case c == '"':
		return r.readString()
	case c == '{' || c == '[':
		v := value{kind: c, start: r.pos}
		ok := r.skipContainer(depth + 1)
		v.end = r.pos
		return v, ok
	case c == '-' || (c >= '0' && c <= '9'):
		v := value{kind: kindNumber, start: r.pos}
		ok := r.readNumber()
		v.end = r.pos
		return v, ok
	case c == 'n' || c == 't' || c == 'f':
		v := value{kind: c, start: r.pos}
		lit := "null"
		if c == 't' {
			lit = "true"
		} else if c == 'f' {
			lit = "false"
		}
		if len(r.data)-r.pos < len(lit) || string(r.data[r.pos:r.pos+len(lit)]) != lit {
			return v, false
		}
		r.pos += len(lit)
		v.end = r.pos
		return v, true
	}
	return value{}, false
}

// skipContainer checks the object or array at r.pos and steps past it.
func (r *objectReader) skipContainer(depth int) bool {
	if depth > maxDepth {
		return false
	}
	if r.data[r.pos] == '{' {
		inner := objectReader{data: r.data, pos: r.pos + 1, depth: depth}
		for {
			if _, _, ok := inner.next(); !ok {
				r.pos = inner.pos
				return !inner.bad
			}
		}
	}
	r.pos++ // '['
	r.skipSpace()
	if r.pos < len(r.data) && r.data[r.pos] == ']' {
		r.pos++
		return true
	}
	for {
		r.skipSpace()
		if _, ok := r.readValue(depth); !ok {
			return false
		}
		r.skipSpace()
		if r.pos >= len(r.data) {
			return false
		}
		switch r.data[r.pos] {
		case ',':
			r.pos++
		case ']':
			r.pos++
			return true
		default:
			return false
		}
	}
}

// readNumber checks the number at r.pos against JSON's grammar:
// -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (r *objectReader) readNumber() bool {
	d := r.data
	i := r.pos
	if d[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case digits() == 0:
		r.pos = i
		return false
	}
	if i < len(d) && d[i] == '.' {
		i++
		if digits() == 0 {
			r.pos = i
			return false
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if digits() == 0 {
			r.pos = i
			return false
		}
	}
	r.pos = i
	return true
}

// text returns the string value v holds, unescaped. The common case (no
// escapes, valid UTF-8) is a substring of p.src when the parser has one, so
// it costs no allocation. Escapes and invalid UTF-8 go through encoding/json
// so the result is exactly what it would decode.
func (p *parser) text(v value) string {
	var s string
	if p.src != "" {
		s = p.src[v.start:v.end]
	} else {
		s = string(p.data[v.start:v.end])
	}
	if !v.escaped && utf8.ValidString(s) {
		return s
	}
	var out string
	if err := json.Unmarshal(p.data[v.start-1:v.end+1], &out); err != nil {
		return s
	}
	return out
}

// keyIs reports whether the member key k, found in data, is name. Escaped keys
// are rare enough to decode.
func keyIs(data []byte, k value, name string) bool {
	if !k.escaped {
		return string(data[k.start:k.end]) == name
	}
	var s string
	return json.Unmarshal(data[k.start-1:k.end+1], &s) == nil && s == name
}

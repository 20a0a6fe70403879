package rc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Errors Parse returns, wrapped in a *FieldError or with detail; test them
// with errors.Is.
var (
	ErrNotObject    = errors.New("body is not a JSON object")
	ErrMissingField = errors.New("required field is missing")
	ErrInvalidField = errors.New("field has an unusable value")
)

// FieldError is a required field that is missing or unusable.
type FieldError struct {
	Field  string // JSON name, for example "recordId"
	Err    error  // ErrMissingField or ErrInvalidField
	Detail string // what was wrong with the value, when it was present
}

func (e *FieldError) Error() string {
	if e.Detail == "" {
		return "rc: " + e.Field + ": " + e.Err.Error()
	}
	return "rc: " + e.Field + ": " + e.Err.Error() + ": " + e.Detail
}

func (e *FieldError) Unwrap() error { return e.Err }

// Members of the callback object Parse reads; the rest are ignored.
const (
	fTimestamp = iota
	fType
	fAppKey
	fRecordID
	fRoomID
	fSessionID
	fUserID
	fMode
	fExtra
	fCode
	fErrorMessage
	fConfig
	fOutput
	nFields
)

var fieldNames = [nFields]string{
	"timestamp", "type", "appKey", "recordId", "roomId", "sessionId", "userId",
	"mode", "extra", "code", "errorMessage", "config", "output",
}

func topField(name []byte) int {
	switch string(name) { // no allocation: the compiler compares in place
	case "timestamp":
		return fTimestamp
	case "type":
		return fType
	case "appKey":
		return fAppKey
	case "recordId":
		return fRecordID
	case "roomId":
		return fRoomID
	case "sessionId":
		return fSessionID
	case "userId":
		return fUserID
	case "mode":
		return fMode
	case "extra":
		return fExtra
	case "code":
		return fCode
	case "errorMessage":
		return fErrorMessage
	case "config":
		return fConfig
	case "output":
		return fOutput
	}
	return -1
}

// Parse reads one callback body.
//
// It fails only when the body cannot identify a callback: it is not a JSON
// object (ErrNotObject), or type, recordId or appKey is missing, null or empty
// (ErrMissingField) or unusable, for example a type that is not a number or an
// appKey given twice with different values (ErrInvalidField). Everything else
// is accepted: unknown types, modes and members, nulls, numbers sent as
// strings (and strings sent as numbers). Each oddity is listed in
// Callback.Warnings. The returned Callback owns a copy of body in Raw.
func Parse(body []byte) (Callback, error) {
	r, ok := openObject(body, 0)
	if !ok {
		return Callback{}, notObject(body)
	}
	p := parser{data: body, src: string(body)}
	var (
		vals   [nFields]value
		dupErr error
	)
	for {
		k, v, ok := r.next()
		if !ok {
			break
		}
		i := topField(p.key(k))
		if i < 0 {
			continue
		}
		if prev := vals[i]; prev.kind != kindAbsent && dupErr == nil {
			dupErr = p.duplicate(i, prev, v)
		}
		vals[i] = v
	}
	if r.bad || !r.end() {
		return Callback{}, notObject(body)
	}
	if dupErr != nil {
		return Callback{}, dupErr
	}

	cb := Callback{Mode: ModeUnknown}
	typ, err := p.required(fType, vals[fType])
	if err != nil {
		return Callback{}, err
	}
	cb.Type = Type(typ)
	if cb.AppKey, err = p.requiredString(fAppKey, vals[fAppKey]); err != nil {
		return Callback{}, err
	}
	if cb.RecordID, err = p.requiredString(fRecordID, vals[fRecordID]); err != nil {
		return Callback{}, err
	}

	if ts, ok := p.int64(fieldNames[fTimestamp], vals[fTimestamp], math.MinInt64, math.MaxInt64); ok {
		cb.Timestamp = ts
		if ts < 1e11 && ts > 0 {
			p.warn("timestamp", "looks like seconds, not milliseconds")
		}
	} else if vals[fTimestamp].kind == kindAbsent {
		p.warn("timestamp", "missing")
	}
	cb.RoomID = p.optionalString(fRoomID, vals[fRoomID], true)
	cb.SessionID = p.optionalString(fSessionID, vals[fSessionID], true)
	cb.Extra = p.optionalString(fExtra, vals[fExtra], false)
	cb.ErrorMessage = p.optionalString(fErrorMessage, vals[fErrorMessage], false)
	if m, ok := p.int64(fieldNames[fMode], vals[fMode], math.MinInt32, math.MaxInt32); ok {
		cb.Mode = Mode(m)
	} else if vals[fMode].kind == kindAbsent {
		p.warn("mode", "missing")
	}
	if c, ok := p.int64(fieldNames[fCode], vals[fCode], math.MinInt32, math.MaxInt32); ok {
		cb.Code = int(c)
	} else if vals[fCode].kind == kindAbsent {
		p.warn("code", "missing")
	}
	cb.UserID = p.optionalString(fUserID, vals[fUserID], cb.Mode.IsSingle() || cb.Mode.IsUserMix())
	cb.Config = p.config(vals[fConfig])
	cb.Output = p.output(vals[fOutput])
	p.checkShape(&cb)

	cb.Raw = bytes.Clone(body)
	cb.Warnings = p.warnings
	return cb, nil
}

// notObject describes why body is not a JSON object, in encoding/json's words.
func notObject(body []byte) error {
	var raw json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return fmt.Errorf("rc: %w: %v", ErrNotObject, err)
	}
	if k := firstByte(body); k != '{' {
		return fmt.Errorf("rc: %w: it is a JSON %s", ErrNotObject, jsonKindName(k))
	}
	return fmt.Errorf("rc: %w: invalid JSON", ErrNotObject) // the walk and encoding/json disagree
}

// checkShape warns about combinations RC does not send.
func (p *parser) checkShape(cb *Callback) {
	if !cb.Type.Known() {
		p.warn("type", "unknown type "+strconv.Itoa(int(cb.Type)))
	}
	if cb.Mode != ModeUnknown && !cb.Mode.Known() {
		p.warn("mode", "unknown mode "+strconv.Itoa(int(cb.Mode)))
	}
	if cb.Mode.IsMix() && cb.UserID != "" {
		p.warn("userId", "set in a mix mode, where RC leaves it empty")
	}
	switch cb.Type {
	case TypeStart:
		if cb.Config == nil {
			p.warn("config", "missing from a start callback")
		}
	case TypeSegment, TypeEnd, TypeUpload:
		if cb.Output.FileName == "" {
			p.warn("output.fileName", "missing from a callback of type "+cb.Type.String())
		}
		if cb.Type == TypeUpload && cb.OK() && cb.Output.FileURL == "" {
			p.warn("output.fileUrl", "missing from a successful upload callback")
		}
		if cb.Type != TypeUpload && cb.OK() && cb.Output.FileSize == nil {
			p.warn("output.fileSize", "missing from a callback of type "+cb.Type.String())
		}
	}
}

type parser struct {
	data     []byte
	src      string // string(data), so strings cost no allocation each; "" to copy each
	warnings []Warning
}

// key returns a member name's bytes, unescaped; a name that is not valid
// UTF-8 matches none of ours either way.
func (p *parser) key(k value) []byte {
	if !k.escaped {
		return p.data[k.start:k.end]
	}
	return []byte(p.text(k))
}

// sub returns v's bytes as a string.
func (p *parser) sub(v value) string {
	if p.src != "" {
		return p.src[v.start:v.end]
	}
	return string(p.data[v.start:v.end])
}

func (p *parser) warn(field, msg string) {
	p.warnings = append(p.warnings, Warning{Field: field, Message: msg})
}

// duplicate handles a member given twice. The last one counts, as in
// encoding/json, but an identity member given twice with different values is
// refused: the signature check and the ledger must not be able to read two
// different apps or recordings out of one body.
func (p *parser) duplicate(i int, prev, v value) error {
	same := prev.kind == v.kind && bytes.Equal(p.data[prev.start:prev.end], p.data[v.start:v.end])
	if !same && (i == fType || i == fAppKey || i == fRecordID) {
		return &FieldError{Field: fieldNames[i], Err: ErrInvalidField, Detail: "given twice with different values"}
	}
	p.warn(fieldNames[i], "given more than once; the last one counts")
	return nil
}

func (p *parser) required(i int, v value) (int64, error) {
	name := fieldNames[i]
	switch v.kind {
	case kindAbsent, kindNull:
		return 0, &FieldError{Field: name, Err: ErrMissingField}
	case kindString:
		if v.start == v.end {
			return 0, &FieldError{Field: name, Err: ErrMissingField, Detail: "empty string"}
		}
	}
	n, ok := p.int64(name, v, math.MinInt32, math.MaxInt32)
	if !ok {
		return 0, &FieldError{Field: name, Err: ErrInvalidField, Detail: "not an integer"}
	}
	return n, nil
}

func (p *parser) requiredString(i int, v value) (string, error) {
	name := fieldNames[i]
	s, ok := p.string(name, v)
	if !ok {
		if v.kind == kindAbsent || v.kind == kindNull || v.kind == kindString {
			return "", &FieldError{Field: name, Err: ErrMissingField}
		}
		return "", &FieldError{Field: name, Err: ErrInvalidField, Detail: "not a string"}
	}
	if s == "" {
		return "", &FieldError{Field: name, Err: ErrMissingField, Detail: "empty string"}
	}
	return s, nil
}

// optionalString reads a string member that may be absent; expected says
// whether its absence is worth a warning.
func (p *parser) optionalString(i int, v value, expected bool) string {
	s, _ := p.string(fieldNames[i], v)
	if v.kind == kindAbsent && expected {
		p.warn(fieldNames[i], "missing")
	}
	return s
}

// string reads a string member leniently: a number stands for its digits.
// ok is false when no usable value was there.
func (p *parser) string(field string, v value) (s string, ok bool) {
	switch v.kind {
	case kindAbsent:
		return "", false
	case kindString:
		return p.text(v), true
	case kindNumber:
		p.warn(field, "sent as a number")
		return p.sub(v), true
	case kindNull:
		p.warn(field, "null")
		return "", false
	}
	p.warn(field, "is a JSON "+jsonKindName(v.kind)+", not a string; ignored")
	return "", false
}

// int64 reads an integer member leniently: a string holding an integer, or a
// number with a zero fraction, is taken. ok is false when no usable value was
// there; an empty string counts as absent.
func (p *parser) int64(field string, v value, lo, hi int64) (n int64, ok bool) {
	var lit string
	switch v.kind {
	case kindAbsent:
		return 0, false
	case kindNumber:
		lit = p.sub(v)
	case kindString:
		lit = p.text(v)
		if lit == "" {
			if field != "output.audioSample" { // RC documents "" for no audio
				p.warn(field, "empty string")
			}
			return 0, false
		}
	case kindNull:
		p.warn(field, "null")
		return 0, false
	default:
		p.warn(field, "is a JSON "+jsonKindName(v.kind)+", not a number; ignored")
		return 0, false
	}
	n, exact, ok := parseInteger(lit)
	switch {
	case !ok:
		p.warn(field, "not an integer: "+quoteShort(lit)+"; ignored")
		return 0, false
	case n < lo || n > hi:
		p.warn(field, "out of range: "+quoteShort(lit)+"; ignored")
		return 0, false
	case v.kind == kindString:
		p.warn(field, "number sent as a string")
	case !exact:
		p.warn(field, "integer written with a fraction or exponent")
	}
	return n, true
}

// parseInteger parses an integer literal; exact is false when it was written
// as a float with a zero fraction (1.0, 1.5e3).
func parseInteger(s string) (n int64, exact, ok bool) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
		return 0, false, false
	}
	return int64(f), false, true
}

func (p *parser) config(v value) *Config {
	if !p.object("config", v) {
		return nil
	}
	c := new(Config)
	r, _ := openObject(p.data, v.start)
	for {
		k, m, ok := r.next()
		if !ok {
			return c
		}
		switch string(p.key(k)) {
		case "trigger":
			c.Trigger = p.int(m, "config.trigger")
		case "mixLayout":
			c.MixLayout = p.int(m, "config.mixLayout")
		case "slicesMin":
			c.SlicesMin = p.int(m, "config.slicesMin")
		case "audioFormat":
			c.AudioFormat, _ = p.string("config.audioFormat", m)
		case "videoFormat":
			c.VideoFormat, _ = p.string("config.videoFormat", m)
		}
	}
}

func (p *parser) output(v value) Output {
	var o Output
	if !p.object("output", v) {
		return o
	}
	var misspelt, spelt string
	r, _ := openObject(p.data, v.start)
	for {
		k, m, ok := r.next()
		if !ok {
			break
		}
		switch string(p.key(k)) {
		case "fileName":
			o.FileName, _ = p.string("output.fileName", m)
		case "fileSize":
			if n, ok := p.int64("output.fileSize", m, 0, math.MaxInt64); ok {
				o.FileSize = &n
			}
		case "fileUrl":
			o.FileURL, _ = p.string("output.fileUrl", m)
		case "audioSample":
			o.AudioSample = p.int(m, "output.audioSample")
		case "videoResoulation": // sic: RC's spelling
			misspelt, _ = p.string("output.videoResoulation", m)
		case "videoResolution":
			spelt, _ = p.string("output.videoResolution", m)
		}
	}
	o.VideoResolution = misspelt
	if o.VideoResolution == "" {
		o.VideoResolution = spelt
	} else if spelt != "" && spelt != misspelt {
		p.warn("output.videoResolution", "differs from videoResoulation; RC's videoResoulation counts")
	}
	return o
}

func (p *parser) int(v value, field string) int {
	n, _ := p.int64(field, v, math.MinInt32, math.MaxInt32)
	return int(n)
}

// object reports whether v is an object to read, warning when it is there
// but is something else.
func (p *parser) object(field string, v value) bool {
	switch v.kind {
	case kindObject:
		return true
	case kindAbsent:
		return false
	case kindNull:
		p.warn(field, "null")
		return false
	}
	p.warn(field, "is a JSON "+jsonKindName(v.kind)+", not an object; ignored")
	return false
}

func jsonKindName(kind byte) string {
	switch kind {
	case kindString:
		return "string"
	case kindNumber, '-', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return "number"
	case kindNull:
		return "null"
	case kindTrue, kindFalse:
		return "boolean"
	case kindObject:
		return "object"
	case kindArray:
		return "array"
	}
	return "value"
}

func firstByte(b []byte) byte {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

// quoteShort quotes a value for a warning, cut so a hostile body cannot make
// warnings as large as itself.
func quoteShort(s string) string {
	const max = 40
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}

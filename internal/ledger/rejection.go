package ledger

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode"
)

// Bounds of what a quarantined request keeps besides its body (bytes).
// A forged request may carry a megabyte of headers; the quarantine keeps
// enough of it to see what it was, within a size that the cap can count on.
const (
	MaxRejectionHeaderFields = 64       // header fields kept
	MaxRejectionHeaderValue  = 1 << 10  // bytes of one value (and of one name)
	MaxRejectionHeaderBytes  = 16 << 10 // bytes of all names and values
	MaxRejectionText         = 1 << 10  // message and path
	MaxRejectionRemote       = 256
	MaxRejectionShort        = 64 // reason and method

	// RejectionRowOverhead is what a quarantine row costs besides its
	// variable columns (id, at, status, sizes, the row's own header), so
	// that a flood of empty rejections is counted too.
	RejectionRowOverhead = 64

	// DroppedHeader is the field that says what was left out of a
	// rejection's headers, e.g. "12 fields, 3 values cut (70000 bytes in all)".
	DroppedHeader = "Recledger-Dropped"
)

// StoredRejection is a Rejection as a store writes it: bounded, its text
// safe for any column, its header as JSON, and the bytes the row takes.
type StoredRejection struct {
	Rejection
	HeaderJSON []byte
	Size       int64 // counted against the quarantine's byte cap
}

// PrepareRejection bounds r for the quarantine, the same for every
// backend: the body to MaxQuarantineBody, the header (see BoundHeader),
// the text fields to their limits and through TextColumn (PostgreSQL's
// TEXT and JSONB refuse NUL), and measures the row once.
func PrepareRejection(r Rejection) StoredRejection {
	if len(r.Body) > MaxQuarantineBody {
		r.Body = r.Body[:MaxQuarantineBody]
	}
	if r.Body == nil {
		r.Body = []byte{}
	}
	r.Reason = Clip(TextColumn(r.Reason), MaxRejectionShort)
	r.AppKey = Printable(r.AppKey, MaxRejectionShort)
	r.Method = Clip(TextColumn(r.Method), MaxRejectionShort)
	r.Remote = Clip(TextColumn(r.Remote), MaxRejectionRemote)
	r.Path = Clip(TextColumn(r.Path), MaxRejectionText)
	r.Message = Clip(TextColumn(r.Message), MaxRejectionText)
	r.Header = BoundHeader(r.Header)
	header, err := json.Marshal(r.Header)
	if err != nil { // a map of strings always marshals; be safe anyway
		header = []byte("{}")
	}
	size := RejectionRowOverhead + len(r.Body) + len(header) + len(r.Reason) + len(r.AppKey) + len(r.Method) + len(r.Remote) + len(r.Path) + len(r.Message)
	return StoredRejection{Rejection: r, HeaderJSON: header, Size: int64(size)}
}

// Printable returns s as a one-line label safe to store, show and log
// although its sender chose it (an app key a refused request claimed):
// without control characters (NUL, line breaks, terminal escapes) or
// invisible format characters (bidirectional overrides), invalid UTF-8 as
// U+FFFD, at most n bytes and a note of the full size.
func Printable(s string, n int) string {
	clean := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	return Clip(clean, n)
}

// BoundHeader returns a copy of h that a quarantine row can hold: at most
// MaxRejectionHeaderFields fields (in name order, so the choice does not
// depend on map order), each name and value at most MaxRejectionHeaderValue
// bytes, at most MaxRejectionHeaderBytes in all, text made safe by
// TextColumn. What was dropped or cut is said in DroppedHeader.
func BoundHeader(h http.Header) http.Header {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	slices.Sort(names)
	out := make(http.Header, min(len(h), MaxRejectionHeaderFields)+1)
	var (
		total, all            int
		droppedFields, cut    int
		droppedValues, fields int
	)
	for _, k := range names {
		vs := h[k]
		all += len(k)
		for _, v := range vs {
			all += len(v)
		}
		if fields >= MaxRejectionHeaderFields || len(k) > MaxRejectionHeaderValue || total+len(k) > MaxRejectionHeaderBytes {
			droppedFields++
			continue
		}
		name := TextColumn(k)
		total += len(name)
		var kept []string
		for _, v := range vs {
			v = TextColumn(v) // first: it may make v longer
			if len(v) > MaxRejectionHeaderValue {
				v = Clip(v, MaxRejectionHeaderValue)
				cut++
			}
			if total+len(v) > MaxRejectionHeaderBytes {
				droppedValues++
				continue
			}
			total += len(v)
			kept = append(kept, v)
		}
		out[name] = kept
		fields++
	}
	if droppedFields+droppedValues+cut > 0 {
		out[DroppedHeader] = []string{fmt.Sprintf("%d fields, %d values dropped, %d values cut (%d bytes of names and values in all)",
			droppedFields, droppedValues, cut, all)}
	}
	return out
}

package rc

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Sign returns RC's signature for a nonce and timestamp: the lower-case hex
// SHA1 of appSecret + nonce + timestamp, plainly concatenated. timestamp is
// the decimal text exactly as sent (milliseconds, or seconds in some styles).
func Sign(secret, nonce, timestamp string) string {
	sum := signSum(secret, nonce, timestamp)
	return hex.EncodeToString(sum[:])
}

func signSum(secret, nonce, timestamp string) [sha1.Size]byte {
	var buf [128]byte // secrets, nonces and timestamps are short: no allocation
	b := append(buf[:0], secret...)
	b = append(b, nonce...)
	b = append(b, timestamp...)
	return sha1.Sum(b)
}

// Style is where and how a signature travels. The receiver (Verifier) accepts
// every style; a sender picks one.
type Style string

// The signature styles. RC's documented form is StyleHeaders: headers nonce,
// timestamp (ms) and signature, the app key only in the body. The others let a
// receiver be tested against forms RC uses elsewhere.
const (
	StyleHeaders          Style = "headers"            // nonce, timestamp, signature headers; ms
	StyleHeadersSeconds   Style = "headers-seconds"    // the same with a timestamp in seconds
	StyleRCHeaders        Style = "rc-headers"         // RC-Nonce, RC-Timestamp, RC-Signature headers; ms
	StyleRCHeadersSeconds Style = "rc-headers-seconds" // the same with a timestamp in seconds
	StyleQuery            Style = "query"              // nonce, timestamp, signature query parameters; ms
	StyleQuerySeconds     Style = "query-seconds"      // the same with a timestamp in seconds
)

// Styles lists every style, RC's documented one first.
func Styles() []Style {
	return []Style{StyleHeaders, StyleHeadersSeconds, StyleRCHeaders, StyleRCHeadersSeconds, StyleQuery, StyleQuerySeconds}
}

// ParseStyle returns the style named s, or an error listing the names.
func ParseStyle(s string) (Style, error) {
	for _, st := range Styles() {
		if string(st) == s {
			return st, nil
		}
	}
	return "", fmt.Errorf("rc: unknown signature style %q (want one of %v)", s, Styles())
}

func (s Style) seconds() bool {
	return s == StyleHeadersSeconds || s == StyleRCHeadersSeconds || s == StyleQuerySeconds
}

func (s Style) inQuery() bool { return s == StyleQuery || s == StyleQuerySeconds }

// names returns the header or parameter names of the style: nonce,
// timestamp, signature, app key.
func (s Style) names() [4]string {
	if s == StyleRCHeaders || s == StyleRCHeadersSeconds {
		return [4]string{"RC-Nonce", "RC-Timestamp", "RC-Signature", "RC-App-Key"}
	}
	return [4]string{"nonce", "timestamp", "signature", "appKey"}
}

// MaxNonceLen is the longest nonce RC sends.
const MaxNonceLen = 18

// Signer signs outgoing callbacks the way RC does. The zero values of Style,
// Now and Nonce mean StyleHeaders, time.Now and a random 16-character nonce.
type Signer struct {
	AppKey string
	Secret string
	Style  Style
	// AppKeyInRequest also sends the app key in a header or query parameter
	// of the style; RC carries it only in the body.
	AppKeyInRequest bool
	Now             func() time.Time
	Nonce           func() string
}

// Signature is one signing: the values to send.
type Signature struct {
	Nonce     string
	Timestamp string
	Signature string
}

// Sign makes a fresh signature. Every delivery, retries included, should be
// signed anew.
func (s Signer) Sign() Signature {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	nonce := RandomNonce
	if s.Nonce != nil {
		nonce = s.Nonce
	}
	t := now()
	ts := strconv.FormatInt(t.UnixMilli(), 10)
	if s.Style.seconds() {
		ts = strconv.FormatInt(t.Unix(), 10)
	}
	n := nonce()
	return Signature{Nonce: n, Timestamp: ts, Signature: Sign(s.Secret, n, ts)}
}

// Apply puts sig on req in the signer's style: as headers, or added to the
// URL's query.
func (s Signer) Apply(req *http.Request, sig Signature) {
	names := s.Style.names()
	vals := [4]string{sig.Nonce, sig.Timestamp, sig.Signature, s.AppKey}
	count := 3
	if s.AppKeyInRequest {
		count = 4
	}
	if s.Style.inQuery() {
		q := req.URL.Query()
		for i := range count {
			q.Set(names[i], vals[i])
		}
		req.URL.RawQuery = q.Encode()
		return
	}
	for i := range count {
		req.Header.Set(names[i], vals[i])
	}
}

const nonceAlphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// RandomNonce returns 16 random alphanumeric characters.
func RandomNonce() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand documents it)
	for i := range b {
		b[i] = nonceAlphabet[int(b[i])%len(nonceAlphabet)]
	}
	return string(b[:])
}

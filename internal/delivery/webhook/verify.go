package webhook

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Verification errors.
var (
	ErrMissingHeaders = errors.New("webhook: webhook-id, webhook-timestamp or webhook-signature missing")
	ErrStale          = errors.New("webhook: the timestamp is too far from now")
	ErrNoMatch        = errors.New("webhook: no signature matches")
)

// Verify checks a received message's Standard Webhooks headers: its
// timestamp within tolerance of now, and a v1 signature by secret (or,
// with key, a v1a signature by the key's public half). It is what a
// receiver does; recledger's own receiver (recledger destinations
// receive) uses it, and the tests check it against the spec's library.
func Verify(h http.Header, body []byte, secret *Secret, public ed25519.PublicKey, tolerance time.Duration, now time.Time) error {
	id, ts, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || ts == "" || sigs == "" {
		return ErrMissingHeaders
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrMissingHeaders
	}
	t := time.Unix(sec, 0)
	if d := now.Sub(t); d > tolerance || d < -tolerance {
		return ErrStale
	}
	content := signedContent(id, t, body)
	var want []byte
	if secret != nil {
		mac := hmac.New(sha256.New, secret.key)
		mac.Write(content)
		want = mac.Sum(nil)
	}
	for sig := range strings.FieldsSeq(sigs) {
		version, value, ok := strings.Cut(sig, ",")
		if !ok {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(value)
		if err != nil {
			continue
		}
		switch {
		case version == "v1" && want != nil && hmac.Equal(raw, want):
			return nil
		case version == "v1a" && public != nil && ed25519.Verify(public, content, raw):
			return nil
		}
	}
	return ErrNoMatch
}

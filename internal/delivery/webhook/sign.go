package webhook

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The Standard Webhooks headers.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// Signer signs a destination's messages.
type Signer struct {
	// Secrets sign v1 signatures, one each: during a rotation the new
	// secret and the one it replaces, so receivers holding either accept
	// the message (the dispatcher drops the old one after 24 hours).
	Secrets []Secret
	// Key, when set, adds a v1a (ed25519) signature.
	Key *KeyPair
}

// Headers are the Standard Webhooks headers of message id sent at t
// (whole seconds) with body.
func (s Signer) Headers(id string, t time.Time, body []byte) http.Header {
	h := http.Header{}
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(t.Unix(), 10))
	h.Set(HeaderSignature, s.Signature(id, t, body))
	return h
}

// Signature is the webhook-signature value: space-separated versioned
// signatures of "{id}.{timestamp}.{body}".
func (s Signer) Signature(id string, t time.Time, body []byte) string {
	content := signedContent(id, t, body)
	var sigs []string
	for _, sec := range s.Secrets {
		mac := hmac.New(sha256.New, sec.key)
		mac.Write(content)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	if s.Key != nil {
		sigs = append(sigs, "v1a,"+base64.StdEncoding.EncodeToString(ed25519.Sign(s.Key.priv, content)))
	}
	return strings.Join(sigs, " ")
}

func signedContent(id string, t time.Time, body []byte) []byte {
	ts := strconv.FormatInt(t.Unix(), 10)
	content := make([]byte, 0, len(id)+len(ts)+len(body)+2)
	content = append(content, id...)
	content = append(content, '.')
	content = append(content, ts...)
	content = append(content, '.')
	return append(content, body...)
}

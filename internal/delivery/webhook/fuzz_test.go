package webhook

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/egress"
)

// FuzzParseKeys: no text makes a parser panic; a key that parses writes
// back as text that parses to the same key; a hint never holds more than
// four characters of it.
func FuzzParseKeys(f *testing.F) {
	for _, s := range []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsk_" + strings.Repeat("A", 43) + "=",
		"whpk_" + strings.Repeat("A", 43) + "=", "whsec_", "whsec_====", "whsk_\x00", "whpk_/+/+"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if sec, err := ParseSecret(s); err == nil {
			back, err := ParseSecret(sec.Reveal())
			if err != nil || back.Reveal() != sec.Reveal() {
				t.Fatalf("secret %q does not round trip: %v", s, err)
			}
			if hint := strings.TrimSuffix(strings.TrimPrefix(sec.String(), SecretPrefix), "…"); len(hint) > 4 {
				t.Fatalf("hint %q", sec.String())
			}
		}
		if key, err := ParseKeyPair(s); err == nil {
			back, err := ParseKeyPair(key.Reveal())
			if err != nil || back.PublicKey() != key.PublicKey() {
				t.Fatalf("private key %q does not round trip: %v", s, err)
			}
		}
		if pub, err := ParsePublicKey(s); err == nil && len(pub) != 32 {
			t.Fatalf("public key of %d bytes", len(pub))
		}
	})
}

// FuzzCheckURL: no URL makes CheckURL panic; one it accepts without the
// private setting is http or https, names a host, carries no credentials,
// and names no non-public address.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"https://hooks.example.com/x?token=1", "http://127.0.0.1:8080/", "http://[::ffff:7f00:1]/",
		"http://user@host/", "http://0x7f.1/", "http://[fe80::1%25eth0]/", "javascript:alert(1)", "http://%00/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := CheckURL(s, false)
		if err != nil {
			return
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.Hostname() == "" || u.User != nil {
			t.Fatalf("accepted %q", s)
		}
		if ip, err := netip.ParseAddr(u.Hostname()); err == nil && !egress.Public(ip) {
			t.Fatalf("accepted %q, address %s", s, ip)
		}
	})
}

// FuzzVerify: no headers or body make Verify panic, and a message only
// verifies when its headers are the ones Signer gave for that body.
func FuzzVerify(f *testing.F) {
	sec := NewSecret()
	now := time.Unix(1_800_000_000, 0)
	good := Signer{Secrets: []Secret{sec}}.Headers("evt_1", now, []byte("{}"))
	f.Add("evt_1", good.Get(HeaderTimestamp), good.Get(HeaderSignature), []byte("{}"))
	f.Add("", "1", "v1,", []byte{0})
	f.Add("e", "99999999999999999999", "v1a,AAAA v1,=== ,,", []byte("x"))
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set(HeaderID, id)
		h.Set(HeaderTimestamp, ts)
		h.Set(HeaderSignature, sig)
		err := Verify(h, body, &sec, nil, 5*time.Minute, now)
		signed := Signer{Secrets: []Secret{sec}}.Headers(h.Get(HeaderID), now, body)
		if err == nil && h.Get(HeaderID) != "" && !strings.Contains(sig, signed.Get(HeaderSignature)) && ts == signed.Get(HeaderTimestamp) {
			t.Fatalf("verified a signature Signer did not give: %q", sig)
		}
	})
}

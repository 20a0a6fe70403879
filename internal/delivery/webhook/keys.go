package webhook

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// The key prefixes of Standard Webhooks: a shared secret, an ed25519
// private key, its public key.
const (
	SecretPrefix     = "whsec_"
	PrivateKeyPrefix = "whsk_"
	PublicKeyPrefix  = "whpk_"
)

// ErrBadKey is returned for a secret or key that does not parse; the error
// never repeats the text it was given.
var ErrBadKey = errors.New("bad webhook key")

// Secret is a shared signing secret (v1 signatures). Its String and
// LogValue show only a hint, so a secret printed or logged by mistake is
// not disclosed; Reveal gives the whole text, once, to its owner.
type Secret struct{ key []byte }

// NewSecret returns a random 32-byte secret.
func NewSecret() Secret {
	key := make([]byte, 32)
	rand.Read(key) // never fails (crypto/rand documents it)
	return Secret{key: key}
}

// ParseSecret reads a secret in its whsec_<base64> form: 24 to 64 bytes,
// 192 bits at least for a key that signs for years (receivers' libraries
// decode the part after the prefix as standard base64, so that is the one
// form accepted).
func ParseSecret(s string) (Secret, error) {
	key, err := parseKey(s, SecretPrefix, "secret")
	if err != nil {
		return Secret{}, err
	}
	if len(key) < 24 || len(key) > 64 {
		return Secret{}, fmt.Errorf("%w: a secret holds 24 to 64 bytes, this one %d", ErrBadKey, len(key))
	}
	return Secret{key: key}, nil
}

// Reveal is the secret's whsec_ text.
func (s Secret) Reveal() string { return SecretPrefix + base64.StdEncoding.EncodeToString(s.key) }

// String is a hint that tells secrets apart without disclosing them.
func (s Secret) String() string { return hint(s.Reveal(), SecretPrefix) }

// LogValue implements slog.LogValuer with the hint.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// KeyPair is an ed25519 signing key (v1a signatures). Like Secret, its
// String and LogValue show a hint; PublicKey is safe to publish.
type KeyPair struct{ priv ed25519.PrivateKey }

// NewKeyPair returns a random key pair.
func NewKeyPair() KeyPair {
	_, priv, _ := ed25519.GenerateKey(rand.Reader) // never fails with crypto/rand
	return KeyPair{priv: priv}
}

// ParseKeyPair reads a private key in its whsk_<base64> form: the 32-byte
// seed, or the 64 bytes of seed and public key (checked to agree).
func ParseKeyPair(s string) (KeyPair, error) {
	key, err := parseKey(s, PrivateKeyPrefix, "private key")
	if err != nil {
		return KeyPair{}, err
	}
	switch len(key) {
	case ed25519.SeedSize:
		return KeyPair{priv: ed25519.NewKeyFromSeed(key)}, nil
	case ed25519.PrivateKeySize:
		priv := ed25519.NewKeyFromSeed(key[:ed25519.SeedSize])
		if !priv.Public().(ed25519.PublicKey).Equal(ed25519.PublicKey(key[ed25519.SeedSize:])) {
			return KeyPair{}, fmt.Errorf("%w: the private key's public half does not match its seed", ErrBadKey)
		}
		return KeyPair{priv: priv}, nil
	}
	return KeyPair{}, fmt.Errorf("%w: a private key holds 32 or 64 bytes, this one %d", ErrBadKey, len(key))
}

// ParsePublicKey reads a public key in its whpk_<base64> form.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	key, err := parseKey(s, PublicKeyPrefix, "public key")
	if err != nil {
		return nil, err
	}
	if len(key) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: a public key holds 32 bytes, this one %d", ErrBadKey, len(key))
	}
	return ed25519.PublicKey(key), nil
}

// Reveal is the private key's whsk_ text (its seed).
func (k KeyPair) Reveal() string {
	return PrivateKeyPrefix + base64.StdEncoding.EncodeToString(k.priv.Seed())
}

// PublicKey is the whpk_ text receivers verify v1a signatures with.
func (k KeyPair) PublicKey() string {
	return PublicKeyPrefix + base64.StdEncoding.EncodeToString(k.priv.Public().(ed25519.PublicKey))
}

// String is a hint that tells keys apart without disclosing them.
func (k KeyPair) String() string { return hint(k.Reveal(), PrivateKeyPrefix) }

// LogValue implements slog.LogValuer with the hint.
func (k KeyPair) LogValue() slog.Value { return slog.StringValue(k.String()) }

func parseKey(s, prefix, what string) ([]byte, error) {
	b64, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return nil, fmt.Errorf("%w: a %s starts with %s", ErrBadKey, what, prefix)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("%w: the %s after %s is not standard base64", ErrBadKey, what, prefix)
	}
	return key, nil
}

// Hint is what may be shown of a secret or key given as text (whsec_,
// whsk_, whpk_): hint of it under its prefix.
func Hint(text string) string {
	for _, prefix := range []string{SecretPrefix, PrivateKeyPrefix, PublicKeyPrefix} {
		if strings.HasPrefix(text, prefix) {
			return hint(text, prefix)
		}
	}
	return hint(text, "")
}

// hint is the prefix and the first four characters after it: about 24
// bits, enough to tell a destination's secrets apart, far too few to
// guess the rest from.
func hint(text, prefix string) string {
	rest := strings.TrimPrefix(text, prefix)
	return prefix + rest[:min(4, len(rest))] + "…"
}

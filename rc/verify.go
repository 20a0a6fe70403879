package rc

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// Errors Verify returns, wrapped in a *SignatureError; test them with
// errors.Is. All of them mean the request must not be trusted (HTTP 401).
var (
	ErrMissingSignature   = errors.New("signature missing")
	ErrMalformedSignature = errors.New("signature malformed")
	ErrUnknownApp         = errors.New("app key unknown")
	ErrAppKeyMismatch     = errors.New("app key in the request differs from the body's")
	ErrBadSignature       = errors.New("signature does not match")
	ErrExpired            = errors.New("signature timestamp outside the tolerance")
	ErrReplayed           = errors.New("signature already used with another body")
)

// SignatureError is a request Verify refused.
type SignatureError struct {
	Err    error // one of the Err... values above
	Detail string
}

func (e *SignatureError) Error() string {
	if e.Detail == "" {
		return "rc: " + e.Err.Error()
	}
	return "rc: " + e.Err.Error() + ": " + e.Detail
}

func (e *SignatureError) Unwrap() error { return e.Err }

func sigErr(err error, format string, args ...any) error {
	return &SignatureError{Err: err, Detail: fmt.Sprintf(format, args...)}
}

// DefaultTolerance is how far a signed timestamp may be from the receiver's
// clock unless configured otherwise.
const DefaultTolerance = 5 * time.Minute

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// Apps maps each accepted app key to its secrets: one, or two while a
	// secret is being rotated.
	Apps map[string][]string
	// Now is the receiver's clock; time.Now when nil.
	Now func() time.Time
	// Tolerance bounds |now - signed timestamp|; DefaultTolerance when 0.
	Tolerance time.Duration
	// SkipTimestampCheck accepts signatures of any age. Without the check a
	// captured signature stays usable forever for a body that is already
	// known; leave it off outside tests of old captures.
	SkipTimestampCheck bool
	// Replay remembers accepted signatures; an in-memory one when nil.
	// Several receivers behind one load balancer must share one.
	Replay ReplayMemory
	// SkipReplayCheck turns the replay memory off.
	SkipReplayCheck bool
}

// Verifier checks RC's signature on incoming callbacks. It is safe for
// concurrent use.
type Verifier struct {
	apps      atomic.Pointer[map[string][]string] // swapped whole by SetApps
	now       func() time.Time
	tolerance time.Duration
	checkTime bool
	replay    ReplayMemory
}

// NewVerifier returns a Verifier, or an error when an app has no secret, an
// empty one, or more than two.
func NewVerifier(c VerifierConfig) (*Verifier, error) {
	v := &Verifier{
		now:       c.Now,
		tolerance: c.Tolerance,
		checkTime: !c.SkipTimestampCheck,
		replay:    c.Replay,
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.tolerance == 0 {
		v.tolerance = DefaultTolerance
	}
	if v.tolerance < 0 {
		return nil, fmt.Errorf("rc: negative signature tolerance %v", c.Tolerance)
	}
	if c.SkipReplayCheck {
		v.replay = nil
	} else if v.replay == nil {
		v.replay = NewMemoryReplay(v.now)
	}
	if err := v.SetApps(c.Apps); err != nil {
		return nil, err
	}
	return v, nil
}

// SetApps replaces the accepted apps and their secrets, as a server's
// configuration reload does: every Verify that starts after it returns sees
// the new set whole, one in progress the old one. On an error (an empty key,
// an app with no secret, an empty one or more than two) the set in force is
// kept.
func (v *Verifier) SetApps(apps map[string][]string) error {
	next := make(map[string][]string, len(apps))
	for key, secrets := range apps {
		if key == "" {
			return errors.New("rc: empty app key")
		}
		if len(secrets) == 0 || len(secrets) > 2 {
			return fmt.Errorf("rc: app %s: want one or two secrets, got %d", key, len(secrets))
		}
		for _, s := range secrets {
			if s == "" {
				return fmt.Errorf("rc: app %s: empty secret", key)
			}
		}
		next[key] = append([]string(nil), secrets...)
	}
	v.apps.Store(&next)
	return nil
}

// HasApp reports whether key is one of the apps whose callbacks are
// accepted now.
func (v *Verifier) HasApp(key string) bool {
	_, ok := (*v.apps.Load())[key]
	return ok
}

// AppKeys returns the app keys the Verifier accepts (never their secrets).
func (v *Verifier) AppKeys() []string {
	apps := *v.apps.Load()
	keys := make([]string, 0, len(apps))
	for k := range apps {
		keys = append(keys, k)
	}
	return keys
}

// Where a signature may travel, in canonical header form (the form net/http
// gives every received header); the first name of each is RC's.
var (
	nonceNames     = []string{"Nonce", "Rc-Nonce"}
	timestampNames = []string{"Timestamp", "Signtimestamp", "Rc-Timestamp"}
	signatureNames = []string{"Signature", "Rc-Signature"}
	appKeyNames    = []string{"Appkey", "App-Key", "Rc-App-Key"}
)

// Verify checks the request's signature against body, which the caller has
// read from r, and returns the app key that signed it.
//
// The nonce, timestamp and signature are read from the headers (plain or RC-
// prefixed, timestamp also as signTimestamp; names in canonical form, as
// net/http's server and Header.Set make them) or else from the query, in any
// case. The app key is the body's appKey; an appKey, App-Key or RC-App-Key
// header must agree with it. The timestamp may be in milliseconds or seconds.
//
// A signature seen before with the same body is accepted (RC redelivers; the
// caller recognises the duplicate by Callback.Key), with another body it is
// refused with ErrReplayed. Errors from the ReplayMemory are returned as they
// are: the request could not be judged, so the caller should ask for a retry.
// A body without a usable appKey yields Parse's error for it.
func (v *Verifier) Verify(r *http.Request, body []byte) (string, error) {
	nonce, ts, sig, err := signatureParams(r)
	if err != nil {
		return "", err
	}
	appKey, err := bodyAppKey(body)
	if err != nil {
		return "", err
	}
	if h := firstValue(r, appKeyNames, false); h != "" && h != appKey {
		return "", &SignatureError{Err: ErrAppKeyMismatch}
	}
	secrets, ok := (*v.apps.Load())[appKey]
	if !ok {
		return "", sigErr(ErrUnknownApp, "%s", quoteShort(appKey))
	}
	var want [20]byte
	if _, err := hex.Decode(want[:], []byte(sig)); err != nil {
		return "", sigErr(ErrMalformedSignature, "not hex")
	}
	match := 0
	for _, secret := range secrets {
		got := signSum(secret, nonce, ts)
		match |= subtle.ConstantTimeCompare(got[:], want[:])
	}
	if match != 1 {
		return "", &SignatureError{Err: ErrBadSignature}
	}

	signed := signedTime(ts)
	now := v.now()
	if v.checkTime {
		if d := now.Sub(signed); d > v.tolerance || d < -v.tolerance {
			return "", sigErr(ErrExpired, "signed at %s, %s from now, tolerance %s",
				signed.UTC().Format(time.RFC3339), d.Round(time.Second), v.tolerance)
		}
	}
	if v.replay != nil {
		// Remember the signature until its timestamp leaves the tolerance;
		// after that the timestamp check refuses it anyway.
		until := signed.Add(v.tolerance)
		if !v.checkTime {
			until = now.Add(v.tolerance)
		}
		verdict, err := v.replay.Remember(r.Context(), ReplayKey{AppKey: appKey, Nonce: nonce, Timestamp: ts}, sha256.Sum256(body), until)
		if err != nil {
			return "", fmt.Errorf("rc: replay memory: %w", err)
		}
		if verdict == ReplayOtherBody {
			return "", &SignatureError{Err: ErrReplayed}
		}
	}
	return appKey, nil
}

// ClaimedAppKey returns the app key a request claims, signed or not, for
// telling apart refused requests: the body's appKey (the one Verify judges
// by), else an appKey, App-Key or RC-App-Key header, else such a query
// parameter; "" when it names none. The value is the sender's, unchecked
// and unbounded: bound and clean it before storing or logging it.
func ClaimedAppKey(r *http.Request, body []byte) string {
	if k, err := bodyAppKey(body); err == nil {
		return k
	}
	return firstValue(r, appKeyNames, true)
}

// signatureParams reads nonce, timestamp and signature from the headers or
// the query and checks their shape.
func signatureParams(r *http.Request) (nonce, ts, sig string, err error) {
	nonce = firstValue(r, nonceNames, true)
	ts = firstValue(r, timestampNames, true)
	sig = firstValue(r, signatureNames, true)
	var missing []string
	for _, m := range [...]struct{ name, val string }{{"nonce", nonce}, {"timestamp", ts}, {"signature", sig}} {
		if m.val == "" {
			missing = append(missing, m.name)
		}
	}
	if len(missing) > 0 {
		return "", "", "", sigErr(ErrMissingSignature, "no %s header or query parameter", strings.Join(missing, ", "))
	}
	// The three values are checked here, before any of them reaches a
	// ReplayMemory: a nonce or timestamp from the query can hold NUL or
	// bytes that are not UTF-8 (a header can hold bytes >= 0x80), which
	// one memory stores and another refuses (PostgreSQL's TEXT). Every
	// memory must see the same set, so the set is decided here.
	if len(nonce) > MaxAcceptedNonceLen {
		return "", "", "", sigErr(ErrMalformedSignature, "nonce longer than %d characters", MaxAcceptedNonceLen)
	}
	if !printableASCII(nonce) {
		return "", "", "", sigErr(ErrMalformedSignature, "nonce holds a character outside printable ASCII")
	}
	if !allDigits(ts) || (len(ts) != 13 && len(ts) != 10) {
		return "", "", "", sigErr(ErrMalformedSignature, "timestamp is not 13 (ms) or 10 (s) digits")
	}
	if len(sig) != 2*20 || !allHex(sig) {
		return "", "", "", sigErr(ErrMalformedSignature, "signature is not 40 hex digits")
	}
	return nonce, ts, sig, nil
}

// MaxAcceptedNonceLen is the longest nonce Verify accepts: RC sends at most
// 18 characters (MaxNonceLen), its SDK up to 19 digits; the margin costs
// nothing and keeps the replay memory's keys small.
const MaxAcceptedNonceLen = 64

// printableASCII reports whether s holds only the characters '!' to '~':
// RC's nonces are digits or letters, and a space, a control character or a
// byte >= 0x80 in one is a forgery or a broken client.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '!' || s[i] > '~' {
			return false
		}
	}
	return true
}

func allHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// firstValue returns the first non-empty header among names, or else (when
// query is set) the first query parameter among them in any case.
func firstValue(r *http.Request, names []string, query bool) string {
	for _, n := range names {
		// Indexing skips Header.Get's canonicalisation: names are canonical.
		if vs := r.Header[n]; len(vs) > 0 && vs[0] != "" {
			return strings.TrimSpace(vs[0])
		}
	}
	if !query || r.URL == nil || r.URL.RawQuery == "" {
		return ""
	}
	q := r.URL.Query()
	for k, vs := range q {
		for _, n := range names {
			if strings.EqualFold(k, n) && len(vs) > 0 && vs[0] != "" {
				return vs[0]
			}
		}
	}
	return ""
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// signedTime reads a 13-digit millisecond or 10-digit second timestamp that
// signatureParams has checked.
func signedTime(ts string) time.Time {
	var n int64
	for i := 0; i < len(ts); i++ {
		n = n*10 + int64(ts[i]-'0')
	}
	if len(ts) == 10 {
		return time.Unix(n, 0)
	}
	return time.UnixMilli(n)
}

// bodyAppKey reads the body's appKey exactly as Parse would, without parsing
// the rest: Verify must judge the app Parse will report.
func bodyAppKey(body []byte) (string, error) {
	r, ok := openObject(body, 0)
	if !ok {
		return "", notObject(body)
	}
	p := parser{data: body}
	var (
		found  value
		dupErr error
	)
	for {
		k, v, ok := r.next()
		if !ok {
			break
		}
		if !keyIs(body, k, "appKey") {
			continue
		}
		if found.kind != kindAbsent && dupErr == nil {
			dupErr = p.duplicate(fAppKey, found, v)
		}
		found = v
	}
	if r.bad || !r.end() {
		return "", notObject(body)
	}
	if dupErr != nil {
		return "", dupErr
	}
	return p.requiredString(fAppKey, found)
}

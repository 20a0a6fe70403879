package rc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/recledger/recledger/rc"
)

// TestSignRCVector is RC's published example.
func TestSignRCVector(t *testing.T) {
	got := rc.Sign("Y1W2MeFwwwRxa0", "14314", "1408710653000")
	if want := "30be0bbca9c9b2e27578701e9fda2358a814c88f"; got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

// TestSignVectors checks Sign against vectors computed once with sha1sum, so
// a change to the rule (or to how its input is assembled) shows as drift.
func TestSignVectors(t *testing.T) {
	b, err := os.ReadFile("testdata/signature_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vectors []struct{ Note, Secret, Nonce, Timestamp, Signature string }
	if err := json.Unmarshal(b, &vectors); err != nil {
		t.Fatal(err)
	}
	if len(vectors) < 5 {
		t.Fatalf("read %d vectors, want 5", len(vectors))
	}
	for _, v := range vectors {
		if got := rc.Sign(v.Secret, v.Nonce, v.Timestamp); got != v.Signature {
			t.Errorf("%s: Sign = %s, want %s", v.Note, got, v.Signature)
		}
	}
}

const (
	testApp    = "your_appkey"
	testSecret = "Y1W2MeFwwwRxa0"
)

var testNow = time.UnixMilli(1530027865231)

func seedBody(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/seed/type1-start.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newTestVerifier(t testing.TB, now func() time.Time, secrets ...string) *rc.Verifier {
	t.Helper()
	if len(secrets) == 0 {
		secrets = []string{testSecret}
	}
	v, err := rc.NewVerifier(rc.VerifierConfig{Apps: map[string][]string{testApp: secrets}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// signedRequest builds a callback request signed in style.
func signedRequest(style rc.Style, body []byte, nonce string, at time.Time) *http.Request {
	s := rc.Signer{AppKey: testApp, Secret: testSecret, Style: style, Now: fixedClock(at), Nonce: func() string { return nonce }}
	req := httptest.NewRequest(http.MethodPost, "/v1/callbacks/recording", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	s.Apply(req, s.Sign())
	return req
}

func TestVerifyEveryStyle(t *testing.T) {
	body := seedBody(t)
	for i, style := range rc.Styles() {
		t.Run(string(style), func(t *testing.T) {
			v := newTestVerifier(t, fixedClock(testNow.Add(time.Minute)))
			req := signedRequest(style, body, "n"+string(rune('a'+i)), testNow)
			app, err := v.Verify(req, body)
			if err != nil {
				t.Fatalf("Verify: %v (headers %v, query %q)", err, req.Header, req.URL.RawQuery)
			}
			if app != testApp {
				t.Errorf("app = %q, want %q", app, testApp)
			}
			inQuery := strings.HasPrefix(string(style), "query")
			if got := req.URL.RawQuery != ""; got != inQuery {
				t.Errorf("signature in query = %v, want %v", got, inQuery)
			}
		})
	}
}

// TestVerifyAcceptedForms covers the names and spellings PROTOCOL.md says
// the receiver accepts, with RC's test vector as the signature. Requests go
// over loopback with header names written exactly as given, so the test sees
// what a server sees.
func TestVerifyAcceptedForms(t *testing.T) {
	body := []byte(`{"type":1,"appKey":"your_appkey","recordId":"r"}`)
	v, err := rc.NewVerifier(rc.VerifierConfig{Apps: map[string][]string{testApp: {testSecret}},
		Now: fixedClock(time.UnixMilli(1408710653000)), SkipReplayCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if _, err := v.Verify(r, b); err != nil {
			http.Error(w, err.Error(), rc.StatusCode(err))
		}
	}))
	defer srv.Close()
	const sig = "30be0bbca9c9b2e27578701e9fda2358a814c88f"
	tests := []struct {
		name   string
		header map[string]string
		query  string
	}{
		{"lower-case headers", map[string]string{"nonce": "14314", "timestamp": "1408710653000", "signature": sig}, ""},
		{"upper-case headers", map[string]string{"NONCE": "14314", "TIMESTAMP": "1408710653000", "SIGNATURE": sig}, ""},
		{"signTimestamp", map[string]string{"Nonce": "14314", "signTimestamp": "1408710653000", "Signature": sig}, ""},
		{"RC- headers", map[string]string{"RC-Nonce": "14314", "RC-Timestamp": "1408710653000", "RC-Signature": sig}, ""},
		{"upper-case hex", map[string]string{"nonce": "14314", "timestamp": "1408710653000", "signature": strings.ToUpper(sig)}, ""},
		{"app key header agrees", map[string]string{"nonce": "14314", "timestamp": "1408710653000", "signature": sig, "RC-App-Key": "your_appkey"}, ""},
		{"query", nil, "nonce=14314&timestamp=1408710653000&signature=" + sig},
		{"query any case", nil, "Nonce=14314&TimeStamp=1408710653000&RC-SIGNATURE=" + sig},
		{"mixed header and query", map[string]string{"nonce": "14314"}, "timestamp=1408710653000&signature=" + sig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/cb?"+tt.query, bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			for k, val := range tt.header {
				req.Header[k] = []string{val} // written as given, not canonicalised
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			answer, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("Verify: %d %s", resp.StatusCode, answer)
			}
		})
	}
}

func TestVerifyRefusals(t *testing.T) {
	body := seedBody(t)
	good := func() *http.Request { return signedRequest(rc.StyleHeaders, body, "12345", testNow) }
	tests := []struct {
		name   string
		req    func() *http.Request
		body   []byte
		now    time.Time
		want   error
		status int
	}{
		{"no signature at all", func() *http.Request { return httptest.NewRequest("POST", "/", nil) }, body, testNow, rc.ErrMissingSignature, 401},
		{"no nonce", func() *http.Request { r := good(); r.Header.Del("nonce"); return r }, body, testNow, rc.ErrMissingSignature, 401},
		{"no timestamp", func() *http.Request { r := good(); r.Header.Del("timestamp"); return r }, body, testNow, rc.ErrMissingSignature, 401},
		{"no signature", func() *http.Request { r := good(); r.Header.Del("signature"); return r }, body, testNow, rc.ErrMissingSignature, 401},
		{"timestamp not digits", func() *http.Request { r := good(); r.Header.Set("timestamp", "15300278652x1"); return r }, body, testNow, rc.ErrMalformedSignature, 401},
		{"timestamp 12 digits", func() *http.Request { r := good(); r.Header.Set("timestamp", "153002786523"); return r }, body, testNow, rc.ErrMalformedSignature, 401},
		{"signature short", func() *http.Request { r := good(); r.Header.Set("signature", "abc"); return r }, body, testNow, rc.ErrMalformedSignature, 401},
		{"signature not hex", func() *http.Request { r := good(); r.Header.Set("signature", strings.Repeat("z", 40)); return r }, body, testNow, rc.ErrMalformedSignature, 401},
		{"nonce too long", func() *http.Request { r := good(); r.Header.Set("nonce", strings.Repeat("n", 200)); return r }, body, testNow, rc.ErrMalformedSignature, 401},
		{"wrong signature", func() *http.Request {
			r := good()
			r.Header.Set("signature", rc.Sign("other", "12345", "1530027865231"))
			return r
		}, body, testNow, rc.ErrBadSignature, 401},
		{"other nonce", func() *http.Request { r := good(); r.Header.Set("nonce", "12346"); return r }, body, testNow, rc.ErrBadSignature, 401},
		{"unknown app", good, bytes.Replace(body, []byte("your_appkey"), []byte("other_app"), 1), testNow, rc.ErrUnknownApp, 401},
		{"app key header differs", func() *http.Request { r := good(); r.Header.Set("appKey", "other_app"); return r }, body, testNow, rc.ErrAppKeyMismatch, 401},
		{"expired", good, body, testNow.Add(5*time.Minute + time.Millisecond), rc.ErrExpired, 401},
		{"from the future", good, body, testNow.Add(-5*time.Minute - time.Millisecond), rc.ErrExpired, 401},
		{"body not an object", good, []byte(`[1]`), testNow, rc.ErrNotObject, 400},
		{"body without appKey", good, []byte(`{"type":1}`), testNow, rc.ErrMissingField, 400},
		{"body with two appKeys", good, []byte(`{"appKey":"your_appkey","appKey":"x"}`), testNow, rc.ErrInvalidField, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newTestVerifier(t, fixedClock(tt.now))
			app, err := v.Verify(tt.req(), tt.body)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %q, %v; want error %v", app, err, tt.want)
			}
			if app != "" {
				t.Errorf("app = %q with an error, want empty", app)
			}
			if got := rc.StatusCode(err); got != tt.status {
				t.Errorf("StatusCode = %d, want %d", got, tt.status)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Errorf("error %q contains the secret", err)
			}
		})
	}
}

// countingReplay is a real in-memory ReplayMemory that counts its calls:
// a refused shape must never reach a memory (PostgreSQL's refuses NUL and
// invalid UTF-8, so reaching it would answer 503 where SQLite's answers 200).
type countingReplay struct {
	mem   *rc.MemoryReplay
	calls int
}

func (c *countingReplay) Remember(ctx context.Context, k rc.ReplayKey, d [32]byte, until time.Time) (rc.ReplayVerdict, error) {
	c.calls++
	return c.mem.Remember(ctx, k, d, until)
}

// TestVerifySignatureShapes pins the set of nonces, timestamps and
// signatures Verify accepts, for requests signed with the right secret so
// that only the shape can refuse them: the query fallback carries any byte
// (%00, %FF), a header carries bytes >= 0x80.
func TestVerifySignatureShapes(t *testing.T) {
	body := seedBody(t)
	query := func(nonce, ts string) func() *http.Request {
		return func() *http.Request {
			q := url.Values{"nonce": {nonce}, "timestamp": {ts}, "signature": {rc.Sign(testSecret, nonce, ts)}}
			return httptest.NewRequest(http.MethodPost, "/?"+q.Encode(), nil)
		}
	}
	header := func(nonce string) func() *http.Request {
		return func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			r.Header["Nonce"] = []string{nonce}
			r.Header["Timestamp"] = []string{"1530027865231"}
			r.Header["Signature"] = []string{rc.Sign(testSecret, nonce, "1530027865231")}
			return r
		}
	}
	tests := []struct {
		name string
		req  func() *http.Request
		want error // nil: accepted
	}{
		{"RC's 18 digits", query(strings.Repeat("7", 18), "1530027865231"), nil},
		{"SDK's 19 digits", query(strings.Repeat("9", 19), "1530027865"), nil},
		{"64 printable", query(strings.Repeat("~", 32)+strings.Repeat("!", 32), "1530027865231"), nil},
		{"65 characters", query(strings.Repeat("n", 65), "1530027865231"), rc.ErrMalformedSignature},
		{"NUL in query nonce", query("12\x0034", "1530027865231"), rc.ErrMalformedSignature},
		{"only NUL", query("\x00", "1530027865231"), rc.ErrMalformedSignature},
		{"invalid UTF-8 in query nonce", query("12\xff34", "1530027865231"), rc.ErrMalformedSignature},
		{"valid UTF-8 outside ASCII", query("né", "1530027865231"), rc.ErrMalformedSignature},
		{"emoji", query("😀", "1530027865231"), rc.ErrMalformedSignature},
		{"inner space", query("12 34", "1530027865231"), rc.ErrMalformedSignature},
		{"tab", query("12\t34", "1530027865231"), rc.ErrMalformedSignature},
		{"DEL", query("12\x7f", "1530027865231"), rc.ErrMalformedSignature},
		{"byte 0x80 in header nonce", header("12\x80"), rc.ErrMalformedSignature},
		{"invalid UTF-8 in header nonce", header("\xff\xfe"), rc.ErrMalformedSignature},
		{"NUL in query timestamp", query("n", "153002786523\x00"), rc.ErrMalformedSignature},
		{"invalid UTF-8 in query timestamp", query("n", "\xff530027865231"), rc.ErrMalformedSignature},
		{"NUL in query signature", func() *http.Request {
			return httptest.NewRequest(http.MethodPost, "/?nonce=n&timestamp=1530027865231&signature="+strings.Repeat("a", 38)+"%00a", nil)
		}, rc.ErrMalformedSignature},
		{"invalid UTF-8 in query signature", func() *http.Request {
			return httptest.NewRequest(http.MethodPost, "/?nonce=n&timestamp=1530027865231&signature="+strings.Repeat("a", 39)+"%FF", nil)
		}, rc.ErrMalformedSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := &countingReplay{mem: rc.NewMemoryReplay(fixedClock(testNow))}
			v, err := rc.NewVerifier(rc.VerifierConfig{Apps: map[string][]string{testApp: {testSecret}}, Now: fixedClock(testNow), Replay: mem})
			if err != nil {
				t.Fatal(err)
			}
			app, err := v.Verify(tt.req(), body)
			if tt.want == nil {
				if err != nil || app != testApp {
					t.Fatalf("Verify = %q, %v; want accepted", app, err)
				}
				if mem.calls != 1 {
					t.Errorf("replay memory called %d times, want 1", mem.calls)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %q, %v; want %v", app, err, tt.want)
			}
			if got := rc.StatusCode(err); got != http.StatusUnauthorized {
				t.Errorf("StatusCode = %d, want 401", got)
			}
			if mem.calls != 0 {
				t.Errorf("replay memory called %d times for a refused shape, want 0", mem.calls)
			}
			if !utf8.ValidString(err.Error()) || strings.ContainsRune(err.Error(), 0) {
				t.Errorf("error %q echoes the hostile value", err)
			}
		})
	}
}

func TestVerifyEdgesOfTolerance(t *testing.T) {
	body := seedBody(t)
	for _, d := range []time.Duration{-5 * time.Minute, 5 * time.Minute} {
		v := newTestVerifier(t, fixedClock(testNow.Add(d)))
		if _, err := v.Verify(signedRequest(rc.StyleHeaders, body, "n", testNow), body); err != nil {
			t.Errorf("clock %v from the signature: %v, want accepted", d, err)
		}
	}
	v, err := rc.NewVerifier(rc.VerifierConfig{Apps: map[string][]string{testApp: {testSecret}},
		Now: fixedClock(testNow.Add(time.Hour)), Tolerance: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(signedRequest(rc.StyleHeaders, body, "n", testNow), body); err != nil {
		t.Errorf("an hour old with a 2h tolerance: %v, want accepted", err)
	}
	v, err = rc.NewVerifier(rc.VerifierConfig{Apps: map[string][]string{testApp: {testSecret}},
		Now: fixedClock(testNow.Add(48 * time.Hour)), SkipTimestampCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(signedRequest(rc.StyleHeaders, body, "n", testNow), body); err != nil {
		t.Errorf("two days old without the timestamp check: %v, want accepted", err)
	}
}

func TestVerifyRotation(t *testing.T) {
	body := seedBody(t)
	v := newTestVerifier(t, fixedClock(testNow), "new-secret", testSecret)
	if _, err := v.Verify(signedRequest(rc.StyleHeaders, body, "old", testNow), body); err != nil {
		t.Errorf("old secret during rotation: %v", err)
	}
	req := signedRequest(rc.StyleHeaders, body, "new", testNow)
	req.Header.Set("signature", rc.Sign("new-secret", "new", req.Header.Get("timestamp")))
	if _, err := v.Verify(req, body); err != nil {
		t.Errorf("new secret during rotation: %v", err)
	}
}

func TestVerifyReplay(t *testing.T) {
	body := seedBody(t)
	now := testNow
	v := newTestVerifier(t, func() time.Time { return now })
	if _, err := v.Verify(signedRequest(rc.StyleHeaders, body, "r1", testNow), body); err != nil {
		t.Fatalf("first delivery: %v", err)
	}
	if _, err := v.Verify(signedRequest(rc.StyleHeaders, body, "r1", testNow), body); err != nil {
		t.Errorf("same signature, same body (a redelivery): %v, want accepted", err)
	}
	other := bytes.Replace(body, []byte(`"type": 1`), []byte(`"type": 3`), 1)
	if _, err := v.Verify(signedRequest(rc.StyleHeaders, other, "r1", testNow), other); !errors.Is(err, rc.ErrReplayed) {
		t.Errorf("same signature, other body: %v, want ErrReplayed", err)
	}
	if _, err := v.Verify(signedRequest(rc.StyleHeaders, other, "r2", testNow), other); err != nil {
		t.Errorf("other body with its own signature: %v", err)
	}

	off, err := rc.NewVerifier(rc.VerifierConfig{Apps: map[string][]string{testApp: {testSecret}}, Now: fixedClock(testNow), SkipReplayCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{body, other} {
		if _, err := off.Verify(signedRequest(rc.StyleHeaders, b, "r1", testNow), b); err != nil {
			t.Errorf("replay check off: %v", err)
		}
	}
}

type failingMemory struct{ err error }

func (f failingMemory) Remember(context.Context, rc.ReplayKey, [32]byte, time.Time) (rc.ReplayVerdict, error) {
	return 0, f.err
}

func TestVerifyReplayMemoryFails(t *testing.T) {
	body := seedBody(t)
	down := errors.New("database is locked")
	v, err := rc.NewVerifier(rc.VerifierConfig{Apps: map[string][]string{testApp: {testSecret}}, Now: fixedClock(testNow), Replay: failingMemory{down}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(signedRequest(rc.StyleHeaders, body, "n", testNow), body)
	if !errors.Is(err, down) {
		t.Fatalf("Verify = %v, want the memory's error", err)
	}
	var se *rc.SignatureError
	if errors.As(err, &se) {
		t.Errorf("a failing memory reads as a refused signature (%v)", se)
	}
	if got := rc.StatusCode(err); got != http.StatusServiceUnavailable {
		t.Errorf("StatusCode = %d, want 503 so RC retries", got)
	}
}

func TestMemoryReplayExpiry(t *testing.T) {
	now := testNow
	m := rc.NewMemoryReplay(func() time.Time { return now })
	ctx := context.Background()
	key := rc.ReplayKey{AppKey: "a", Nonce: "n", Timestamp: "1"}
	d1, d2 := [32]byte{1}, [32]byte{2}
	steps := []struct {
		digest [32]byte
		want   rc.ReplayVerdict
	}{{d1, rc.ReplayFirst}, {d1, rc.ReplaySameBody}, {d2, rc.ReplayOtherBody}}
	for i, s := range steps {
		got, err := m.Remember(ctx, key, s.digest, now.Add(time.Minute))
		if err != nil || got != s.want {
			t.Fatalf("step %d: %v, %v; want %v", i, got, err, s.want)
		}
	}
	now = now.Add(time.Minute)
	if got, _ := m.Remember(ctx, key, d2, now.Add(time.Minute)); got != rc.ReplayFirst {
		t.Errorf("after expiry: %v, want ReplayFirst", got)
	}
	// Expired entries are swept as the map grows, so it stays near the live set.
	for i := range 5000 {
		now = now.Add(time.Millisecond)
		k := rc.ReplayKey{AppKey: "a", Nonce: "n", Timestamp: time.Duration(i).String()}
		if _, err := m.Remember(ctx, k, d1, now.Add(10*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	if n := m.Len(); n > 2048 {
		t.Errorf("memory holds %d entries with ~10 live, want expired ones swept", n)
	}
}

func TestNewVerifierRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  rc.VerifierConfig
	}{
		{"no secret", rc.VerifierConfig{Apps: map[string][]string{"a": nil}}},
		{"three secrets", rc.VerifierConfig{Apps: map[string][]string{"a": {"1", "2", "3"}}}},
		{"empty secret", rc.VerifierConfig{Apps: map[string][]string{"a": {""}}}},
		{"empty key", rc.VerifierConfig{Apps: map[string][]string{"": {"s"}}}},
		{"negative tolerance", rc.VerifierConfig{Tolerance: -time.Second}},
	}
	for _, tt := range tests {
		if _, err := rc.NewVerifier(tt.cfg); err == nil {
			t.Errorf("%s: NewVerifier succeeded, want an error", tt.name)
		}
	}
	v, err := rc.NewVerifier(rc.VerifierConfig{Apps: map[string][]string{"a": {"secret-value"}}})
	if err != nil {
		t.Fatal(err)
	}
	if keys := v.AppKeys(); len(keys) != 1 || keys[0] != "a" {
		t.Errorf("AppKeys = %v, want [a]", keys)
	}
}

func TestParseStyle(t *testing.T) {
	for _, s := range rc.Styles() {
		if got, err := rc.ParseStyle(string(s)); err != nil || got != s {
			t.Errorf("ParseStyle(%q) = %q, %v", s, got, err)
		}
	}
	if _, err := rc.ParseStyle("header"); err == nil || !strings.Contains(err.Error(), "rc-headers") {
		t.Errorf("ParseStyle(header) error = %v, want one listing the styles", err)
	}
}

func TestRandomNonce(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		n := rc.RandomNonce()
		if len(n) == 0 || len(n) > rc.MaxNonceLen || seen[n] {
			t.Fatalf("nonce %q: empty, longer than %d or repeated", n, rc.MaxNonceLen)
		}
		seen[n] = true
	}
}

// FuzzVerify feeds arbitrary bodies and signature values. Whatever it sends,
// Verify must not panic, and it may accept only a correct signature by the
// configured app, which must be the app Parse reads from the same body.
func FuzzVerify(f *testing.F) {
	body := seedBody(f)
	f.Add(body, "12345", "1530027865231", rc.Sign(testSecret, "12345", "1530027865231"), "")
	f.Add(body, "14314", "1530027865", rc.Sign(testSecret, "14314", "1530027865"), "your_appkey")
	f.Add([]byte(`{"appKey":"your_appkey","appKey":"your_appkey"}`), "n", "1530027865231", rc.Sign(testSecret, "n", "1530027865231"), "")
	f.Add([]byte(`{"app\u004bey":"your_appkey"}`), "n", "1530027865231", strings.ToUpper(rc.Sign(testSecret, "n", "1530027865231")), "x")
	f.Add([]byte(`{"appKey":123}`), "", "", "", "")
	// Validly signed hostile nonces and timestamps: they travel in the
	// query (%00, %FF) and must be refused before the replay memory.
	for _, n := range []string{"12\x0034", "\xff\xfe", "n\x80", "\U0001F600", strings.Repeat("7", 65), "a b"} {
		f.Add(body, n, "1530027865231", rc.Sign(testSecret, n, "1530027865231"), "")
	}
	f.Add(body, "n", "153002786523\x00", rc.Sign(testSecret, "n", "153002786523\x00"), "")
	f.Add(body, "n", "1530027865231", strings.Repeat("a", 39)+"\x00", "")
	f.Fuzz(func(t *testing.T, body []byte, nonce, ts, sig, appKeyHeader string) {
		v, err := rc.NewVerifier(rc.VerifierConfig{
			Apps: map[string][]string{testApp: {testSecret}, "123": {"numeric-app-secret"}},
			Now:  fixedClock(testNow),
		})
		if err != nil {
			t.Fatal(err)
		}
		// A value a header cannot carry goes in the query, the fallback
		// PROTOCOL.md allows, which carries any byte (%00, %FF).
		req := httptest.NewRequest(http.MethodPost, "/", nil)
		q := url.Values{}
		sent := map[string]string{}
		for k, val := range map[string]string{"nonce": nonce, "timestamp": ts, "signature": sig, "appKey": appKeyHeader} {
			switch {
			case val == "":
			case validHeaderValue(val):
				req.Header.Set(k, val)
				sent[k] = val
			case k != "appKey":
				q.Set(k, val)
				sent[k] = val
			}
		}
		req.URL.RawQuery = q.Encode()
		app, err := v.Verify(req, body)
		if err != nil {
			if rc.StatusCode(err) == http.StatusServiceUnavailable {
				t.Fatalf("Verify error %v maps to 503; only a failing memory may", err)
			}
			return
		}
		secret := map[string]string{testApp: testSecret, "123": "numeric-app-secret"}[app]
		if want := rc.Sign(secret, sent["nonce"], sent["timestamp"]); !strings.EqualFold(sent["signature"], want) {
			t.Fatalf("accepted signature %q for app %q, want %q", sent["signature"], app, want)
		}
		// What reached the replay memory is what every memory can store.
		if n := sent["nonce"]; len(n) > rc.MaxAcceptedNonceLen || strings.IndexFunc(n, func(r rune) bool { return r < '!' || r > '~' }) >= 0 {
			t.Fatalf("accepted nonce %q: over %d bytes or outside printable ASCII", n, rc.MaxAcceptedNonceLen)
		}
		if cb, err := rc.Parse(body); err == nil && cb.AppKey != app {
			t.Fatalf("Verify says app %q, Parse says %q", app, cb.AppKey)
		}
	})
}

func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return false
		}
	}
	return strings.TrimSpace(s) == s
}

// TestVerifierSetApps: a reload's secret is in force at once and the
// replaced one refused; a bad set leaves the one in force.
func TestVerifierSetApps(t *testing.T) {
	body := seedBody(t)
	v := newTestVerifier(t, fixedClock(testNow))
	const newSecret = "n3w-secret"
	if err := v.SetApps(map[string][]string{testApp: {newSecret}}); err != nil {
		t.Fatal(err)
	}
	signed := func(secret, nonce string) *http.Request {
		s := rc.Signer{AppKey: testApp, Secret: secret, Now: fixedClock(testNow), Nonce: func() string { return nonce }}
		req := httptest.NewRequest(http.MethodPost, "/v1/callbacks/recording", bytes.NewReader(body))
		s.Apply(req, s.Sign())
		return req
	}
	if _, err := v.Verify(signed(newSecret, "new1"), body); err != nil {
		t.Errorf("new secret: %v", err)
	}
	if _, err := v.Verify(signed(testSecret, "old1"), body); !errors.Is(err, rc.ErrBadSignature) {
		t.Errorf("old secret: %v, want ErrBadSignature", err)
	}
	for _, bad := range []map[string][]string{{"": {"s"}}, {testApp: {}}, {testApp: {""}}, {testApp: {"a", "b", "c"}}} {
		if err := v.SetApps(bad); err == nil {
			t.Errorf("SetApps(%v) = nil, want an error", bad)
		}
	}
	if _, err := v.Verify(signed(newSecret, "new2"), body); err != nil {
		t.Errorf("new secret after refused sets: %v", err)
	}
	if got := v.AppKeys(); len(got) != 1 || got[0] != testApp {
		t.Errorf("AppKeys = %v", got)
	}
}

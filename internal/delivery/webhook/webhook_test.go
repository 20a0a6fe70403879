package webhook

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

var (
	at     = time.Now()
	body   = []byte(`{"id":"evt_1","type":"recording.completed","recordId":"r1"}`)
	signer = Signer{Secrets: []Secret{NewSecret()}}
)

// TestSignaturesVerifyWithStandardWebhooks: the specification's own Go
// library accepts our v1 signature, and refuses it for another body, id
// or timestamp, or with another secret.
func TestSignaturesVerifyWithStandardWebhooks(t *testing.T) {
	sec := NewSecret()
	h := Signer{Secrets: []Secret{sec}}.Headers("evt_1", at, body)
	wh, err := standardwebhooks.NewWebhook(sec.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(body, h); err != nil {
		t.Fatalf("the standard library refuses our signature: %v", err)
	}
	other, _ := standardwebhooks.NewWebhook(NewSecret().Reveal())
	for name, check := range map[string]func() error{
		"another body":      func() error { return wh.Verify(append([]byte{' '}, body...), h) },
		"another id":        func() error { return wh.Verify(body, with(h, HeaderID, "evt_2")) },
		"another timestamp": func() error { return wh.Verify(body, with(h, HeaderTimestamp, fmt.Sprint(at.Unix()+1))) },
		"another secret":    func() error { return other.Verify(body, h) },
	} {
		if err := check(); !errors.Is(err, standardwebhooks.ErrNoMatchingSignature) {
			t.Errorf("%s: Verify = %v, want no matching signature", name, err)
		}
	}
}

func with(h http.Header, k, v string) http.Header {
	c := h.Clone()
	c.Set(k, v)
	return c
}

// TestRotationSignsWithBoth: during a rotation a receiver holding either
// secret accepts the message.
func TestRotationSignsWithBoth(t *testing.T) {
	old, next := NewSecret(), NewSecret()
	h := Signer{Secrets: []Secret{next, old}}.Headers("evt_1", at, body)
	if n := len(strings.Fields(h.Get(HeaderSignature))); n != 2 {
		t.Fatalf("%d signatures, want 2: %q", n, h.Get(HeaderSignature))
	}
	for _, sec := range []Secret{old, next} {
		wh, _ := standardwebhooks.NewWebhook(sec.Reveal())
		if err := wh.Verify(body, h); err != nil {
			t.Errorf("a receiver holding %s refuses: %v", sec, err)
		}
	}
}

// TestAsymmetricSignature: the v1a signature verifies with the published
// public key (ed25519 over "{id}.{timestamp}.{body}"), beside v1, and the
// standard library, which knows only v1, still accepts the message.
func TestAsymmetricSignature(t *testing.T) {
	sec, key := NewSecret(), NewKeyPair()
	h := Signer{Secrets: []Secret{sec}, Key: &key}.Headers("evt_9", at, body)
	pub, err := ParsePublicKey(key.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, sig := range strings.Fields(h.Get(HeaderSignature)) {
		b64, ok := strings.CutPrefix(sig, "v1a,")
		if !ok {
			continue
		}
		found = true
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Fatal(err)
		}
		msg := fmt.Appendf(nil, "evt_9.%d.%s", at.Unix(), body)
		if !ed25519.Verify(pub, msg, raw) {
			t.Error("v1a signature does not verify with the public key")
		}
		if ed25519.Verify(pub, append(msg, ' '), raw) {
			t.Error("v1a signature verifies another body")
		}
	}
	if !found {
		t.Fatalf("no v1a signature in %q", h.Get(HeaderSignature))
	}
	wh, _ := standardwebhooks.NewWebhook(sec.Reveal())
	if err := wh.Verify(body, h); err != nil {
		t.Errorf("v1 beside v1a: the standard library refuses: %v", err)
	}
}

func TestParseKeys(t *testing.T) {
	seed := make([]byte, 32)
	priv := ed25519.NewKeyFromSeed(seed)
	b64 := base64.StdEncoding.EncodeToString
	for _, tc := range []struct {
		name, text string
		parse      func(string) error
		ok         bool
	}{
		{"secret", "whsec_" + b64(make([]byte, 24)), secretOK, true},
		{"secret of 64 bytes", "whsec_" + b64(make([]byte, 64)), secretOK, true},
		{"secret of 23 bytes", "whsec_" + b64(make([]byte, 23)), secretOK, false},
		{"secret of 65 bytes", "whsec_" + b64(make([]byte, 65)), secretOK, false},
		{"secret without prefix", b64(make([]byte, 24)), secretOK, false},
		{"secret in URL base64", "whsec_" + base64.URLEncoding.EncodeToString([]byte{0xfb, 0xff, 0xfe, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}), secretOK, false},
		{"secret with NUL", "whsec_\x00" + b64(make([]byte, 24)), secretOK, false},
		{"private seed", "whsk_" + b64(seed), keyOK, true},
		{"private seed and public", "whsk_" + b64(priv), keyOK, true},
		{"private with another public half", "whsk_" + b64(append(seed, make([]byte, 32)...)), keyOK, false},
		{"private of 31 bytes", "whsk_" + b64(seed[:31]), keyOK, false},
		{"public", "whpk_" + b64(priv.Public().(ed25519.PublicKey)), publicOK, true},
		{"public given as secret", "whsec_" + b64(priv.Public().(ed25519.PublicKey)), publicOK, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.parse(tc.text)
			if tc.ok != (err == nil) {
				t.Fatalf("parse = %v, want ok %v", err, tc.ok)
			}
			if err != nil {
				if !errors.Is(err, ErrBadKey) {
					t.Errorf("error %v is not ErrBadKey", err)
				}
				if rest := strings.SplitN(tc.text, "_", 2); len(rest) == 2 && len(rest[1]) > 8 && strings.Contains(err.Error(), rest[1]) {
					t.Errorf("error repeats the key: %v", err)
				}
			}
		})
	}
}

func secretOK(s string) error { _, err := ParseSecret(s); return err }
func keyOK(s string) error    { _, err := ParseKeyPair(s); return err }
func publicOK(s string) error { _, err := ParsePublicKey(s); return err }

// TestKeysRoundTrip: what Reveal writes, Parse reads back to the same key.
func TestKeysRoundTrip(t *testing.T) {
	sec := NewSecret()
	back, err := ParseSecret(sec.Reveal())
	if err != nil || back.Reveal() != sec.Reveal() {
		t.Errorf("secret round trip: %v", err)
	}
	key := NewKeyPair()
	kb, err := ParseKeyPair(key.Reveal())
	if err != nil || kb.PublicKey() != key.PublicKey() {
		t.Errorf("key pair round trip: %v", err)
	}
}

// TestKeysPrintAsHints: a secret or private key printed or logged by
// mistake shows a hint, never the key.
func TestKeysPrintAsHints(t *testing.T) {
	sec, key := NewSecret(), NewKeyPair()
	for _, tc := range []struct{ shown, whole, prefix string }{
		{fmt.Sprint(sec), sec.Reveal(), SecretPrefix},
		{fmt.Sprintf("%v", sec), sec.Reveal(), SecretPrefix},
		{sec.LogValue().String(), sec.Reveal(), SecretPrefix},
		{fmt.Sprint(key), key.Reveal(), PrivateKeyPrefix},
		{key.LogValue().String(), key.Reveal(), PrivateKeyPrefix},
	} {
		secret := strings.TrimPrefix(tc.whole, tc.prefix)
		if strings.Contains(tc.shown, secret[:8]) || !strings.HasPrefix(tc.shown, tc.prefix) {
			t.Errorf("shown as %q (key %q…)", tc.shown, tc.whole[:10])
		}
	}
}

// receiver is a test endpoint on 127.0.0.1 counting what reaches it.
func receiver(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestSendOutcomes(t *testing.T) {
	sec := NewSecret()
	wh, _ := standardwebhooks.NewWebhook(sec.Reveal())
	elsewhere, elsewhereHits := receiver(t, func(w http.ResponseWriter, r *http.Request) {})
	date := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	for _, tc := range []struct {
		name       string
		answer     func(w http.ResponseWriter)
		outcome    Outcome
		status     int
		retryAfter time.Duration // at least; 0: exactly 0
	}{
		{"200", func(w http.ResponseWriter) { io.WriteString(w, "thanks") }, Delivered, 200, 0},
		{"204", func(w http.ResponseWriter) { w.WriteHeader(204) }, Delivered, 204, 0},
		{"500", func(w http.ResponseWriter) { w.WriteHeader(500) }, Failed, 500, 0},
		{"410 disables", func(w http.ResponseWriter) { w.WriteHeader(410) }, Gone, 410, 0},
		{"429 with seconds", func(w http.ResponseWriter) { w.Header().Set("Retry-After", "7"); w.WriteHeader(429) }, Failed, 429, 7 * time.Second},
		{"503 with a date", func(w http.ResponseWriter) { w.Header().Set("Retry-After", date); w.WriteHeader(503) }, Failed, 503, 80 * time.Second},
		{"500 with Retry-After is not asked to wait", func(w http.ResponseWriter) { w.Header().Set("Retry-After", "7"); w.WriteHeader(500) }, Failed, 500, 0},
		{"redirect is not followed", func(w http.ResponseWriter) {
			w.Header().Set("Location", elsewhere.URL)
			w.WriteHeader(307)
		}, Failed, 307, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var verified error = errors.New("not called")
			srv, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
				got, _ := io.ReadAll(r.Body)
				verified = wh.Verify(got, r.Header)
				tc.answer(w)
			})
			a := New(Options{AllowPrivate: true}).Send(context.Background(), srv.URL+"/hook?token=x", Signer{Secrets: []Secret{sec}}, "evt_1", time.Now(), body)
			if a.Outcome != tc.outcome || a.Status != tc.status || a.Err != nil {
				t.Errorf("attempt %v status %d err %v, want %v %d", a.Outcome, a.Status, a.Err, tc.outcome, tc.status)
			}
			if verified != nil {
				t.Errorf("the receiver's check: %v", verified)
			}
			if tc.retryAfter == 0 && a.RetryAfter != 0 || a.RetryAfter < tc.retryAfter || a.RetryAfter > tc.retryAfter+15*time.Second {
				t.Errorf("RetryAfter %v, want %v", a.RetryAfter, tc.retryAfter)
			}
		})
	}
	if n := elsewhereHits.Load(); n != 0 {
		t.Errorf("the redirect's target was reached %d times", n)
	}
}

// TestPrivateAddressesRefused: by default no attempt reaches a loopback
// endpoint, by address or by a name that resolves to it; the setting
// lets it.
func TestPrivateAddressesRefused(t *testing.T) {
	srv, hits := receiver(t, func(w http.ResponseWriter, r *http.Request) {})
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	for _, url := range []string{srv.URL, "http://localhost:" + port, "http://[::ffff:127.0.0.1]:" + port} {
		a := New(Options{}).Send(context.Background(), url, Signer{Secrets: []Secret{NewSecret()}}, "evt_1", at, body)
		if a.Outcome != Failed || !errors.Is(a.Err, ErrForbiddenAddress) {
			t.Errorf("%s: attempt %v, %v; want refused", url, a.Outcome, a.Err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("%d requests reached the loopback endpoint", n)
	}
	if a := New(Options{AllowPrivate: true}).Send(context.Background(), srv.URL, signer, "evt_1", at, body); a.Outcome != Delivered {
		t.Errorf("with AllowPrivate: %v %v", a.Outcome, a.Err)
	}
}

// TestAnswersAreBounded: a receiver that answers without end is read up
// to MaxResponseBytes; the attempt keeps ExcerptBytes.
func TestAnswersAreBounded(t *testing.T) {
	var written atomic.Int64
	srv, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("x", 32<<10))
		for range 1024 { // 32 MiB, unless the client stops reading
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	a := New(Options{AllowPrivate: true, MaxResponseBytes: 64 << 10}).Send(context.Background(), srv.URL, signer, "evt_1", at, body)
	if a.Outcome != Delivered || len(a.Response) != ExcerptBytes {
		t.Errorf("attempt %v, %d bytes kept, want delivered, %d", a.Outcome, len(a.Response), ExcerptBytes)
	}
	srv.CloseClientConnections()
	if w := written.Load(); w >= 32<<20 {
		t.Errorf("the receiver wrote all %d bytes: the answer was read to the end", w)
	}
}

// TestTimeout: an answer that does not come within Timeout fails the
// attempt, a 2xx included when its body does not finish in time.
func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release) // before the servers' Close, which waits for their handlers
	slowHeaders, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
	})
	slowBody, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
	})
	c := New(Options{AllowPrivate: true, Timeout: 200 * time.Millisecond})
	for _, srv := range []*httptest.Server{slowHeaders, slowBody} {
		a := c.Send(context.Background(), srv.URL, signer, "evt_1", at, body)
		if a.Outcome != Failed || !errors.Is(a.Err, context.DeadlineExceeded) {
			t.Errorf("attempt %v (status %d), err %v; want failed by the deadline", a.Outcome, a.Status, a.Err)
		}
	}
}

// TestErrorsLeaveTheURLOut: a destination URL may carry a token; attempt
// errors are logged and shown, so they never hold the URL.
func TestErrorsLeaveTheURLOut(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	a := New(Options{AllowPrivate: true}).Send(context.Background(), "http://"+addr+"/hook?token=s3cr3t-token", signer, "evt_1", at, body)
	if a.Err == nil || strings.Contains(a.Err.Error(), "s3cr3t") {
		t.Errorf("attempt error %v", a.Err)
	}
	a = New(Options{AllowPrivate: true}).Send(context.Background(), "http://"+addr+"/hook?token=s3cr3t-token\x7f", signer, "evt_1", at, body)
	if a.Err == nil || strings.Contains(a.Err.Error(), "s3cr3t") {
		t.Errorf("attempt error for a URL that does not parse: %v", a.Err)
	}
}

// TestNeverUnsigned: a Signer with nothing to sign with sends nothing.
func TestNeverUnsigned(t *testing.T) {
	srv, hits := receiver(t, func(w http.ResponseWriter, r *http.Request) {})
	a := New(Options{AllowPrivate: true}).Send(context.Background(), srv.URL, Signer{}, "evt_1", at, body)
	if a.Outcome != Failed || !errors.Is(a.Err, ErrNoKey) || hits.Load() != 0 {
		t.Errorf("attempt %v, %v, %d requests; want refused before sending", a.Outcome, a.Err, hits.Load())
	}
}

func TestCheckURL(t *testing.T) {
	for _, tc := range []struct {
		url          string
		allowPrivate bool
		want         error
	}{
		{"https://hooks.example.com/recledger?token=x", false, nil},
		{"http://93.184.216.34:8080/hook", false, nil},
		{"http://127.0.0.1:8080/hook", false, ErrForbiddenAddress},
		{"http://127.0.0.1:8080/hook", true, nil},
		{"http://[::1]/hook", false, ErrForbiddenAddress},
		{"http://[fe80::1]/hook", false, ErrForbiddenAddress},
		{"http://169.254.169.254/latest/meta-data", false, ErrForbiddenAddress},
		{"http://10.1.2.3/", false, ErrForbiddenAddress},
		{"ftp://hooks.example.com/", false, ErrBadURL},
		{"hooks.example.com/hook", false, ErrBadURL},
		{"https:///hook", false, ErrBadURL},
		{"https://user:pass@hooks.example.com/", false, ErrBadURL},
		{"https://hooks.example.com/#frag", false, ErrBadURL},
		{"https://hooks.example.com/\x00", false, ErrBadURL},
	} {
		_, err := CheckURL(tc.url, tc.allowPrivate)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("CheckURL(%q, %v) = %v, want %v", tc.url, tc.allowPrivate, err, tc.want)
		}
	}
}

func TestScheduleNext(t *testing.T) {
	s := Schedule{}
	low, high := func() float64 { return 0 }, func() float64 { return 0.999999 }
	for n, base := range DefaultWaits {
		lo, ok1 := s.Next(n+1, Attempt{}, low)
		hi, ok2 := s.Next(n+1, Attempt{}, high)
		if !ok1 || !ok2 || lo < base*8/10-time.Millisecond || hi > base*12/10 || lo >= hi {
			t.Errorf("retry %d: waits %v..%v (%v %v), want within 20%% of %v", n+1, lo, hi, ok1, ok2, base)
		}
	}
	if _, ok := s.Next(len(DefaultWaits)+1, Attempt{}, nil); ok {
		t.Error("a retry past the schedule: want a dead letter")
	}
	if w, _ := s.Next(1, Attempt{RetryAfter: time.Minute}, low); w != time.Minute {
		t.Errorf("Retry-After 1m over a 5 s wait: %v", w)
	}
	if w, _ := s.Next(4, Attempt{RetryAfter: time.Minute}, low); w >= time.Hour {
		// The schedule's wait is longer than asked: it stands.
	} else {
		t.Errorf("Retry-After 1m under a 2 h wait: %v", w)
	}
	custom := Schedule{Waits: []time.Duration{time.Second}, Jitter: 0.5}
	if w, ok := custom.Next(1, Attempt{}, low); !ok || w != 500*time.Millisecond {
		t.Errorf("custom schedule: %v %v", w, ok)
	}
}

// TestVerify: Verify accepts what Signer signs (either secret of a
// rotation, or the ed25519 key) and what the spec's library signs, and
// refuses a changed body, another secret, a stale timestamp and missing
// headers.
func TestVerify(t *testing.T) {
	now := time.Now()
	sec, other := NewSecret(), NewSecret()
	kp := NewKeyPair()
	pub, err := ParsePublicKey(kp.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"type":"recording.completed"}`)
	rotating := Signer{Secrets: []Secret{other, sec}}.Headers("evt_1", now, body)
	if err := Verify(rotating, body, &sec, nil, 5*time.Minute, now); err != nil {
		t.Errorf("a rotation's second signature: %v", err)
	}
	if err := Verify(Signer{Key: &kp}.Headers("evt_1", now, body), body, nil, pub, 5*time.Minute, now); err != nil {
		t.Errorf("v1a: %v", err)
	}
	lib, err := standardwebhooks.NewWebhook(sec.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	sig, err := lib.Sign("evt_2", now, body)
	if err != nil {
		t.Fatal(err)
	}
	header := func(id, ts, sig string) http.Header {
		h := http.Header{}
		for k, v := range map[string]string{HeaderID: id, HeaderTimestamp: ts, HeaderSignature: sig} {
			if v != "" {
				h.Set(k, v)
			}
		}
		return h
	}
	h := header("evt_2", strconv.FormatInt(now.Unix(), 10), sig)
	if err := Verify(h, body, &sec, nil, 5*time.Minute, now); err != nil {
		t.Errorf("the library's signature: %v", err)
	}
	for name, c := range map[string]struct {
		h    http.Header
		body []byte
		want error
	}{
		"changed body":  {h, []byte(`{"type":"recording.failed"}`), ErrNoMatch},
		"other secret":  {Signer{Secrets: []Secret{other}}.Headers("evt_1", now, body), body, ErrNoMatch},
		"stale":         {Signer{Secrets: []Secret{sec}}.Headers("evt_1", now.Add(-6*time.Minute), body), body, ErrStale},
		"future":        {Signer{Secrets: []Secret{sec}}.Headers("evt_1", now.Add(6*time.Minute), body), body, ErrStale},
		"no signature":  {header("evt_1", "1", ""), body, ErrMissingHeaders},
		"v1a as v1":     {Signer{Key: &kp}.Headers("evt_1", now, body), body, ErrNoMatch},
		"garbage":       {header("e", strconv.FormatInt(now.Unix(), 10), "v1,%%% v1 ,"), body, ErrNoMatch},
		"bad timestamp": {header("e", "x", "v1,AA=="), body, ErrMissingHeaders},
	} {
		if err := Verify(c.h, c.body, &sec, nil, 5*time.Minute, now); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

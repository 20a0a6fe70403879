package egress

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestPublic(t *testing.T) {
	for ip, want := range map[string]bool{
		"93.184.216.34": true, "2606:2800:220:1:248:1893:25c8:1946": true, "8.8.8.8": true,
		"127.0.0.1": false, "127.255.0.9": false, "::1": false, "::ffff:127.0.0.1": false, "::ffff:10.0.0.1": false,
		"10.0.0.1": false, "172.16.5.4": false, "192.168.1.1": false, "fc00::1": false, "fd12::1": false,
		"169.254.169.254": false, "fe80::1": false, "0.0.0.0": false, "::": false, "0.1.2.3": false,
		"100.64.0.1": false, "::ffff:100.64.0.1": false, "192.0.0.8": false, "198.18.0.1": false, "192.0.2.1": false, "240.0.0.1": false,
		"255.255.255.255": false, "224.0.0.1": false, "ff02::1": false, "64:ff9b::7f00:1": false, "2001:db8::1": false,
		"::7f00:1": false, "::ffff:0:7f00:1": false, "2002:7f00:1::1": false, "2001:0:4136:e378::1": false, "100::1": false,
		"fec0::1": false, "2001:4860:4860::8888": true,
	} {
		if got := Public(netip.MustParseAddr(ip)); got != want {
			t.Errorf("Public(%s) = %v, want %v", ip, got, want)
		}
	}
}

// TestDialControl: the address connected to decides, and the refusal
// names the setting that would allow it.
func TestDialControl(t *testing.T) {
	for _, tc := range []struct {
		addr         string
		allowPrivate bool
		ok           bool
	}{
		{"93.184.216.34:443", false, true},
		{"[2001:4860:4860::8888]:443", false, true},
		{"127.0.0.1:80", false, false},
		{"169.254.169.254:80", false, false},
		{"[::ffff:10.0.0.1]:80", false, false},
		{"127.0.0.1:80", true, true},
		{"no-port", false, false},
	} {
		err := DialControl(tc.allowPrivate, "--storage-allow-private")("tcp", tc.addr, nil)
		if (err == nil) != tc.ok {
			t.Errorf("DialControl(%v)(%s) = %v, want ok %v", tc.allowPrivate, tc.addr, err, tc.ok)
		}
		if err != nil && (!errors.Is(err, ErrForbiddenAddress) || tc.addr != "no-port" && !strings.Contains(err.Error(), "--storage-allow-private")) {
			t.Errorf("DialControl(%s) error %q: want ErrForbiddenAddress naming the setting", tc.addr, err)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v     string
		limit time.Duration
		want  time.Duration
		ok    bool
	}{
		{"120", 24 * time.Hour, 2 * time.Minute, true},
		{" 0 ", 24 * time.Hour, 0, true},
		{"Sun, 29 Nov 2026 12:05:00 GMT", 24 * time.Hour, 5 * time.Minute, true},
		{"Sun, 29 Nov 2026 11:00:00 GMT", 24 * time.Hour, 0, true},
		{"Sun, 29 Nov 2026 14:00:00 GMT", time.Hour, time.Hour, true},
		{"99999999999999999999999", 24 * time.Hour, 24 * time.Hour, true},
		{"86401", 24 * time.Hour, 24 * time.Hour, true},
		{"3601", time.Hour, time.Hour, true},
		{"3600", time.Hour, time.Hour, true},
		{"", 24 * time.Hour, 0, false},
		{"-5", 24 * time.Hour, 0, false},
		{"1.5", 24 * time.Hour, 0, false},
		{"soon", 24 * time.Hour, 0, false},
	} {
		got, ok := ParseRetryAfter(tc.v, now, tc.limit)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseRetryAfter(%q, %v) = %v, %v; want %v, %v", tc.v, tc.limit, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzParseRetryAfter: any header gives a wait within [0, limit].
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"120", "0", "Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
		"Sun Nov  6 08:49:37 1994", "-1", "1e9", "99999999999999999999", ""} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		for _, limit := range []time.Duration{time.Hour, 24 * time.Hour} {
			w, ok := ParseRetryAfter(s, now, limit)
			if w < 0 || w > limit || !ok && w != 0 {
				t.Fatalf("ParseRetryAfter(%q, %v) = %v, %v", s, limit, w, ok)
			}
		}
	})
}

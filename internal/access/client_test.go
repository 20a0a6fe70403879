package access_test

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/recledger/recledger/internal/access"
)

// TestClient: what logs and the quarantine show as the client, with and
// without trusted proxies, for honest and hostile X-Forwarded-For.
func TestClient(t *testing.T) {
	trusted := access.Proxies{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	for _, tt := range []struct {
		name      string
		proxies   access.Proxies
		remote    string
		xff       []string
		want      string
		forwarded bool
		shared    bool
	}{
		{"no proxies: the peer, port and all", nil, "192.0.2.7:5000", nil, "192.0.2.7:5000", false, false},
		{"no proxies: X-Forwarded-For is not read", nil, "10.1.1.1:5000", []string{"198.51.100.1"}, "10.1.1.1:5000", false, true},
		{"untrusted peer: not read", trusted, "192.0.2.7:5000", []string{"198.51.100.1"}, "192.0.2.7:5000", false, true},
		{"trusted peer names the client", trusted, "10.1.1.1:5000", []string{"198.51.100.1"}, "198.51.100.1", true, false},
		{"a forged left hop is not believed", trusted, "10.1.1.1:5000", []string{"6.6.6.6, 198.51.100.1"}, "198.51.100.1", true, false},
		{"trusted hops are skipped", trusted, "10.1.1.1:5000", []string{"198.51.100.1,10.2.2.2, 10.3.3.3"}, "198.51.100.1", true, false},
		{"several header lines, the last is rightmost", trusted, "10.1.1.1:5000", []string{"198.51.100.1", "10.2.2.2"}, "198.51.100.1", true, false},
		{"a hop with a port", trusted, "10.1.1.1:5000", []string{"[2001:db8::1]:443"}, "2001:db8::1", true, false},
		{"a mapped v4 hop", trusted, "[fd00::1]:5000", []string{"::ffff:198.51.100.1"}, "198.51.100.1", true, false},
		{"a zone is dropped", trusted, "10.1.1.1:5000", []string{"fe80::1%eth0"}, "fe80::1", true, false},
		{"no header: the proxy itself", trusted, "10.1.1.1:5000", nil, "10.1.1.1:5000", false, false},
		{"an empty header: the proxy itself", trusted, "10.1.1.1:5000", []string{""}, "10.1.1.1:5000", false, false},
		{"only trusted hops: the proxy itself", trusted, "10.1.1.1:5000", []string{"10.9.9.9"}, "10.1.1.1:5000", false, false},
		{"garbage", trusted, "10.1.1.1:5000", []string{"not-an-ip"}, "10.1.1.1:5000", false, true},
		{"an empty hop", trusted, "10.1.1.1:5000", []string{"198.51.100.1,,10.2.2.2"}, "10.1.1.1:5000", false, true},
		{"a NUL byte", trusted, "10.1.1.1:5000", []string{"198.51.100.1\x00"}, "10.1.1.1:5000", false, true},
		{"past 32 trusted hops", trusted, "10.1.1.1:5000", []string{"198.51.100.1" + strings.Repeat(",10.0.0.1", 40)}, "10.1.1.1:5000", false, true},
		{"32 trusted hops are read", trusted, "10.1.1.1:5000", []string{"198.51.100.1" + strings.Repeat(",10.0.0.1", 31)}, "198.51.100.1", true, false},
		{"a megabyte of hops, the rightmost untrusted", trusted, "10.1.1.1:5000", []string{strings.Repeat("6.6.6.6,", 100_000) + "198.51.100.1"}, "198.51.100.1", true, false},
		{"Forwarded (RFC 7239) is not read", trusted, "10.1.1.1:5000", nil, "10.1.1.1:5000", false, false},
		{"an unparseable peer", trusted, "@pipe", []string{"198.51.100.1"}, "@pipe", false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/", nil)
			req.RemoteAddr = tt.remote
			req.Header.Del("X-Forwarded-For")
			for _, v := range tt.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			if strings.Contains(tt.name, "RFC 7239") {
				req.Header.Set("Forwarded", "for=198.51.100.1")
			}
			c := tt.proxies.Client(req)
			if c.String() != tt.want || c.Forwarded != tt.forwarded || c.Shared != tt.shared || c.Peer != tt.remote {
				t.Errorf("Client = %q (forwarded %v, shared %v, peer %q), want %q (forwarded %v, shared %v)",
					c.String(), c.Forwarded, c.Shared, c.Peer, tt.want, tt.forwarded, tt.shared)
			}
		})
	}
}

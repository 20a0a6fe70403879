package webhook

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// ErrForbiddenAddress is returned when a destination is, or resolves to,
// an address outside the public internet and private destinations are not
// allowed.
var ErrForbiddenAddress = errors.New("destination address not allowed")

// ErrBadURL is returned by CheckURL for a URL no attempt can use.
var ErrBadURL = errors.New("bad destination URL")

// nonPublic are ranges beyond the net/netip predicates (loopback,
// private, link-local, multicast, unspecified) that no public endpoint
// uses: "this network", carrier-grade NAT, IETF protocol assignments,
// benchmarking, documentation, reserved and broadcast; in IPv6 the forms
// that carry or reach an IPv4 address (IPv4-compatible, SIIT, NAT64, 6to4,
// Teredo), the discard prefix, deprecated site-local, and documentation.
var nonPublic = func() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range []string{"0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15",
		"198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4",
		"::/96", "::ffff:0:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "2001::/32", "100::/64",
		"fec0::/10", "2001:db8::/32"} {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}()

// Public reports whether ip is an address of the public internet.
func Public(ip netip.Addr) bool {
	ip = ip.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// CheckURL checks a destination URL before it is stored: http or https,
// a host, no user name or password (attempts would log them), no fragment,
// and, when it names an address rather than a host name, a public one
// unless allowPrivate. Host names are checked when dialled: what a name
// resolves to can change.
func CheckURL(raw string, allowPrivate bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: it does not parse", ErrBadURL)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%w: want an http or https URL", ErrBadURL)
	case u.Hostname() == "":
		return nil, fmt.Errorf("%w: it names no host", ErrBadURL)
	case u.User != nil:
		return nil, fmt.Errorf("%w: credentials in the URL would be logged with it; put a token in the query or path instead", ErrBadURL)
	case u.Fragment != "" || strings.HasSuffix(raw, "#"):
		return nil, fmt.Errorf("%w: a fragment is never sent", ErrBadURL)
	}
	if ip, err := netip.ParseAddr(u.Hostname()); err == nil && !allowPrivate && !Public(ip) {
		return nil, fmt.Errorf("%w: %s is not a public address (--allow-private-destinations allows it)", ErrForbiddenAddress, ip)
	}
	return u, nil
}

// DialControl refuses connections to non-public addresses, after name
// resolution: it sees the address being connected to, whatever the URL
// said. A net.Dialer's Control; other destination kinds (NATS) use it too.
func DialControl(allowPrivate bool) func(network, address string, _ syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		if allowPrivate {
			return nil
		}
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrForbiddenAddress, err)
		}
		ip, err := netip.ParseAddr(host)
		if err != nil || !Public(ip) {
			return fmt.Errorf("%w: %s is not a public address (--allow-private-destinations allows it)", ErrForbiddenAddress, host)
		}
		return nil
	}
}

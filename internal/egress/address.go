package egress

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// ErrForbiddenAddress is returned when a destination is, or resolves to,
// an address outside the public internet and private addresses are not
// allowed.
var ErrForbiddenAddress = errors.New("destination address not allowed")

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

// DialControl refuses connections to non-public addresses, after name
// resolution: it sees the address being connected to, whatever the URL
// said, so a name re-pointed at a private address (DNS rebinding) is
// refused too. A net.Dialer's Control. setting names the flag that would
// allow the address (--allow-private-destinations, --storage-allow-private),
// for the error's reader.
func DialControl(allowPrivate bool, setting string) func(network, address string, _ syscall.RawConn) error {
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
			return fmt.Errorf("%w: %s is not a public address (%s allows it)", ErrForbiddenAddress, host, setting)
		}
		return nil
	}
}

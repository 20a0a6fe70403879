package access

import (
	"net/http"
	"net/netip"
	"strings"
)

// Client is who sent a request, as far as recledger can tell: the one
// reading of the peer and its forwarding headers that the wrong-token
// limiter, the logs and the quarantine share.
type Client struct {
	// Addr is the client's address: the one a trusted proxy appended to
	// X-Forwarded-For, else the peer's. Invalid when the peer's address
	// does not parse (a listener without addresses).
	Addr netip.Addr
	// Peer is the connection's far end as net/http gives it
	// (Request.RemoteAddr): the proxy when there is one.
	Peer string
	// Forwarded: Addr is the client a trusted proxy named, not the peer.
	Forwarded bool
	// Shared: Addr cannot tell this client from others. A peer that is
	// not a trusted proxy sent forwarding headers (it may be a proxy for
	// many clients), or a trusted proxy's X-Forwarded-For could not be
	// read (an address that does not parse, or more than maxHops hops).
	Shared bool
}

// String is the client as logs and the quarantine show it: the address a
// trusted proxy named, else the peer exactly as before trusted proxies
// were read (address and port).
func (c Client) String() string {
	if c.Forwarded {
		return c.Addr.String()
	}
	return c.Peer
}

// maxHops bounds how many X-Forwarded-For hops are read from the right:
// real chains are a few proxies long, and a header of a thousand trusted
// addresses is not read to its end.
const maxHops = 32

// Proxies are the trusted proxies: peers whose X-Forwarded-For is believed.
type Proxies []netip.Prefix

func (p Proxies) trusted(ip netip.Addr) bool {
	for _, prefix := range p {
		if prefix.Contains(ip) {
			return true
		}
	}
	return false
}

// Client reads req's client. Only X-Forwarded-For is read, and only from a
// trusted peer: its rightmost hop that is not itself a trusted proxy is the
// client (hops to its left were written by whoever the client was and are
// not believed). A trusted peer without the header, or whose hops are all
// trusted proxies, is the client itself. Forwarded (RFC 7239), X-Real-IP
// and the like are never read; from a peer that is not trusted they only
// mark the request as forwarded (Shared).
func (p Proxies) Client(req *http.Request) Client {
	c := Client{Peer: req.RemoteAddr}
	peer, err := netip.ParseAddrPort(req.RemoteAddr)
	if err != nil {
		c.Shared = true
		return c
	}
	c.Addr = peer.Addr().Unmap().WithZone("")
	if !p.trusted(c.Addr) {
		c.Shared = forwarded(req)
		return c
	}
	values := req.Header.Values("X-Forwarded-For")
	hops := 0
	for i := len(values) - 1; i >= 0; i-- {
		rest := values[i]
		for more := true; more; {
			hop := rest
			if j := strings.LastIndexByte(rest, ','); j >= 0 {
				hop, rest = rest[j+1:], rest[:j]
			} else {
				more = false
			}
			hop = strings.TrimSpace(hop)
			if hop == "" && len(values) == 1 && !more && i == 0 && hops == 0 {
				return c // an empty header: the proxy asks for itself
			}
			if hops++; hops > maxHops {
				c.Shared = true
				return c
			}
			addr, ok := parseHop(hop)
			if !ok {
				c.Shared = true
				return c
			}
			if !p.trusted(addr) {
				c.Addr, c.Forwarded = addr, true
				return c
			}
		}
	}
	return c
}

// parseHop reads one X-Forwarded-For hop: an address, or an address and
// port as some proxies write it.
func parseHop(hop string) (netip.Addr, bool) {
	addr, err := netip.ParseAddr(hop)
	if err != nil {
		ap, err2 := netip.ParseAddrPort(hop)
		if err2 != nil {
			return netip.Addr{}, false
		}
		addr = ap.Addr()
	}
	return addr.Unmap().WithZone(""), true
}

package webhook

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"syscall"

	"github.com/recledger/recledger/internal/egress"
)

// ErrForbiddenAddress is returned when a destination is, or resolves to,
// an address outside the public internet and private destinations are not
// allowed (egress.ErrForbiddenAddress, which dialling returns too).
var ErrForbiddenAddress = egress.ErrForbiddenAddress

// ErrBadURL is returned by CheckURL for a URL no attempt can use.
var ErrBadURL = errors.New("bad destination URL")

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
	if ip, err := netip.ParseAddr(u.Hostname()); err == nil && !allowPrivate && !egress.Public(ip) {
		return nil, fmt.Errorf("%w: %s is not a public address (--allow-private-destinations allows it)", ErrForbiddenAddress, ip)
	}
	return u, nil
}

// DialControl refuses connections to non-public addresses, after name
// resolution (egress.DialControl), naming --allow-private-destinations as
// what allows them. A net.Dialer's Control; other destination kinds (NATS)
// use it too.
func DialControl(allowPrivate bool) func(network, address string, _ syscall.RawConn) error {
	return egress.DialControl(allowPrivate, "--allow-private-destinations")
}

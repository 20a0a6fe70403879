package storagecheck

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// ErrBadHosts wraps what ParseHosts finds wrong with an allow-list.
var ErrBadHosts = errors.New("bad storage hosts")

// Hosts is the allow-list of storage hosts: the only hosts Check asks.
// The zero Hosts allows nothing.
type Hosts struct {
	entries map[string]bool // "host:port", host lower case, IPv6 bracketed
}

// ParseHosts reads a --storage-hosts value: HOST[:PORT],... with
// surrounding spaces ignored. Host names are compared case-insensitively.
// An entry without a port stands for the URL's default port (80 for
// http, 443 for https), not for any port: a store on another port is
// listed with it, so allowing a host never opens its other services.
// IPv6 addresses are written in brackets ([::1]:9000, or [::1]).
func ParseHosts(s string) (Hosts, error) {
	h := Hosts{entries: map[string]bool{}}
	if strings.TrimSpace(s) == "" {
		return h, nil
	}
	for _, raw := range strings.Split(s, ",") {
		e := strings.TrimSpace(raw)
		if e == "" {
			return Hosts{}, fmt.Errorf("%w: an empty entry in %q", ErrBadHosts, s)
		}
		host, port, err := splitEntry(e)
		if err != nil {
			return Hosts{}, fmt.Errorf("%w: %q: %v", ErrBadHosts, e, err)
		}
		if port == "" {
			h.entries[join(host, "80")] = true
			h.entries[join(host, "443")] = true
			continue
		}
		h.entries[join(host, port)] = true
	}
	return h, nil
}

// splitEntry splits one entry into a lower-case host and a port ("" when
// none), checking both.
func splitEntry(e string) (host, port string, err error) {
	if strings.ContainsAny(e, "/?#@ \t") {
		return "", "", errors.New("want HOST or HOST:PORT, not a URL")
	}
	host = e
	if strings.HasPrefix(e, "[") {
		end := strings.Index(e, "]")
		if end < 0 {
			return "", "", errors.New("an unclosed [")
		}
		host, port = e[1:end], e[end+1:]
		if port != "" {
			if !strings.HasPrefix(port, ":") {
				return "", "", errors.New("text after ]")
			}
			port = port[1:]
			if port == "" {
				return "", "", errors.New("an empty port")
			}
		}
		ip, perr := netip.ParseAddr(host)
		if perr != nil || !ip.Is6() || ip.Zone() != "" {
			return "", "", errors.New("want an IPv6 address in brackets")
		}
		host = ip.String()
	} else if i := strings.LastIndex(e, ":"); i >= 0 {
		host, port = e[:i], e[i+1:]
		if strings.Contains(host, ":") {
			return "", "", errors.New("put an IPv6 address in brackets")
		}
		if port == "" {
			return "", "", errors.New("an empty port")
		}
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if _, err := netip.ParseAddr(host); err != nil && !hostName(host) {
		return "", "", errors.New("want a host name (letters, digits, -, _ and dots; IDN in punycode) or an IP address")
	}
	if port != "" {
		n, perr := strconv.ParseUint(port, 10, 16)
		if perr != nil || n == 0 {
			return "", "", errors.New("want a port from 1 to 65535")
		}
		port = strconv.FormatUint(n, 10)
	}
	return host, port, nil
}

// hostName reports whether s is a plausible DNS name: non-empty ASCII
// labels of letters, digits, - and _, joined by single dots.
func hostName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// join writes a host and port the way entries are kept.
func join(host, port string) string { return net.JoinHostPort(host, port) }

// key is the entry a URL needs: its host, lower case, and its port or
// the scheme's default.
func key(u *url.URL) (string, bool) {
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if host == "" {
		return "", false
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return "", false
		}
		host = ip.String()
	}
	port := u.Port()
	if port == "" {
		switch u.Scheme {
		case "http":
			port = "80"
		case "https":
			port = "443"
		default:
			return "", false
		}
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return "", false
	}
	return join(host, strconv.FormatUint(n, 10)), true
}

// Allows reports whether u's host and port are on the list.
func (h Hosts) Allows(u *url.URL) bool {
	k, ok := key(u)
	return ok && h.entries[k]
}

// allowsAddr reports whether a dialled host:port is on the list.
func (h Hosts) allowsAddr(addr string) bool { return h.entries[strings.ToLower(addr)] }

// Len is the number of host:port entries (a port-less host counts twice).
func (h Hosts) Len() int { return len(h.entries) }

package webhook

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
)

// ErrBlockedAddress is returned (wrapped) when a callback URL resolves to an
// address the SSRF guard refuses.
var ErrBlockedAddress = errors.New("address not allowed")

// blocked are the ranges a webhook may not reach unless the operator
// allow-list says otherwise: anything that is not the public internet.
var blocked = mustPrefixes(
	"0.0.0.0/8",          // "this network", unspecified
	"10.0.0.0/8",         // private
	"100.64.0.0/10",      // carrier-grade NAT
	"127.0.0.0/8",        // loopback
	"169.254.0.0/16",     // link-local, including the 169.254.169.254 metadata endpoint
	"172.16.0.0/12",      // private
	"192.0.0.0/24",       // IETF protocol assignments
	"192.168.0.0/16",     // private
	"198.18.0.0/15",      // benchmarking
	"224.0.0.0/4",        // multicast
	"240.0.0.0/4",        // reserved, broadcast
	"::/128",             // unspecified
	"::1/128",            // loopback
	"fc00::/7",           // unique local, including fd00:ec2::254 (EC2 metadata over IPv6)
	"fe80::/10",          // link-local
	"ff00::/8",           // multicast
	"100::/64",           // discard
	"2001:db8::/32",      // documentation
	"::ffff:0:0/96",      // IPv4-mapped (checked again unmapped below)
	"::/96",              // IPv4-compatible (deprecated; ::a.b.c.d reaches a.b.c.d on some stacks)
	"2002::/16",          // 6to4: embeds an IPv4 address, possibly a private one
	"2001::/32",          // Teredo: tunnels to an embedded (obfuscated) IPv4 address
	"fec0::/10",          // site-local (deprecated, still routed inside some networks)
	"64:ff9b:1::/48",     // local-use NAT64
	"fd00:ec2::254/128",  // EC2 metadata (already in fc00::/7; listed for the reader)
	"169.254.169.254/32", // cloud metadata (already link-local; listed for the reader)
)

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// nat64 embeds an IPv4 address in its last 32 bits; a public NAT64 gateway
// would reach that IPv4 address, so the embedded address is checked too.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// Guard decides which resolved addresses a webhook may connect to.
type Guard struct {
	allow []netip.Prefix
	own   *OwnHosts // refused even when allowed (nil: none)
}

// NewGuard returns a guard refusing non-public addresses except those inside
// one of the allow prefixes (the operator allow-list; the local stack and
// tests allow 127.0.0.0/8).
func NewGuard(allow []netip.Prefix) *Guard {
	return &Guard{allow: append([]netip.Prefix(nil), allow...)}
}

// errPrivate is the guard's refusal. Its text names no address: the reason
// is stored in integration logs a tenant reads, and naming the address a
// tenant's host name resolved to would let tenants map the internal network.
var errPrivate = fmt.Errorf("%w (private, loopback, link-local, metadata or tunnelled address; an operator allow-list can permit it)", ErrBlockedAddress)

// Check returns nil when ip may be dialled, else an error wrapping
// ErrBlockedAddress. The error does not name ip.
func (g *Guard) Check(ip netip.Addr) error {
	ip = ip.WithZone("")
	for _, p := range g.allow {
		if p.Contains(ip) || p.Contains(ip.Unmap()) {
			return nil
		}
	}
	if isBlocked(ip) {
		return errPrivate
	}
	return nil
}

func isBlocked(ip netip.Addr) bool {
	if !ip.IsValid() {
		return true
	}
	u := ip.Unmap()
	if nat64.Contains(u) {
		b := u.As16()
		v4 := netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		if isBlocked(v4) {
			return true
		}
	}
	for _, p := range blocked {
		if p.Contains(u) {
			return true
		}
	}
	return false
}

// control is a net.Dialer.Control: it runs after name resolution, on the very
// address being connected to, so DNS rebinding between a check and the
// connection cannot slip past it.
func (g *Guard) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("parsing dial address: %w", ErrBlockedAddress)
	}
	if g.own.matchAddr(ap.Addr(), ap.Port()) {
		return ErrOwnHost
	}
	return g.Check(ap.Addr())
}

// ErrOwnHost is returned (wrapped) when a callback URL points at one of the
// service's own public hosts (Config.OwnHosts): a delivery fed back to the
// ingest API would publish the event again, and again. It wraps
// ErrBlockedAddress, so callers treat it exactly like an SSRF refusal.
var ErrOwnHost = fmt.Errorf("%w (it is one of this service's own hosts)", ErrBlockedAddress)

// OwnHosts are the service's own public hosts, which no webhook may call.
// An entry is a URL ("https://events.example.com"), a host:port
// ("events.example.com:8443", "127.0.0.1:8080", "[::1]:8080") or a bare host
// ("events.example.com"). An entry with an explicit port matches only that
// port; one without matches every port of the host. Host names match
// case-insensitively and without a trailing dot; IP entries also match at
// connect time, so another name resolving to them is refused too.
type OwnHosts struct {
	entries []ownHost
}

type ownHost struct {
	host string     // lowercased, no trailing dot, IPs in canonical form
	addr netip.Addr // set for IP entries
	port uint16     // 0: any port
}

// ParseOwnHosts parses the operator's list (see OwnHosts). Empty entries are skipped.
func ParseOwnHosts(list []string) (*OwnHosts, error) {
	o := &OwnHosts{}
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		var host, port string
		if strings.Contains(s, "://") {
			u, err := url.Parse(s)
			if err != nil || u.Hostname() == "" {
				return nil, fmt.Errorf("parsing own host %q: not a URL with a host", s)
			}
			host, port = u.Hostname(), u.Port()
		} else if h, p, err := net.SplitHostPort(s); err == nil {
			host, port = h, p
		} else {
			host = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
		}
		e := ownHost{host: normalizeHost(host)}
		if e.host == "" {
			return nil, fmt.Errorf("parsing own host %q: empty host", s)
		}
		if port != "" {
			n, err := parsePort(port)
			if err != nil {
				return nil, fmt.Errorf("parsing own host %q: %w", s, err)
			}
			e.port = n
		}
		if a, err := netip.ParseAddr(e.host); err == nil {
			e.addr = a.Unmap()
		}
		o.entries = append(o.entries, e)
	}
	return o, nil
}

func parsePort(p string) (uint16, error) {
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 || strconv.FormatUint(n, 10) != p {
		return 0, fmt.Errorf("bad port %q", p)
	}
	return uint16(n), nil
}

// normalizeHost lowercases a host name, drops a trailing dot and writes IP
// addresses in their canonical form (so "[::0001]" equals "::1").
func normalizeHost(h string) string {
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap().WithZone("").String()
	}
	return h
}

// Len is how many entries the list holds.
func (o *OwnHosts) Len() int {
	if o == nil {
		return 0
	}
	return len(o.entries)
}

// MatchURL reports whether the absolute http(s) URL u points at one of the
// hosts. A URL without a port has its scheme's default port.
func (o *OwnHosts) MatchURL(u *url.URL) bool {
	if o == nil || u == nil {
		return false
	}
	host := normalizeHost(u.Hostname())
	var port uint16
	if p := u.Port(); p != "" {
		n, err := parsePort(p)
		if err != nil {
			return false // not dialable either
		}
		port = n
	} else if strings.EqualFold(u.Scheme, "https") {
		port = 443
	} else {
		port = 80
	}
	for _, e := range o.entries {
		if e.host == host && (e.port == 0 || e.port == port) {
			return true
		}
	}
	return false
}

// MatchString is MatchURL over a URL string; an unparsable URL does not match.
func (o *OwnHosts) MatchString(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	return o.MatchURL(u)
}

// matchAddr reports whether a resolved address and port is an IP entry.
func (o *OwnHosts) matchAddr(a netip.Addr, port uint16) bool {
	if o == nil {
		return false
	}
	a = a.Unmap().WithZone("")
	for _, e := range o.entries {
		if e.addr.IsValid() && e.addr == a && (e.port == 0 || e.port == port) {
			return true
		}
	}
	return false
}

// ParseCIDRs parses a comma- or space-separated list of CIDRs or single
// addresses (a single address allows just itself).
func ParseCIDRs(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("parsing allow-list entry %q: not a CIDR or address", s)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

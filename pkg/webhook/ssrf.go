package webhook

import (
	"errors"
	"fmt"
	"net/netip"
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
}

// NewGuard returns a guard refusing non-public addresses except those inside
// one of the allow prefixes (the operator allow-list; the local stack and
// tests allow 127.0.0.0/8).
func NewGuard(allow []netip.Prefix) *Guard {
	return &Guard{allow: append([]netip.Prefix(nil), allow...)}
}

// Check returns nil when ip may be dialled, else an error wrapping
// ErrBlockedAddress.
func (g *Guard) Check(ip netip.Addr) error {
	ip = ip.WithZone("")
	for _, p := range g.allow {
		if p.Contains(ip) || p.Contains(ip.Unmap()) {
			return nil
		}
	}
	if isBlocked(ip) {
		return fmt.Errorf("connecting to %s: %w (private, loopback, link-local or metadata address; an operator allow-list can permit it)", ip, ErrBlockedAddress)
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
		return fmt.Errorf("parsing dial address %q: %w", address, ErrBlockedAddress)
	}
	return g.Check(ap.Addr())
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

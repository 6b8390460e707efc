package nexus

import (
	"net/netip"
	"strings"
)

// ParsePrefix reads an IP address or a CIDR range into a prefix, as client
// addresses are compared: unmapped (an IPv4-mapped IPv6 address or range
// names IPv4 clients) and masked. It reads allowlists (allowed_ips) and
// trusted proxies alike.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err == nil && p.Addr().Is4In6() && p.Bits() >= 96 {
			// Client IPs are compared unmapped, so the range must be too.
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

package cimd

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// nonPublic lists ranges that IsGlobalUnicast and IsPrivate leave out but
// that never hold a public web server, or that embed or reach an internal
// address (IANA special-purpose registries, RFC 6890).
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and broadcast
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64: reaches any IPv4 address
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001::/23"),       // IETF protocol assignments (Teredo, ORCHID)
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("2002::/16"),       // 6to4: embeds an IPv4 address
	netip.MustParsePrefix("fec0::/10"),       // deprecated site-local
}

// addressAllowed decides whether the fetcher may connect to addr. Public
// unicast addresses always pass. With allowPrivate (development and tests),
// loopback and private (RFC 1918, RFC 4193) addresses pass too; link-local
// (where cloud metadata services live), multicast, unspecified and the
// special-purpose ranges never do.
func addressAllowed(addr netip.Addr, allowPrivate bool) bool {
	addr = addr.Unmap()
	if !addr.IsValid() || addr.Zone() != "" {
		return false
	}
	if allowPrivate && (addr.IsLoopback() || addr.IsPrivate()) {
		return true
	}
	if !addr.IsGlobalUnicast() || addr.IsPrivate() {
		// IsGlobalUnicast is false for loopback, link-local, multicast and
		// unspecified addresses.
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(addr) {
			return false
		}
	}
	return true
}

// dialControl runs after name resolution, on the address about to be
// connected to: the only place where the check cannot be raced by a DNS
// answer that changes between a lookup and the connect.
func dialControl(allowPrivate bool) func(network, address string, _ syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		if network != "tcp4" && network != "tcp6" {
			return fmt.Errorf("cimd: network %q is not allowed", network)
		}
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return fmt.Errorf("cimd: dial address: %w", err)
		}
		addr, err := netip.ParseAddr(host)
		if err != nil {
			return fmt.Errorf("cimd: dial address: %w", err)
		}
		if !addressAllowed(addr, allowPrivate) {
			return fmt.Errorf("cimd: %w: %s", errAddressRefused, addr)
		}
		return nil
	}
}

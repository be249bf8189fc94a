// Package clientip tells which address a request came from: the peer of
// the connection, or, when that peer is a proxy the operator trusts, the
// address that proxy says it forwarded for.
//
// Forwarding headers are written by whoever sends the request, so they are
// believed only as far as the chain of trusted hops reaches. A proxy
// appends the address of its own peer to the header it received; the
// entries are therefore read from the right, every entry naming a trusted
// proxy is skipped, and the first entry that does not is the client. A
// client may put anything it likes to the left of that entry; nothing it
// writes is read. When every entry is trusted the leftmost one is the
// client. A header that cannot be read (an entry that is not an address,
// such as RFC 7239's "unknown" or an obfuscated identifier, or a syntax
// error) makes the peer address the answer: the request is then counted
// against the proxy, which is safe, never against an address a client
// made up.
//
// Only one header is read, the one the trusted proxies write
// (X-Forwarded-For, or RFC 7239 Forwarded): a proxy passes the other one
// through as the client sent it.
package clientip

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/muhlemmer/httpforwarded"
)

// Header names the forwarding header the trusted proxies write.
type Header string

// The forwarding headers a Resolver reads.
const (
	// XForwardedFor is the de facto standard, written by nginx, HAProxy,
	// Envoy, Traefik, Caddy and the cloud load balancers: a comma-separated
	// list of addresses, the nearest hop last.
	XForwardedFor Header = "X-Forwarded-For"
	// Forwarded is RFC 7239's header, whose for= parameters list the hops
	// in the same order.
	Forwarded Header = "Forwarded"
)

// ParseHeader reads a header name, in any case.
func ParseHeader(s string) (Header, error) {
	switch {
	case strings.EqualFold(s, string(XForwardedFor)):
		return XForwardedFor, nil
	case strings.EqualFold(s, string(Forwarded)):
		return Forwarded, nil
	}
	return "", fmt.Errorf("%q is not one of %s, %s", s, XForwardedFor, Forwarded)
}

// ParsePrefixes reads trusted proxy addresses: CIDR prefixes such as
// 10.0.0.0/8 or fd00::/8, or single addresses.
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("%q is not a CIDR prefix such as 10.0.0.0/8", s)
			}
			if p.Addr().Zone() != "" {
				return nil, fmt.Errorf("%q: a prefix cannot have a zone", s)
			}
			out = append(out, unmapPrefix(p.Masked()))
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("%q is neither a CIDR prefix nor an IP address", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// unmapPrefix turns an IPv4-mapped IPv6 prefix (::ffff:10.0.0.0/104) into
// its IPv4 form, since addresses are unmapped before they are matched.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

// Resolver finds a request's client address. The zero value and a nil
// *Resolver trust no proxy: the peer is always the client.
type Resolver struct {
	trusted []netip.Prefix
	header  Header
}

// New builds a Resolver that believes header when the peer is within one
// of the trusted prefixes.
func New(trusted []netip.Prefix, header Header) *Resolver {
	if header == "" {
		header = XForwardedFor
	}
	return &Resolver{trusted: trusted, header: header}
}

// ClientIP returns the address req came from (see the package
// documentation): its peer's, unless the peer is a trusted proxy. An
// address it cannot tell is the zero netip.Addr.
func (r *Resolver) ClientIP(req *http.Request) netip.Addr {
	peer := PeerAddr(req.RemoteAddr)
	if r == nil || len(r.trusted) == 0 || !r.trusts(peer) {
		return peer
	}
	values := req.Header[string(r.header)]
	if len(values) == 0 {
		return peer
	}
	var (
		client netip.Addr
		ok     bool
	)
	if r.header == Forwarded {
		client, ok = r.fromForwarded(values)
	} else {
		client, ok = r.fromXForwardedFor(values)
	}
	if !ok {
		return peer
	}
	return client
}

// trusts reports whether a is a trusted proxy.
func (r *Resolver) trusts(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// fromXForwardedFor walks the entries of every X-Forwarded-For field from
// the right (several fields read as one list, RFC 9110 5.3).
func (r *Resolver) fromXForwardedFor(values []string) (netip.Addr, bool) {
	var last netip.Addr
	for i := len(values) - 1; i >= 0; i-- {
		rest := values[i]
		for {
			cut := strings.LastIndexByte(rest, ',')
			entry := strings.Trim(rest[cut+1:], " \t")
			a, ok := parseNode(entry)
			if !ok {
				return netip.Addr{}, false
			}
			if !r.trusts(a) {
				return a, true
			}
			last = a
			if cut < 0 {
				break
			}
			rest = rest[:cut]
		}
	}
	return last, last.IsValid()
}

// fromForwarded walks the for= parameters of the Forwarded fields from
// the right.
func (r *Resolver) fromForwarded(values []string) (netip.Addr, bool) {
	nodes, err := httpforwarded.ParseParameter("for", values)
	if err != nil || len(nodes) == 0 {
		return netip.Addr{}, false
	}
	var last netip.Addr
	for i := len(nodes) - 1; i >= 0; i-- {
		a, ok := parseNode(nodes[i])
		if !ok {
			return netip.Addr{}, false
		}
		if !r.trusts(a) {
			return a, true
		}
		last = a
	}
	return last, true
}

// parseNode reads one hop: an IPv4 or IPv6 address, optionally with a
// port (192.0.2.1:4711, [2001:db8::1]:4711) or in brackets ([2001:db8::1]),
// the forms X-Forwarded-For writers and RFC 7239 6 use. Anything else
// (a name, "unknown", an obfuscated identifier) is not an address.
func parseNode(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return clean(a)
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return clean(ap.Addr())
	}
	if inner, ok := strings.CutPrefix(s, "["); ok {
		if inner, ok = strings.CutSuffix(inner, "]"); ok {
			if a, err := netip.ParseAddr(inner); err == nil && a.Is6() {
				return clean(a)
			}
		}
	}
	return netip.Addr{}, false
}

// clean unmaps an IPv4-mapped address and drops an IPv6 zone, which name
// the same host for matching and counting.
func clean(a netip.Addr) (netip.Addr, bool) {
	return a.Unmap().WithZone(""), true
}

// PeerAddr parses http.Request.RemoteAddr ("ip:port"); the zero Addr when
// it holds no IP address (a Unix socket, a test's made-up value).
func PeerAddr(remoteAddr string) netip.Addr {
	a, ok := parseNode(remoteAddr)
	if !ok {
		return netip.Addr{}
	}
	return a
}

type contextKey struct{}

// NewContext returns a copy of ctx that carries the client address a, so
// that whatever serves the request later (an audit record, a fetch the
// request triggers) can name or count it.
func NewContext(ctx context.Context, a netip.Addr) context.Context {
	return context.WithValue(ctx, contextKey{}, a)
}

// FromContext returns the client address NewContext stored in ctx.
func FromContext(ctx context.Context) (netip.Addr, bool) {
	a, ok := ctx.Value(contextKey{}).(netip.Addr)
	return a, ok
}

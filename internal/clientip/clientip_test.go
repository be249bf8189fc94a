package clientip_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/internal/clientip"
)

func resolver(t testing.TB, header clientip.Header, trusted ...string) *clientip.Resolver {
	t.Helper()
	prefixes, err := clientip.ParsePrefixes(trusted)
	require.NoError(t, err)
	return clientip.New(prefixes, header)
}

func request(remote string, header string, values ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/token", nil)
	r.RemoteAddr = remote
	for _, v := range values {
		r.Header.Add(header, v)
	}
	return r
}

func TestXForwardedForIsReadFromTheRightAsFarAsTrustedHopsReach(t *testing.T) {
	r := resolver(t, clientip.XForwardedFor, "10.0.0.0/8", "192.0.2.1", "fd00::/8")
	tests := []struct {
		name   string
		remote string
		values []string
		want   string
	}{
		{"an untrusted peer is the client, whatever it claims", "203.0.113.9:5000", []string{"198.51.100.1"}, "203.0.113.9"},
		{"an untrusted peer's header is never read", "203.0.113.9:5000", []string{"10.1.1.1"}, "203.0.113.9"},
		{"a trusted peer without the header is the client", "10.0.0.5:443", nil, "10.0.0.5"},
		{"a trusted peer forwards for its client", "10.0.0.5:443", []string{"198.51.100.1"}, "198.51.100.1"},
		{"what the client wrote left of its own address is not read", "10.0.0.5:443",
			[]string{"1.1.1.1, 2.2.2.2, 198.51.100.1"}, "198.51.100.1"},
		{"trusted hops are skipped from the right", "10.0.0.5:443",
			[]string{"1.1.1.1, 198.51.100.1, 192.0.2.1, 10.9.9.9"}, "198.51.100.1"},
		{"several fields are one list", "10.0.0.5:443",
			[]string{"1.1.1.1, 198.51.100.1", "10.2.2.2"}, "198.51.100.1"},
		{"an all-trusted chain ends at its leftmost hop", "10.0.0.5:443", []string{"10.3.3.3, 10.4.4.4"}, "10.3.3.3"},
		{"ports and brackets are accepted", "10.0.0.5:443", []string{"[2001:db8::7]:4711, 192.0.2.1:80"}, "2001:db8::7"},
		{"an IPv6 client", "[fd00::2]:443", []string{"2001:db8::7"}, "2001:db8::7"},
		{"an IPv4-mapped address is unmapped", "10.0.0.5:443", []string{"::ffff:198.51.100.1"}, "198.51.100.1"},
		{"spaces and tabs around entries", "10.0.0.5:443", []string{" 198.51.100.1\t,\t10.2.2.2 "}, "198.51.100.1"},
		{"unknown falls back to the peer", "10.0.0.5:443", []string{"unknown"}, "10.0.0.5"},
		{"a name falls back to the peer", "10.0.0.5:443", []string{"client.example"}, "10.0.0.5"},
		{"garbage falls back to the peer", "10.0.0.5:443", []string{"198.51.100.1; rm -rf"}, "10.0.0.5"},
		{"an empty entry falls back to the peer", "10.0.0.5:443", []string{"198.51.100.1,,10.2.2.2"}, "10.0.0.5"},
		{"an empty field falls back to the peer", "10.0.0.5:443", []string{""}, "10.0.0.5"},
		{"a malformed entry right of the client falls back to the peer", "10.0.0.5:443",
			[]string{"198.51.100.1, bogus"}, "10.0.0.5"},
		{"a malformed entry left of the client is never reached", "10.0.0.5:443",
			[]string{"bogus, 198.51.100.1"}, "198.51.100.1"},
		{"a mapped trusted peer is trusted", "[::ffff:10.0.0.5]:443", []string{"198.51.100.1"}, "198.51.100.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := r.ClientIP(request(tt.remote, "X-Forwarded-For", tt.values...))
			require.Equal(t, netip.MustParseAddr(tt.want), got)
		})
	}
}

func TestForwardedIsReadFromItsForParameters(t *testing.T) {
	r := resolver(t, clientip.Forwarded, "10.0.0.0/8")
	tests := []struct {
		name   string
		values []string
		want   string
	}{
		{"one hop", []string{"for=198.51.100.1;proto=https"}, "198.51.100.1"},
		{"from the right", []string{`for=1.1.1.1, for=198.51.100.1;proto=https, for=10.2.2.2`}, "198.51.100.1"},
		{"several fields", []string{"for=1.1.1.1", "for=198.51.100.1", "for=10.2.2.2;by=10.0.0.5"}, "198.51.100.1"},
		{"a quoted IPv6 address with a port", []string{`for="[2001:db8:cafe::17]:4711"`}, "2001:db8:cafe::17"},
		{"a quoted IPv4 address with a port", []string{`For="198.51.100.1:4711"`}, "198.51.100.1"},
		{"unknown falls back to the peer", []string{"for=unknown"}, "10.0.0.5"},
		{"an obfuscated node falls back to the peer", []string{"for=_hidden, for=10.2.2.2"}, "10.0.0.5"},
		{"a syntax error falls back to the peer", []string{`for="198.51.100.1`}, "10.0.0.5"},
		{"no for parameter falls back to the peer", []string{"proto=https;host=example.com"}, "10.0.0.5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := r.ClientIP(request("10.0.0.5:443", "Forwarded", tt.values...))
			require.Equal(t, netip.MustParseAddr(tt.want), got)
		})
	}
}

func TestOnlyTheConfiguredHeaderIsRead(t *testing.T) {
	req := request("10.0.0.5:443", "Forwarded", "for=1.1.1.1")
	req.Header.Set("X-Forwarded-For", "198.51.100.1")
	require.Equal(t, netip.MustParseAddr("198.51.100.1"), resolver(t, clientip.XForwardedFor, "10.0.0.0/8").ClientIP(req))
	require.Equal(t, netip.MustParseAddr("1.1.1.1"), resolver(t, clientip.Forwarded, "10.0.0.0/8").ClientIP(req))
}

func TestWithoutTrustedProxiesThePeerIsTheClient(t *testing.T) {
	req := request("127.0.0.1:5555", "X-Forwarded-For", "198.51.100.1")
	require.Equal(t, netip.MustParseAddr("127.0.0.1"), resolver(t, clientip.XForwardedFor).ClientIP(req))
	var none *clientip.Resolver
	require.Equal(t, netip.MustParseAddr("127.0.0.1"), none.ClientIP(req))
	require.Equal(t, netip.MustParseAddr("127.0.0.1"), clientip.New(nil, "").ClientIP(req))
}

func TestAPeerWithoutAnIPAddressIsUnknownAndNeverTrusted(t *testing.T) {
	r := resolver(t, clientip.XForwardedFor, "0.0.0.0/0", "::/0")
	for _, remote := range []string{"", "@", "/run/oidcproxy.sock", "pipe"} {
		got := r.ClientIP(request(remote, "X-Forwarded-For", "198.51.100.1"))
		require.False(t, got.IsValid(), "%q", remote)
	}
	require.Equal(t, netip.MustParseAddr("fe80::1"), clientip.PeerAddr("[fe80::1%eth0]:80"), "the zone is dropped")
}

func TestTrustedProxiesAreCIDRsOrAddresses(t *testing.T) {
	got, err := clientip.ParsePrefixes([]string{"10.0.0.0/8", " 192.0.2.7 ", "2001:db8::/32", "::1", "10.1.2.3/8", "::ffff:172.16.0.0/108"})
	require.NoError(t, err)
	require.Equal(t, []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"),
		netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"),
	}, got)
	for _, bad := range []string{"", "10.0.0.0/33", "proxy.internal", "10.0.0.0/8/8", "fe80::1%eth0", "fe80::%eth0/64"} {
		_, err := clientip.ParsePrefixes([]string{bad})
		require.Error(t, err, "%q", bad)
	}
}

func TestHeaderNamesAreReadInAnyCase(t *testing.T) {
	for in, want := range map[string]clientip.Header{
		"X-Forwarded-For": clientip.XForwardedFor, "x-forwarded-for": clientip.XForwardedFor,
		"forwarded": clientip.Forwarded, "FORWARDED": clientip.Forwarded,
	} {
		got, err := clientip.ParseHeader(in)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	_, err := clientip.ParseHeader("X-Real-IP")
	require.Error(t, err)
}

func TestTheClientAddressTravelsInTheContext(t *testing.T) {
	_, ok := clientip.FromContext(context.Background())
	require.False(t, ok)
	a := netip.MustParseAddr("198.51.100.1")
	got, ok := clientip.FromContext(clientip.NewContext(context.Background(), a))
	require.True(t, ok)
	require.Equal(t, a, got)
}

func FuzzClientIPNeverPanicsAndNeverReturnsATrustedHopOfAnUntrustedPeer(f *testing.F) {
	f.Add("10.0.0.5:443", "198.51.100.1, 10.2.2.2", "for=198.51.100.1")
	f.Add("203.0.113.9:1", "1.1.1.1", `for="[::1]:80"`)
	f.Add("[fd00::1]:443", ",,,", `for=";`)
	xff := resolver(f, clientip.XForwardedFor, "10.0.0.0/8", "fd00::/8")
	fwd := resolver(f, clientip.Forwarded, "10.0.0.0/8", "fd00::/8")
	f.Fuzz(func(t *testing.T, remote, xffValue, fwdValue string) {
		req := request(remote, "X-Forwarded-For", xffValue)
		req.Header.Set("Forwarded", fwdValue)
		peer := clientip.PeerAddr(remote)
		for _, r := range []*clientip.Resolver{xff, fwd} {
			got := r.ClientIP(req)
			untrusted := !peer.IsValid() || !(netip.MustParsePrefix("10.0.0.0/8").Contains(peer) || netip.MustParsePrefix("fd00::/8").Contains(peer))
			if untrusted && got != peer {
				t.Fatalf("an untrusted peer %s was replaced by %s", peer, got)
			}
		}
	})
}

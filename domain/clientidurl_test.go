package domain_test

import (
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
)

func TestClientIDURLsAreTellableFromRegisteredIDs(t *testing.T) {
	require.True(t, domain.IsClientIDURL("https://app.example.com/client.json"))
	require.True(t, domain.IsClientIDURL("HTTP://x"), "anything with a colon is judged as a URL, and refused there")
	require.False(t, domain.IsClientIDURL("Qm9vdHN0cmFwLWNsaWVudC1pZC0xMjM0NTY3ODkwYWI"))
	require.False(t, domain.IsClientIDURL(""))
}

func TestValidateClientIDURLAcceptsDocumentURLs(t *testing.T) {
	for _, raw := range []string{
		"https://app.example.com/client.json",
		"https://app.example.com/oauth/client-metadata",
		"https://app.example.com:8443/client.json",
		"https://app.example.com/client.json?v=2",
		"https://xn--bcher-kva.example/client.json",
	} {
		t.Run(raw, func(t *testing.T) {
			u, err := domain.ValidateClientIDURL(raw, false)
			require.NoError(t, err)
			require.Equal(t, raw, u.String(), "nothing is normalised")
		})
	}
}

func TestValidateClientIDURLRefusesWhatTheDraftForbids(t *testing.T) {
	cases := []struct {
		name, raw, reason string
	}{
		{"empty", "", "empty"},
		{"http", "http://app.example.com/client.json", "https"},
		{"upper-case scheme", "HTTPS://app.example.com/client.json", "https"},
		{"other scheme", "urn:example:client", "https"},
		{"no path", "https://app.example.com", "path"},
		{"root path", "https://app.example.com/", "path"},
		{"query only", "https://app.example.com?x=1", "path"},
		{"fragment", "https://app.example.com/client.json#x", "fragment"},
		{"empty fragment", "https://app.example.com/client.json#", "fragment"},
		{"userinfo", "https://user:pw@app.example.com/client.json", "user information"},
		{"user only", "https://user@app.example.com/client.json", "user information"},
		{"dot segment", "https://app.example.com/a/../client.json", "dot-segments"},
		{"single dot", "https://app.example.com/./client.json", "dot-segments"},
		{"encoded dot segment", "https://app.example.com/a/%2e%2E/client.json", "dot-segments"},
		{"encoded slash", "https://app.example.com/a%2Fb", "dot-segments"},
		{"trailing dot segment", "https://app.example.com/a/..", "dot-segments"},
		{"no host", "https:///client.json", "host"},
		{"empty port", "https://app.example.com:/client.json", "port"},
		{"bad port", "https://app.example.com:99999/client.json", "port"},
		{"space", "https://app.example.com/client .json", "forbidden character"},
		{"non-ASCII", "https://bücher.example/client.json", "forbidden character"},
		{"percent host", "https://%61pp.example.com/client.json", "percent-encode"},
		{"IPv4 literal", "https://203.0.113.7/client.json", "IP address"},
		{"IPv6 literal", "https://[2001:db8::1]/client.json", "IP address"},
		{"short IPv4", "https://127.1/client.json", "IP address"},
		{"decimal IPv4", "https://2130706433/client.json", "IP address"},
		{"hex IPv4", "https://0x7f.0.0.1/client.json", "IP address"},
		{"too long", "https://app.example.com/" + strings.Repeat("a", domain.MaxClientIDURLLength), "longer than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := domain.ValidateClientIDURL(tc.raw, false)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.reason)
		})
	}
}

func TestValidateClientIDURLAllowsIPLiteralsOnlyWithThePrivateNetworkAllowance(t *testing.T) {
	for _, raw := range []string{"https://127.0.0.1:8443/client.json", "https://[::1]:8443/client.json"} {
		_, err := domain.ValidateClientIDURL(raw, false)
		require.Error(t, err, raw)
		_, err = domain.ValidateClientIDURL(raw, true)
		require.NoError(t, err, raw)
	}
	// The allowance is about addresses, not about the other rules.
	_, err := domain.ValidateClientIDURL("http://127.0.0.1:8443/client.json", true)
	require.Error(t, err)
}

func FuzzValidateClientIDURL(f *testing.F) {
	for _, s := range []string{
		"https://app.example.com/client.json", "https://a@b/c", "https://app.example.com/a/../b",
		"https://127.0.0.1:1/x", "https://[::1]:1/x", "HTTPS://x/y", "https://x/%2e%2e/y", "https://x:0/y",
		"https://x/y#z", "https://x/y?q=1", "https://%78/y", "https://x.0x1/y",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, raw string, allowIP bool) {
		u, err := domain.ValidateClientIDURL(raw, allowIP)
		if err != nil {
			require.Nil(t, u)
			return
		}
		// Whatever passes is an https URL we may fetch, spelled exactly as
		// it will be compared.
		require.LessOrEqual(t, len(raw), domain.MaxClientIDURLLength)
		require.True(t, strings.HasPrefix(raw, "https://"))
		require.True(t, domain.IsClientIDURL(raw))
		require.Equal(t, "https", u.Scheme)
		require.Nil(t, u.User)
		require.Empty(t, u.Fragment)
		require.NotContains(t, raw, "#")
		require.NotEmpty(t, u.Hostname())
		require.NotEqual(t, "", strings.Trim(u.EscapedPath(), "/"))
		for _, seg := range strings.Split(u.Path, "/") {
			require.NotEqual(t, ".", seg)
			require.NotEqual(t, "..", seg)
		}
		if !allowIP {
			require.Nil(t, net.ParseIP(u.Hostname()), "no IP literal without the allowance")
		}
	})
}

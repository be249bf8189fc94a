package domain_test

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
)

func TestValidateRedirectURIAcceptsWhatEachClientTypeMayUse(t *testing.T) {
	cases := []struct {
		uri     string
		appType domain.ApplicationType
	}{
		{"http://127.0.0.1:33418/callback", domain.ApplicationNative},
		{"http://127.0.0.1/callback", domain.ApplicationNative},
		{"http://localhost:6274/oauth/callback", domain.ApplicationNative},
		{"http://[::1]:8080/cb", domain.ApplicationNative},
		{"https://claude.ai/api/mcp/auth_callback", domain.ApplicationNative},
		{"cursor://anysphere.cursor-retrieval/oauth/user-mcp/callback", domain.ApplicationNative},
		{"com.example.app:/oauth2redirect", domain.ApplicationNative},
		{"vscode://vscode.github-authentication/did-authenticate?windowid=1", domain.ApplicationNative},
		{"https://app.example.com/oauth/callback", domain.ApplicationWeb},
		{"https://app.example.com:8443/cb?tenant=a", domain.ApplicationWeb},
	}
	for _, tc := range cases {
		t.Run(tc.uri, func(t *testing.T) {
			require.NoError(t, domain.ValidateRedirectURI(tc.uri, tc.appType, nil))
		})
	}
}

func TestValidateRedirectURIRefusesForbiddenForms(t *testing.T) {
	cases := []struct {
		name    string
		uri     string
		appType domain.ApplicationType
		code    domain.ErrorCode
	}{
		{"javascript scheme", "javascript:alert(1)", domain.ApplicationNative, domain.CodeInvalidRedirectURI},
		{"javascript with slashes", "javascript://example.com/%0Aalert(1)", domain.ApplicationNative, domain.CodeInvalidRedirectURI},
		{"upper-case javascript", "JAVASCRIPT:alert(1)", domain.ApplicationNative, domain.CodeInvalidRedirectURI},
		{"data scheme", "data:text/html,<script>alert(1)</script>", domain.ApplicationNative, domain.CodeInvalidRedirectURI},
		{"file scheme", "file:///etc/passwd", domain.ApplicationNative, domain.CodeInvalidRedirectURI},
		{"vbscript scheme", "vbscript:msgbox(1)", domain.ApplicationNative, domain.CodeInvalidRedirectURI},
		{"userinfo", "https://user:pass@example.com/cb", domain.ApplicationWeb, domain.CodeInvalidRedirectURI},
		{"userinfo trick", "https://example.com@evil.com/cb", domain.ApplicationNative, domain.CodeInvalidRedirectURI},
		{"dot segment", "https://example.com/a/../b", domain.ApplicationWeb, domain.CodeInvalidRedirectURI},
		{"single dot segment", "https://example.com/./cb", domain.ApplicationWeb, domain.CodeInvalidRedirectURI},
		{"encoded dot segment", "https://example.com/a/%2e%2e/b", domain.ApplicationWeb, domain.CodeInvalidRedirectURI},
		{"encoded slash", "https://example.com/a%2fb", domain.ApplicationWeb, domain.CodeInvalidRedirectURI},
		{"fragment", "https://example.com/cb#frag", domain.ApplicationWeb, domain.CodeInvalidRedirectURI},
		{"empty fragment", "https://example.com/cb#", domain.ApplicationWeb, domain.CodeInvalidRedirectURI},
		{"relative", "/callback", domain.ApplicationNative, domain.CodeInvalidRedirectURI},
		{"empty", "", domain.ApplicationNative, domain.CodeInvalidRedirectURI},
		{"http non-loopback for native", "http://example.com/cb", domain.ApplicationNative, domain.CodeInvalidRedirectURI},
		{"http loopback lookalike", "http://127.0.0.1.evil.com/cb", domain.ApplicationNative, domain.CodeInvalidRedirectURI},
		{"http localhost lookalike", "http://localhost.evil.com/cb", domain.ApplicationNative, domain.CodeInvalidRedirectURI},
		{"http for web", "http://example.com/cb", domain.ApplicationWeb, domain.CodeInvalidRedirectURI},
		{"loopback for web", "https://127.0.0.1/cb", domain.ApplicationWeb, domain.CodeInvalidRedirectURI},
		{"localhost for web", "https://localhost/cb", domain.ApplicationWeb, domain.CodeInvalidRedirectURI},
		{"custom scheme for web", "myapp://cb", domain.ApplicationWeb, domain.CodeInvalidRedirectURI},
		{"space", "https://example.com/c b", domain.ApplicationWeb, domain.CodeInvalidRedirectURI},
		{"backslash", `https://example.com\@evil.com/cb`, domain.ApplicationWeb, domain.CodeInvalidRedirectURI},
		{"control char", "https://example.com/cb\n", domain.ApplicationWeb, domain.CodeInvalidRedirectURI},
		{"non-ascii host", "https://exämple.com/cb", domain.ApplicationWeb, domain.CodeInvalidRedirectURI},
		{"https without host", "https:///cb", domain.ApplicationNative, domain.CodeInvalidRedirectURI},
		{"bad port", "http://127.0.0.1:99999/cb", domain.ApplicationNative, domain.CodeInvalidRedirectURI},
		{"upper-case scheme", "HTTPS://example.com/cb", domain.ApplicationWeb, domain.CodeInvalidRedirectURI},
		{"scheme only", "myapp:", domain.ApplicationNative, domain.CodeInvalidRedirectURI},
		{"too long", "https://example.com/" + string(make([]byte, 0)) + longPath(2100), domain.ApplicationWeb, domain.CodeInvalidRedirectURI},
		{"unknown application type", "https://example.com/cb", domain.ApplicationType("browser"), domain.CodeInvalidClientMetadata},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := domain.ValidateRedirectURI(tc.uri, tc.appType, nil)
			require.Error(t, err)
			require.Equal(t, tc.code, domain.CodeOf(err))
		})
	}
}

func longPath(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a'
	}
	return string(b)
}

func TestRedirectPatternsFurtherRestrictRegistration(t *testing.T) {
	patterns := mustPatterns(t, "http://localhost:*", "https://*.example.com/cb", "https://app.example.org/oauth/*", "cursor://*")
	allowed := []string{
		"http://localhost:1234",
		"http://localhost:65000/",
		"https://a.example.com/cb",
		"https://deep.a.example.com/cb",
		"https://app.example.org/oauth/callback",
		"https://app.example.org/oauth/a/b?x=1",
		"cursor://anysphere.cursor-retrieval/oauth/callback",
	}
	for _, u := range allowed {
		require.NoError(t, domain.ValidateRedirectURI(u, domain.ApplicationNative, patterns), u)
	}
	refused := []string{
		"http://localhost:1234/cb",       // pattern has no path
		"http://127.0.0.1:1234",          // host differs
		"https://example.com/cb",         // apex is not a subdomain
		"https://evilexample.com/cb",     // suffix without dot
		"https://a.example.com/cb/more",  // path differs
		"https://app.example.org/other",  // outside the glob
		"https://app.example.org/oauth",  // glob needs the slash
		"vscode://vscode.github-auth/cb", // scheme differs
		"https://a.example.com:8443/cb",  // port differs
		"https://app.example.org.evil/oauth/x",
	}
	for _, u := range refused {
		err := domain.ValidateRedirectURI(u, domain.ApplicationNative, patterns)
		require.Error(t, err, u)
		require.Equal(t, domain.CodeInvalidRedirectURI, domain.CodeOf(err), u)
	}
}

func TestParseRedirectPatternRejectsDangerousOrAmbiguousPatterns(t *testing.T) {
	for _, p := range []string{"", "localhost", "javascript:*", "https://a*b.example.com/", "https://*/", "https://user@host/", "http://localhost:abc", "https://"} {
		if p == "https://*/" {
			// "*" alone as host is allowed: it means any host.
			_, err := domain.ParseRedirectPattern(p)
			require.NoError(t, err)
			continue
		}
		_, err := domain.ParseRedirectPattern(p)
		require.Error(t, err, p)
	}
}

func mustPatterns(t *testing.T, raws ...string) []domain.RedirectPattern {
	t.Helper()
	var out []domain.RedirectPattern
	for _, r := range raws {
		p, err := domain.ParseRedirectPattern(r)
		require.NoError(t, err, r)
		out = append(out, p)
	}
	return out
}

func TestMatchRedirectURIIsExactExceptForLoopbackPorts(t *testing.T) {
	registered := []string{"http://127.0.0.1:5000/callback", "https://app.example.com/cb", "myapp:/cb"}
	require.True(t, domain.MatchRedirectURI(registered, "https://app.example.com/cb"))
	require.True(t, domain.MatchRedirectURI(registered, "myapp:/cb"))
	require.True(t, domain.MatchRedirectURI(registered, "http://127.0.0.1:61234/callback"), "RFC 8252 7.3: any loopback port")
	require.True(t, domain.MatchRedirectURI(registered, "http://127.0.0.1/callback"))
	for _, u := range []string{
		"https://app.example.com/cb/",
		"https://app.example.com/cb?x=1",
		"https://APP.example.com/cb",
		"http://127.0.0.1:61234/callback/../x",
		"http://127.0.0.1:61234/other",
		"http://localhost:5000/callback", // another loopback name is another URI
		"http://127.0.0.1:61234/callback?x=1",
		"myapp:/cb2",
	} {
		require.False(t, domain.MatchRedirectURI(registered, u), u)
	}
}

func FuzzValidateRedirectURI(f *testing.F) {
	for _, s := range []string{
		"http://127.0.0.1:33418/callback", "https://example.com/cb", "cursor://x/y", "javascript:alert(1)",
		"https://a@b/", "https://example.com/a/../b", "data:,x", "http://[::1]:1/x", "myapp:/cb", "HTTP://x",
	} {
		f.Add(s, true)
		f.Add(s, false)
	}
	patterns := []domain.RedirectPattern{}
	for _, p := range []string{"http://localhost:*", "https://*.example.com/cb", "https://app.example.org/oauth/*"} {
		rp, err := domain.ParseRedirectPattern(p)
		if err != nil {
			f.Fatal(err)
		}
		patterns = append(patterns, rp)
	}
	f.Fuzz(func(t *testing.T, raw string, native bool) {
		appType := domain.ApplicationWeb
		if native {
			appType = domain.ApplicationNative
		}
		err := domain.ValidateRedirectURI(raw, appType, nil)
		if err != nil {
			return
		}
		// Whatever passes must be safe to redirect a browser to.
		u, perr := url.Parse(raw)
		require.NoError(t, perr)
		require.True(t, u.IsAbs())
		require.Nil(t, u.User)
		require.Empty(t, u.Fragment)
		require.NotContains(t, []string{"javascript", "data", "file", "vbscript"}, u.Scheme)
		if appType == domain.ApplicationWeb {
			require.Equal(t, "https", u.Scheme)
			require.False(t, domain.IsLoopbackHost(u.Hostname()))
		}
		if u.Scheme == "http" {
			require.True(t, domain.IsLoopbackHost(u.Hostname()))
		}
		// A registered URI always matches itself.
		require.True(t, domain.MatchRedirectURI([]string{raw}, raw))
		_ = domain.ValidateRedirectURI(raw, appType, patterns)
	})
}

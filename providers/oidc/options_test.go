package oidc_test

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/providers/oidc"
	"github.com/oidcproxy/oidcproxy/test/idp"
	"github.com/oidcproxy/oidcproxy/test/providertest"
)

// prefixScopes is a ScopeMapper that spells every scope but openid and
// offline_access "x:" + scope upstream.
type prefixScopes struct{}

func (prefixScopes) Upstream(s []string) []string {
	out := make([]string, 0, len(s))
	for _, sc := range s {
		if sc != "openid" && sc != "offline_access" && !strings.HasPrefix(sc, "x:") {
			sc = "x:" + sc
		}
		out = append(out, sc)
	}
	return out
}

func (prefixScopes) Local(s string) string { return strings.TrimPrefix(s, "x:") }

func newOptionsProvider(t *testing.T, s oidc.Settings, opts ...oidc.Option) (*oidc.Provider, error) {
	t.Helper()
	client, _ := newCountingClient(t)
	return oidc.New(t.Context(), s, client, opts...)
}

func TestAScopeMapperRewritesScopesOnTheWayOutAndBack(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	// The IdP puts its own spelling in the JWT's scp claim too.
	f.Set(idp.Faults{AccessToken: idp.AccessTokenShape{JWT: true, ScopeClaim: "scp"}})
	s := providertest.Settings(f)
	s.RequiredScopes = []string{"read"}
	p, err := newOptionsProvider(t, s, oidc.WithScopes(prefixScopes{}))
	require.NoError(t, err)

	_, tokens, err := login(t, p, f, "write", "x:read")

	require.NoError(t, err, "the required scope is compared in its local form")
	require.Equal(t, "openid offline_access x:read x:write", f.LastAuthorize().Get("scope"), "mapped and deduplicated")
	require.Equal(t, "openid offline_access read write", tokens.Scope)

	refreshed, err := p.Refresh(t.Context(), tokens)
	require.NoError(t, err)
	require.Equal(t, "openid offline_access read write", refreshed.Tokens.Scope)
}

// markedIssuers is an IssuerPolicy that accepts one other discovery issuer
// and the tokens that carry "trusted": true.
type markedIssuers struct{ discovery string }

func (m markedIssuers) AcceptDiscovery(_, discovered string) bool { return discovered == m.discovery }

func (markedIssuers) AcceptToken(_ string, claims map[string]any) bool {
	return claims["trusted"] == true
}

func TestAnIssuerPolicyDecidesOnDiscoveryAndOnEveryToken(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	other := f.Issuer + "/{tenantid}"
	f.Set(idp.Faults{DiscoveryIssuer: other})
	s := providertest.Settings(f)

	_, err := newOptionsProvider(t, s)
	require.ErrorContains(t, err, "did not match the issuer", "without a policy the issuer must match")
	_, err = newOptionsProvider(t, s, oidc.WithIssuerPolicy(markedIssuers{discovery: "https://elsewhere.example"}))
	require.ErrorContains(t, err, "did not match the issuer", "the policy saw another issuer")

	p, err := newOptionsProvider(t, s, oidc.WithIssuerPolicy(markedIssuers{discovery: other}))
	require.NoError(t, err)
	require.Equal(t, other, p.Issuer())

	_, _, err = login(t, p, f)
	providertest.RequireCode(t, err, domain.CodeAccessDenied)

	f.Set(idp.Faults{DiscoveryIssuer: other, IDTokenClaims: map[string]any{"trusted": true}})
	identity, _, err := login(t, p, f)
	require.NoError(t, err)
	require.Equal(t, f.Issuer, identity.Issuer, "the token's own issuer, not the template")

	// Access tokens pass the same policy.
	s.Audience = f.ClientID
	p, err = newOptionsProvider(t, s, oidc.WithIssuerPolicy(markedIssuers{discovery: other}))
	require.NoError(t, err)
	f.Set(idp.Faults{DiscoveryIssuer: other, IDTokenClaims: map[string]any{"trusted": true},
		AccessToken: idp.AccessTokenShape{JWT: true}})
	_, _, err = login(t, p, f)
	providertest.RequireCode(t, err, domain.CodeAccessDenied)
	f.Set(idp.Faults{DiscoveryIssuer: other, IDTokenClaims: map[string]any{"trusted": true},
		AccessToken: idp.AccessTokenShape{JWT: true, Claims: map[string]any{"trusted": true}}})
	_, _, err = login(t, p, f)
	require.NoError(t, err)
}

func TestAnAccessTokenPolicyJudgesIssuerAndAudienceOfAccessTokens(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	s := providertest.Settings(f)
	s.RequiredScopes = []string{"read"}
	s.Audience = "the-audience-the-policy-replaces"
	var seen []string
	var mu sync.Mutex
	// The policy accepts a token of another issuer for the audience
	// "api" when it says "shape": "b"; the generic checks would refuse both.
	policy := func(issuer string, claims map[string]any) error {
		mu.Lock()
		seen = append(seen, issuer)
		mu.Unlock()
		if claims["shape"] != "b" || claims["iss"] != "https://elsewhere.example" {
			return errors.New("neither documented shape")
		}
		return nil
	}
	p, err := newOptionsProvider(t, s, oidc.WithAccessTokenPolicy(policy))
	require.NoError(t, err)
	shapeB := idp.AccessTokenShape{JWT: true, Issuer: "https://elsewhere.example", Audience: []string{"api"},
		Claims: map[string]any{"shape": "b"}}

	f.Set(idp.Faults{AccessToken: shapeB})
	_, tokens, err := login(t, p, f, "read")
	require.NoError(t, err, "the policy, not the Audience setting or the discovery issuer, decides")
	require.Equal(t, []string{f.Issuer}, seen, "the policy is given the discovery issuer")

	for name, shape := range map[string]idp.AccessTokenShape{
		"a token the policy refuses": {JWT: true, Issuer: "https://elsewhere.example", Claims: map[string]any{"shape": "a"}},
		"a token from another key":   {JWT: true, Issuer: "https://elsewhere.example", Claims: map[string]any{"shape": "b"}, Unpublished: true},
		"a token without the scope":  {JWT: true, Issuer: "https://elsewhere.example", Claims: map[string]any{"shape": "b"}, Scope: "write"},
		"an opaque token":            {Prefix: "opaque-"},
	} {
		t.Run(name, func(t *testing.T) {
			f.Set(idp.Faults{AccessToken: shape})
			_, _, err := login(t, p, f, "read")
			providertest.RequireCode(t, err, domain.CodeAccessDenied)
		})
	}

	f.Set(idp.Faults{AccessToken: idp.AccessTokenShape{JWT: true, Claims: map[string]any{"shape": "a"}}})
	_, err = p.Refresh(t.Context(), tokens)
	providertest.RequireCode(t, err, domain.CodeInvalidGrant)
}

func TestAnIDTokenCheckRefusesLoginsAndRefreshes(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	check := func(claims map[string]any) error {
		if claims["department"] != "research" {
			return errors.New("department is not research")
		}
		return nil
	}
	p, err := newOptionsProvider(t, providertest.Settings(f), oidc.WithIDTokenCheck(check))
	require.NoError(t, err)

	_, _, err = login(t, p, f)
	e := providertest.RequireCode(t, err, domain.CodeAccessDenied)
	require.NotContains(t, e.Description, "research", "the check's text stays in the private cause")
	require.ErrorContains(t, err, "department is not research")

	f.Set(idp.Faults{IDTokenClaims: map[string]any{"department": "research"}})
	_, tokens, err := login(t, p, f)
	require.NoError(t, err)

	f.Set(idp.Faults{IDTokenClaims: map[string]any{"department": "sales"}})
	_, err = p.Refresh(t.Context(), tokens)
	providertest.RequireCode(t, err, domain.CodeInvalidGrant)
}

func TestOpaqueAccessTokensAreNeverParsed(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	// A JWT that would fail verification (another issuer): read as one,
	// the login fails; treated as opaque, it is never looked at.
	f.Set(idp.Faults{AccessToken: idp.AccessTokenShape{JWT: true, Issuer: "https://evil.example"}})
	s := providertest.Settings(f)
	s.RequiredScopes = []string{"email"}

	generic, err := newOptionsProvider(t, s)
	require.NoError(t, err)
	_, _, err = login(t, generic, f, "email")
	providertest.RequireCode(t, err, domain.CodeAccessDenied)

	p, err := newOptionsProvider(t, s, oidc.WithOpaqueAccessTokens())
	require.NoError(t, err)
	_, _, err = login(t, p, f, "email")
	require.NoError(t, err)

	// The required scopes are still checked, against the token response.
	fl := newFlow()
	code := loginCode(t, p, f, fl, "email")
	f.Set(idp.Faults{GrantedScope: "openid profile"})
	_, _, err = p.Exchange(t.Context(), exchangeRequest(code, fl))
	providertest.RequireCode(t, err, domain.CodeAccessDenied)
}

func TestOpaqueAccessTokensRefuseChecksThatNeedAJWT(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	for _, edit := range []func(*oidc.Settings){
		func(s *oidc.Settings) { s.Audience = "https://api.example" },
		func(s *oidc.Settings) { s.Algorithm = "ES256" },
	} {
		s := providertest.Settings(f)
		edit(&s)
		_, err := newOptionsProvider(t, s, oidc.WithOpaqueAccessTokens())
		require.ErrorContains(t, err, "cannot be checked: this provider's access tokens are opaque")
	}
	require.Zero(t, f.Calls().Discovery, "refused before discovery")
}

func TestTheDocumentFetchedAgainMustNameTheIssuerThePolicyAccepted(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	other := f.Issuer + "/{tenantid}"
	f.Set(idp.Faults{DiscoveryIssuer: other})
	// After the first answer, discovery names yet another issuer: the
	// second fetch (the one whose document is used) must not slip it in.
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		resp, err := tr.RoundTrip(r)
		if strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration") {
			f.Update(func(x *idp.Faults) { x.DiscoveryIssuer = "https://evil.example" })
		}
		return resp, err
	})}

	_, err := oidc.New(t.Context(), providertest.Settings(f), client, oidc.WithIssuerPolicy(markedIssuers{discovery: other}))

	require.ErrorContains(t, err, `issuer changed between two fetches to "https://evil.example"`)
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

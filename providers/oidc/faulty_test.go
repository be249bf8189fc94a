package oidc_test

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
	"github.com/oidcproxy/oidcproxy/providers/oidc"
	"github.com/oidcproxy/oidcproxy/test/idp"
	"github.com/oidcproxy/oidcproxy/test/providertest"
)

func TestAuthCodeURLCarriesStateNonceChallengeAndTheExactCallback(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	p := newFaultyProvider(t, f, func(s *oidc.Settings) {
		s.RequiredScopes = []string{"api.read", "email"}
		s.ExtraAuthorizeParams = map[string]string{"audience": "https://api.example", "prompt": "consent"}
	})
	fl := newFlow()

	loginCode(t, p, f, fl, "email", "profile", "api.read")

	q := f.LastAuthorize()
	require.Equal(t, "code", q.Get("response_type"))
	require.Equal(t, f.ClientID, q.Get("client_id"))
	require.Equal(t, callback, q.Get("redirect_uri"))
	require.Equal(t, fl.State, q.Get("state"))
	require.Equal(t, fl.Nonce, q.Get("nonce"))
	require.Equal(t, fl.Challenge(), q.Get("code_challenge"))
	require.Equal(t, "S256", q.Get("code_challenge_method"))
	require.Equal(t, "openid offline_access api.read email profile", q.Get("scope"),
		"openid, offline_access (listed by the IdP), required scopes, then the client's, each once")
	require.Equal(t, "https://api.example", q.Get("audience"))
	require.Equal(t, "consent", q.Get("prompt"))
	require.False(t, q.Has("resource"), "resource is not forwarded by default")
	require.False(t, q.Has("client_secret"))
}

func TestAuthCodeURLLeavesOfflineAccessOutWhenTheIdPDoesNotListIt(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	f.Update(func(fs *idp.Faults) {
		fs.DiscoveryExtra = map[string]any{"scopes_supported": []string{"openid", "email"}}
	})
	p := newFaultyProvider(t, f)

	u, err := url.Parse(p.AuthCodeURL(newFlow().Request("email")))

	require.NoError(t, err)
	require.Equal(t, "openid email", u.Query().Get("scope"))
}

func TestAuthCodeURLForwardsTheResourceOnlyWhenEnabled(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	req := newFlow().Request()
	req.Resource = "https://mcp.example/mcp"

	for _, forward := range []bool{false, true} {
		p := newFaultyProvider(t, f, func(s *oidc.Settings) { s.ForwardResource = forward })
		u, err := url.Parse(p.AuthCodeURL(req))
		require.NoError(t, err)
		if forward {
			require.Equal(t, req.Resource, u.Query().Get("resource"))
		} else {
			require.False(t, u.Query().Has("resource"))
		}
	}
}

func TestExtraParamsCannotReplaceProtocolParams(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	client, _ := newCountingClient(t)
	cases := []struct {
		name string
		edit func(*oidc.Settings)
	}{
		{"state", func(s *oidc.Settings) { s.ExtraAuthorizeParams = map[string]string{"state": "x"} }},
		{"nonce", func(s *oidc.Settings) { s.ExtraAuthorizeParams = map[string]string{"nonce": "x"} }},
		{"code_challenge", func(s *oidc.Settings) { s.ExtraAuthorizeParams = map[string]string{"code_challenge": "x"} }},
		{"redirect_uri", func(s *oidc.Settings) {
			s.ExtraAuthorizeParams = map[string]string{"redirect_uri": "https://evil.example"}
		}},
		{"client_id", func(s *oidc.Settings) { s.ExtraAuthorizeParams = map[string]string{"Client_ID": "x"} }},
		{"response_type", func(s *oidc.Settings) { s.ExtraAuthorizeParams = map[string]string{"response_type": "token"} }},
		{"request", func(s *oidc.Settings) { s.ExtraAuthorizeParams = map[string]string{"request": "eyJ"} }},
		{"code_verifier", func(s *oidc.Settings) { s.ExtraTokenParams = map[string]string{"code_verifier": "x"} }},
		{"grant_type", func(s *oidc.Settings) { s.ExtraTokenParams = map[string]string{"grant_type": "password"} }},
		{"client_secret", func(s *oidc.Settings) { s.ExtraTokenParams = map[string]string{"client_secret": "x"} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := providertest.Settings(f)
			tc.edit(&s)
			_, err := oidc.New(t.Context(), s, client)
			require.ErrorContains(t, err, "is reserved")
		})
	}
}

func TestExchangeSendsTheVerifierMatchingTheChallengeAndExtraTokenParams(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	p := newFaultyProvider(t, f, func(s *oidc.Settings) {
		s.ExtraTokenParams = map[string]string{"audience": "https://api.example"}
	})

	identity, tokens, err := login(t, p, f, "email")
	require.NoError(t, err)

	challenge := f.LastAuthorize().Get("code_challenge")
	form := f.LastToken().Form
	// The challenge is recomputed here by hand (RFC 7636 4.2, S256) rather
	// than with domain's PKCE code, so the test does not share the code it
	// checks.
	sum := sha256.Sum256([]byte(form.Get("code_verifier")))
	require.Equal(t, base64.RawURLEncoding.EncodeToString(sum[:]), challenge)
	require.Equal(t, "authorization_code", form.Get("grant_type"))
	require.Equal(t, callback, form.Get("redirect_uri"))
	require.Equal(t, "https://api.example", form.Get("audience"))

	require.Equal(t, f.Subject, identity.Subject)
	require.Equal(t, f.Issuer, identity.Issuer)
	require.Equal(t, f.Email, identity.Email)
	require.True(t, identity.EmailVerified)
	require.Equal(t, f.Name, identity.Name)
	require.NotEmpty(t, tokens.RefreshToken)
	require.Equal(t, "openid offline_access email", tokens.Scope)
	require.WithinDuration(t, time.Now().Add(time.Hour), tokens.Expiry, time.Minute)
}

func TestTokenEndpointAuthMethodIsTheConfiguredOne(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	for _, method := range []string{"", oidc.AuthMethodClientSecretBasic, oidc.AuthMethodClientSecretPost, oidc.AuthMethodNone} {
		t.Run("method "+method, func(t *testing.T) {
			p := newFaultyProvider(t, f, func(s *oidc.Settings) { s.TokenEndpointAuthMethod = method })
			_, tokens, err := login(t, p, f)
			require.NoError(t, err)
			require.NoError(t, p.Revoke(t.Context(), tokens))

			want := method
			if want == "" {
				want = oidc.AuthMethodClientSecretBasic
			}
			for _, req := range []idp.Request{f.LastToken(), f.LastRevocation()} {
				require.Equal(t, want, req.AuthMethod)
				require.Equal(t, f.ClientID, req.ClientID)
				switch want {
				case oidc.AuthMethodNone:
					require.Empty(t, req.ClientSecret)
					require.False(t, req.Form.Has("client_secret"))
				case oidc.AuthMethodClientSecretBasic:
					require.False(t, req.Form.Has("client_secret"), "basic keeps the secret out of the body")
					require.Equal(t, f.ClientSecret, req.ClientSecret)
				default:
					require.Equal(t, f.ClientSecret, req.ClientSecret)
				}
			}
		})
	}
}

func TestBadIDTokensAreRejectedAsAccessDenied(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	p := newFaultyProvider(t, f)
	cases := map[string]idp.Faults{
		"wrong audience":                     {IDToken: idp.IDTokenWrongAudience},
		"wrong issuer":                       {IDToken: idp.IDTokenWrongIssuer},
		"wrong nonce":                        {IDToken: idp.IDTokenWrongNonce},
		"no nonce":                           {IDTokenClaims: map[string]any{"nonce": nil}},
		"expired":                            {IDToken: idp.IDTokenExpired},
		"bad signature":                      {IDToken: idp.IDTokenBadSignature},
		"alg none":                           {IDToken: idp.IDTokenAlgNone},
		"RS256 when discovery says ES256":    {IDToken: idp.IDTokenRS256},
		"HS256 keyed with the client secret": {IDToken: idp.IDTokenHS256},
		"azp naming another client":          {IDToken: idp.IDTokenForeignAZP},
		"at_hash not matching":               {IDToken: idp.IDTokenWrongAtHash},
		"no subject":                         {IDTokenClaims: map[string]any{"sub": ""}},
		"no ID token":                        {OmitIDToken: true},
	}
	for name, faults := range cases {
		t.Run(name, func(t *testing.T) {
			// One IdP serves every case in turn: the faults apply to the
			// next token response, so the cases must not overlap.
			fl := newFlow()
			code := loginCode(t, p, f, fl)
			f.Set(faults)
			defer f.Set(idp.Faults{})

			_, _, err := p.Exchange(t.Context(), exchangeRequest(code, fl))

			e := providertest.RequireCode(t, err, domain.CodeAccessDenied)
			require.NotContains(t, e.Description, code)
		})
	}
	// The same IdP, unbroken, is accepted: the failures above are the faults'.
	_, _, err := login(t, p, f)
	require.NoError(t, err)
}

func TestRS256IDTokensAreAcceptedWhenDiscoveryOffersRS256(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	f.Set(idp.Faults{
		IDToken:        idp.IDTokenRS256,
		DiscoveryExtra: map[string]any{"id_token_signing_alg_values_supported": []string{"RS256"}},
	})
	p := newFaultyProvider(t, f)

	identity, _, err := login(t, p, f)

	require.NoError(t, err)
	require.Equal(t, f.Subject, identity.Subject)
}

func TestUpstreamErrorTextNeverReachesTheDescription(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	p := newFaultyProvider(t, f)
	const upstreamText = "user jane@corp.example is locked <script>alert(1)</script>"
	for _, code := range []string{"invalid_grant", "access_denied", "invalid_client", "unauthorized_client"} {
		t.Run(code, func(t *testing.T) {
			fl := newFlow()
			authCode := loginCode(t, p, f, fl)
			f.Set(idp.Faults{TokenError: code, TokenErrorDescription: upstreamText})
			defer f.Set(idp.Faults{})

			_, _, err := p.Exchange(t.Context(), exchangeRequest(authCode, fl))

			e := providertest.RequireCode(t, err, domain.CodeAccessDenied)
			require.NotContains(t, e.Description, "jane")
			require.NotContains(t, e.Description, code)
			require.ErrorContains(t, e.Err, "jane@corp.example", "the private cause keeps it for the log")
			require.NotContains(t, err.Error(), authCode)
			require.NotContains(t, err.Error(), fl.Verifier)
			require.NotContains(t, err.Error(), f.ClientSecret)
		})
	}
}

func TestTokenEndpointFailuresAreTemporarilyUnavailable(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	p := newFaultyProvider(t, f)
	cases := map[string]idp.Faults{
		"500":                     {TokenStatus: 500},
		"503 with an OAuth error": {TokenStatus: 503, TokenError: "temporarily_unavailable"},
		"429":                     {TokenStatus: 429, TokenError: "slow_down"},
		"server_error in a 400":   {TokenError: "server_error"},
	}
	for name, faults := range cases {
		t.Run(name, func(t *testing.T) {
			fl := newFlow()
			code := loginCode(t, p, f, fl)
			f.Set(faults)
			defer f.Set(idp.Faults{})

			_, _, err := p.Exchange(t.Context(), exchangeRequest(code, fl))

			e := providertest.RequireCode(t, err, domain.CodeTemporarilyUnavailable)
			require.Equal(t, "identity provider unavailable", e.Description)
		})
	}
}

func TestHangingTokenEndpointFailsWithinTheTimeout(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	const timeout = 300 * time.Millisecond
	p := newFaultyProvider(t, f, func(s *oidc.Settings) { s.Timeout = timeout })
	fl := newFlow()
	code := loginCode(t, p, f, fl)
	f.Set(idp.Faults{TokenHang: true})

	start := time.Now()
	_, _, err := p.Exchange(t.Context(), exchangeRequest(code, fl))

	providertest.RequireCode(t, err, domain.CodeTemporarilyUnavailable)
	require.Less(t, time.Since(start), timeout+2*time.Second)
	require.GreaterOrEqual(t, time.Since(start), timeout)
}

func TestNewFailsOnBadDiscovery(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		faults idp.Faults
		strict bool
		want   string
	}{
		{"issuer mismatch", idp.Faults{DiscoveryIssuer: "https://evil.example"}, false, "did not match the issuer"},
		{"HTTP 500", idp.Faults{DiscoveryStatus: 500}, false, "500"},
		{"no token endpoint", idp.Faults{DiscoveryExtra: map[string]any{"token_endpoint": nil}}, false, "token_endpoint"},
		{"no jwks_uri", idp.Faults{DiscoveryExtra: map[string]any{"jwks_uri": nil}}, false, "jwks_uri"},
		{"relative authorization endpoint", idp.Faults{DiscoveryExtra: map[string]any{"authorization_endpoint": "/authorize"}},
			false, "authorization_endpoint"},
		{"strict: no code response type", idp.Faults{DiscoveryExtra: map[string]any{"response_types_supported": []string{"id_token"}}},
			true, `"code"`},
		{"strict: no response types", idp.Faults{DiscoveryExtra: map[string]any{"response_types_supported": nil}}, true, `"code"`},
		{"strict: PKCE without S256", idp.Faults{DiscoveryExtra: map[string]any{"code_challenge_methods_supported": []string{"plain"}}},
			true, "S256"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := idp.NewFaulty(t, idp.FaultyOptions{})
			f.Set(tc.faults)
			s := providertest.Settings(f)
			s.Strict = tc.strict
			client, _ := newCountingClient(t)

			p, err := oidc.New(t.Context(), s, client)

			require.Nil(t, p)
			require.ErrorContains(t, err, tc.want)
			require.ErrorContains(t, err, f.ConfigURL, "the error names the discovery URL")
		})
	}
}

func TestNonStrictDiscoveryToleratesMissingOptionalLists(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	f.Set(idp.Faults{DiscoveryExtra: map[string]any{
		"response_types_supported":              nil,
		"code_challenge_methods_supported":      []string{"plain"},
		"scopes_supported":                      nil,
		"id_token_signing_alg_values_supported": nil,
	}})
	client, _ := newCountingClient(t)
	s := providertest.Settings(f)

	s.Strict = true
	_, err := oidc.New(t.Context(), s, client)
	require.Error(t, err)

	s.Strict = false
	_, err = oidc.New(t.Context(), s, client)
	require.NoError(t, err)
}

func TestHangingDiscoveryFailsWithinTheTimeout(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	f.Set(idp.Faults{DiscoveryHang: true})
	s := providertest.Settings(f)
	s.Timeout = 300 * time.Millisecond
	client, _ := newCountingClient(t)

	start := time.Now()
	p, err := oidc.New(t.Context(), s, client)

	require.Nil(t, p)
	require.ErrorContains(t, err, "did not answer within 300ms")
	require.Less(t, time.Since(start), 2*time.Second)
}

func TestUnreachableDiscoveryFailsWithAClearError(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	s := providertest.Settings(f)
	s.ConfigURL = "http://127.0.0.1:1/.well-known/openid-configuration"
	client, _ := newCountingClient(t)

	_, err := oidc.New(t.Context(), s, client)

	require.ErrorContains(t, err, "oidc: discovery at http://127.0.0.1:1/.well-known/openid-configuration")
}

func TestIssuerWithTrailingSlashIsAcceptedAndChecked(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{IssuerPath: "/tenant"})
	f.Set(idp.Faults{DiscoveryIssuer: f.Issuer + "/", IDTokenClaims: map[string]any{"iss": f.Issuer + "/"}})
	p := newFaultyProvider(t, f)
	require.Equal(t, f.Issuer+"/", p.Issuer())

	identity, _, err := login(t, p, f)
	require.NoError(t, err)
	require.Equal(t, f.Issuer+"/", identity.Issuer)

	// An ID token from the slash-less issuer is another issuer.
	f.Update(func(fs *idp.Faults) { fs.IDTokenClaims = nil })
	_, _, err = login(t, p, f)
	providertest.RequireCode(t, err, domain.CodeAccessDenied)
}

func TestAccessTokenChecksRefuseWhatTheOperatorDidNotAllow(t *testing.T) {
	t.Parallel()
	const api = "https://api.example"
	bothAlgs := map[string]any{"id_token_signing_alg_values_supported": []string{"ES256", "RS256"}}
	cases := []struct {
		name     string
		settings func(*oidc.Settings)
		faults   idp.Faults
		ok       bool
	}{
		{"audience: opaque token is refused",
			func(s *oidc.Settings) { s.Audience = api },
			idp.Faults{}, false},
		{"audience: JWT for another audience is refused",
			func(s *oidc.Settings) { s.Audience = api },
			idp.Faults{AccessToken: idp.AccessTokenShape{JWT: true, Audience: []string{"https://other.example"}}}, false},
		{"audience: JWT for the audience is accepted",
			func(s *oidc.Settings) { s.Audience = api },
			idp.Faults{AccessToken: idp.AccessTokenShape{JWT: true, Audience: []string{"https://other.example", api}}}, true},
		{"audience: JWT from another issuer is refused",
			func(s *oidc.Settings) { s.Audience = api },
			idp.Faults{AccessToken: idp.AccessTokenShape{JWT: true, Audience: []string{api}, Issuer: "https://evil.example"}}, false},
		{"algorithm: JWT signed with another offered algorithm is refused",
			func(s *oidc.Settings) { s.Algorithm = "ES256" },
			idp.Faults{DiscoveryExtra: bothAlgs, AccessToken: idp.AccessTokenShape{JWT: true, Algorithm: "RS256"}}, false},
		{"algorithm: JWT signed with the algorithm is accepted",
			func(s *oidc.Settings) { s.Algorithm = "RS256" },
			idp.Faults{DiscoveryExtra: bothAlgs, AccessToken: idp.AccessTokenShape{JWT: true, Algorithm: "RS256"}}, true},
		{"algorithm: opaque token is refused",
			func(s *oidc.Settings) { s.Algorithm = "ES256" },
			idp.Faults{DiscoveryExtra: bothAlgs}, false},
		{"scopes: JWT without a required scope is refused",
			func(s *oidc.Settings) { s.RequiredScopes = []string{"api.read", "api.write"} },
			idp.Faults{AccessToken: idp.AccessTokenShape{JWT: true, Scope: "openid api.read"}}, false},
		{"scopes: JWT with the required scopes is accepted",
			func(s *oidc.Settings) { s.RequiredScopes = []string{"api.read", "api.write"} },
			idp.Faults{AccessToken: idp.AccessTokenShape{JWT: true, Scope: "api.write openid api.read"}}, true},
		{"scopes: scp claim is read too",
			func(s *oidc.Settings) { s.RequiredScopes = []string{"api.read"} },
			idp.Faults{AccessToken: idp.AccessTokenShape{JWT: true, ScopeClaim: "scp", Scope: "api.read"}}, true},
		{"scopes: opaque token whose granted scope lacks one is refused",
			func(s *oidc.Settings) { s.RequiredScopes = []string{"api.read"} },
			idp.Faults{GrantedScope: "openid email"}, false},
		{"scopes: opaque token with the scope granted is accepted",
			func(s *oidc.Settings) { s.RequiredScopes = []string{"api.read"} },
			idp.Faults{}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := idp.NewFaulty(t, idp.FaultyOptions{})
			f.Set(tc.faults)
			p := newFaultyProvider(t, f, tc.settings)

			_, _, err := login(t, p, f)

			if tc.ok {
				require.NoError(t, err)
				return
			}
			e := providertest.RequireCode(t, err, domain.CodeAccessDenied)
			require.Equal(t, "access token verification failed", e.Description)
		})
	}
}

func TestAlgorithmMustBeOfferedByDiscovery(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	s := providertest.Settings(f)
	s.Algorithm = "RS256" // discovery offers ES256 only
	client, _ := newCountingClient(t)

	_, err := oidc.New(t.Context(), s, client)

	require.ErrorContains(t, err, "algorithm RS256 is not offered")
}

func TestEveryUpstreamCallGoesThroughTheInjectedClient(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	client, counter := newCountingClient(t)
	s := providertest.Settings(f)
	s.Audience = f.ClientID
	f.Set(idp.Faults{AccessToken: idp.AccessTokenShape{JWT: true}})
	p, err := oidc.New(t.Context(), s, client)
	require.NoError(t, err)

	_, tokens, err := login(t, p, f)
	require.NoError(t, err)
	refreshed, err := p.Refresh(t.Context(), tokens)
	require.NoError(t, err)
	tokens = refreshed.Tokens
	require.NoError(t, p.Revoke(t.Context(), tokens))
	require.NoError(t, p.Ready(t.Context()))

	calls := f.Calls()
	require.Equal(t, 1, calls.Authorize, "the browser's request, not ours")
	require.Equal(t, 2, calls.Token)
	require.Equal(t, 1, calls.Revocation)
	require.Positive(t, calls.JWKS)
	require.Equal(t, int64(calls.Discovery+calls.JWKS+calls.Token+calls.Revocation), counter.n.Load(),
		"every request the IdP got from the provider came through the injected client")
}

func TestExchangeKeepsAZeroExpiryWhenTheIdPSendsNoExpiresIn(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	f.Set(idp.Faults{OmitExpiresIn: true})
	p := newFaultyProvider(t, f)

	_, tokens, err := login(t, p, f)

	require.NoError(t, err)
	require.True(t, tokens.Expiry.IsZero())
}

func TestIdentityClaimsAreSmallScalarsOnly(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	extra := map[string]any{
		"groups":      []string{"a", "b"},
		"address":     map[string]any{"country": "CH"},
		"huge":        strings.Repeat("x", 10_000),
		"locale":      "de-CH",
		"admin":       true,
		"employee_no": 42,
	}
	for i := range 50 {
		extra[fmt.Sprintf("z%02d", i)] = "v" // sorted last: they fill the bound
	}
	f.Set(idp.Faults{IDTokenClaims: extra})
	p := newFaultyProvider(t, f)

	identity, _, err := login(t, p, f)

	require.NoError(t, err)
	require.Len(t, identity.Claims, 32, "bounded")
	require.Equal(t, true, identity.Claims["admin"])
	require.Equal(t, float64(42), identity.Claims["employee_no"])
	require.Equal(t, "de-CH", identity.Claims["locale"])
	for _, dropped := range []string{"groups", "address", "huge", "nonce", "aud", "exp", "at_hash", "sub", "email"} {
		require.NotContains(t, identity.Claims, dropped)
	}
}

func TestRefreshKeepsTheRefreshTokenWhenTheIdPDoesNotRotate(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	p := newFaultyProvider(t, f)
	_, tokens, err := login(t, p, f)
	require.NoError(t, err)

	refreshed, err := p.Refresh(t.Context(), tokens)

	require.NoError(t, err)
	require.Equal(t, tokens.RefreshToken, refreshed.Tokens.RefreshToken)
	require.NotEqual(t, tokens.AccessToken, refreshed.Tokens.AccessToken)
	require.NotEqual(t, tokens.IDToken, refreshed.Tokens.IDToken, "a new ID token arrived and was verified")
	form := f.LastToken().Form
	require.Equal(t, "refresh_token", form.Get("grant_type"))
	require.Equal(t, tokens.RefreshToken, form.Get("refresh_token"))
}

func TestRefreshTakesTheRotatedRefreshToken(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	f.Set(idp.Faults{RotateRefreshTokens: true})
	p := newFaultyProvider(t, f)
	_, tokens, err := login(t, p, f)
	require.NoError(t, err)

	refreshed, err := p.Refresh(t.Context(), tokens)
	require.NoError(t, err)
	require.NotEqual(t, tokens.RefreshToken, refreshed.Tokens.RefreshToken)

	_, err = p.Refresh(t.Context(), tokens)
	providertest.RequireCode(t, err, domain.CodeInvalidGrant)
	_, err = p.Refresh(t.Context(), refreshed.Tokens)
	require.NoError(t, err)
}

func TestRefreshKeepsTheOldIDTokenWhenNoneArrives(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	f.Set(idp.Faults{OmitRefreshIDToken: true})
	p := newFaultyProvider(t, f)
	_, tokens, err := login(t, p, f)
	require.NoError(t, err)

	refreshed, err := p.Refresh(t.Context(), tokens)

	require.NoError(t, err)
	require.Equal(t, tokens.IDToken, refreshed.Tokens.IDToken)
}

func TestRefreshFailuresAreInvalidGrantOrUnavailable(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	p := newFaultyProvider(t, f, func(s *oidc.Settings) { s.Timeout = 500 * time.Millisecond })
	_, tokens, err := login(t, p, f)
	require.NoError(t, err)
	cases := []struct {
		name   string
		faults idp.Faults
		tokens domain.UpstreamTokens
		want   domain.ErrorCode
	}{
		{"unknown refresh token", idp.Faults{}, domain.UpstreamTokens{RefreshToken: "forged"}, domain.CodeInvalidGrant},
		{"no refresh token", idp.Faults{}, domain.UpstreamTokens{AccessToken: "a"}, domain.CodeInvalidGrant},
		{"IdP refuses", idp.Faults{TokenError: "invalid_grant", TokenErrorDescription: "session ended"}, tokens, domain.CodeInvalidGrant},
		{"new ID token for another audience", idp.Faults{IDToken: idp.IDTokenWrongAudience}, tokens, domain.CodeInvalidGrant},
		{"new ID token for another subject", idp.Faults{IDTokenClaims: map[string]any{"sub": "someone-else"}}, tokens, domain.CodeInvalidGrant},
		{"IdP down", idp.Faults{TokenStatus: 502}, tokens, domain.CodeTemporarilyUnavailable},
		{"IdP hangs", idp.Faults{TokenHang: true}, tokens, domain.CodeTemporarilyUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f.Set(tc.faults)
			defer f.Set(idp.Faults{})

			_, err := p.Refresh(t.Context(), tc.tokens)

			e := providertest.RequireCode(t, err, tc.want)
			require.NotContains(t, e.Description, "session ended")
			require.NotContains(t, err.Error(), tokens.RefreshToken)
		})
	}
	_, err = p.Refresh(t.Context(), tokens)
	require.NoError(t, err, "the same refresh succeeds once the IdP behaves")
}

func TestRevokeRevokesTheRefreshTokenPreferably(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	p := newFaultyProvider(t, f)
	_, tokens, err := login(t, p, f)
	require.NoError(t, err)

	require.NoError(t, p.Revoke(t.Context(), tokens))

	form := f.LastRevocation().Form
	require.Equal(t, tokens.RefreshToken, form.Get("token"))
	require.Equal(t, "refresh_token", form.Get("token_type_hint"))
	require.True(t, f.Revoked(tokens.RefreshToken))
	_, err = p.Refresh(t.Context(), tokens)
	providertest.RequireCode(t, err, domain.CodeInvalidGrant)

	require.NoError(t, p.Revoke(t.Context(), domain.UpstreamTokens{AccessToken: tokens.AccessToken}))
	require.Equal(t, "access_token", f.LastRevocation().Form.Get("token_type_hint"))
	require.True(t, f.Revoked(tokens.AccessToken))
}

func TestRevokeFailuresAreReportedByKind(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	p := newFaultyProvider(t, f)
	tokens := domain.UpstreamTokens{AccessToken: "at", RefreshToken: "rt"}

	f.Set(idp.Faults{RevocationStatus: 503})
	providertest.RequireCode(t, p.Revoke(t.Context(), tokens), domain.CodeTemporarilyUnavailable)

	f.Set(idp.Faults{RevocationStatus: 401, RevocationError: "invalid_client"})
	providertest.RequireCode(t, p.Revoke(t.Context(), tokens), domain.CodeServerError)

	f.Set(idp.Faults{RevocationStatus: 400, RevocationError: "unsupported_token_type"})
	before := f.Calls().Revocation
	providertest.RequireCode(t, p.Revoke(t.Context(), tokens), domain.CodeServerError)
	require.Equal(t, before+2, f.Calls().Revocation, "the access token is tried after unsupported_token_type")
	require.Equal(t, "at", f.LastRevocation().Form.Get("token"))
}

func TestRevokeWithoutRevocationEndpointDoesNothing(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	f.Set(idp.Faults{DiscoveryExtra: map[string]any{"revocation_endpoint": nil}})
	p := newFaultyProvider(t, f)
	require.Empty(t, p.RevocationEndpoint())

	require.NoError(t, p.Revoke(t.Context(), domain.UpstreamTokens{RefreshToken: "rt"}))
	require.Zero(t, f.Calls().Revocation)
}

func TestReadyReportsAnUnreadableJWKS(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	p := newFaultyProvider(t, f, func(s *oidc.Settings) { s.Timeout = 300 * time.Millisecond })
	require.NoError(t, p.Ready(t.Context()))

	f.Set(idp.Faults{JWKSStatus: 500})
	require.ErrorContains(t, p.Ready(t.Context()), "HTTP 500")

	f.Set(idp.Faults{JWKSHang: true})
	start := time.Now()
	require.Error(t, p.Ready(t.Context()))
	require.Less(t, time.Since(start), 2*time.Second)
}

func TestNewRejectsBadSettings(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	client, counter := newCountingClient(t)
	cases := []struct {
		name string
		edit func(*oidc.Settings)
		want string
	}{
		{"no client id", func(s *oidc.Settings) { s.ClientID = "" }, "client id"},
		{"no secret for basic", func(s *oidc.Settings) { s.ClientSecret = "" }, "needs a client secret"},
		{"unknown auth method", func(s *oidc.Settings) { s.TokenEndpointAuthMethod = "private_key_jwt" }, "unknown token endpoint auth method"},
		{"relative redirect URL", func(s *oidc.Settings) { s.RedirectURL = "/auth/callback" }, "redirect URL"},
		{"config URL without well-known path", func(s *oidc.Settings) { s.ConfigURL = f.Issuer }, "must end with"},
		{"config URL not absolute", func(s *oidc.Settings) { s.ConfigURL = "/.well-known/openid-configuration" }, "absolute"},
		{"alg none", func(s *oidc.Settings) { s.Algorithm = "none" }, "not an asymmetric"},
		{"alg HS256", func(s *oidc.Settings) { s.Algorithm = "HS256" }, "not an asymmetric"},
		{"malformed required scope", func(s *oidc.Settings) { s.RequiredScopes = []string{"a b"} }, "malformed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := providertest.Settings(f)
			tc.edit(&s)
			_, err := oidc.New(t.Context(), s, client)
			require.ErrorContains(t, err, tc.want)
		})
	}
	require.Zero(t, counter.n.Load(), "settings are checked before any request")

	_, err := oidc.New(t.Context(), providertest.Settings(f), nil)
	require.ErrorContains(t, err, "nil http client")
}

func TestProviderNameIsOIDC(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	var p ports.IdentityProvider = newFaultyProvider(t, f)
	require.Equal(t, "oidc", p.Name())
}

func TestUserInfoCompletesAnIdentityWhoseIDTokenHasNoEmail(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		faults    idp.Faults
		wantEmail bool
		wantCode  domain.ErrorCode
	}{
		{"userinfo fills in the email", idp.Faults{UserInfo: map[string]any{"locale": "fr"}}, true, ""},
		{"userinfo about another subject is refused", idp.Faults{UserInfo: map[string]any{"sub": "someone-else"}}, false, domain.CodeAccessDenied},
		{"a refusing userinfo leaves the ID token's identity", idp.Faults{UserInfo: map[string]any{}, UserInfoStatus: 401}, false, ""},
		{"no userinfo endpoint leaves the ID token's identity", idp.Faults{}, false, ""},
		{"a hanging userinfo is temporarily unavailable", idp.Faults{UserInfo: map[string]any{}, UserInfoHang: true},
			false, domain.CodeTemporarilyUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := idp.NewFaulty(t, idp.FaultyOptions{})
			tc.faults.IDTokenClaims = map[string]any{"email": nil, "email_verified": nil}
			f.Set(tc.faults)
			p := newFaultyProvider(t, f, func(s *oidc.Settings) { s.Timeout = 500 * time.Millisecond })

			identity, _, err := login(t, p, f)

			if tc.wantCode != "" {
				providertest.RequireCode(t, err, tc.wantCode)
				return
			}
			require.NoError(t, err)
			require.Equal(t, f.Subject, identity.Subject)
			if tc.wantEmail {
				require.Equal(t, f.Email, identity.Email)
				require.True(t, identity.EmailVerified)
				require.Equal(t, "fr", identity.Claims["locale"])
				require.Equal(t, 1, f.Calls().UserInfo)
			} else {
				require.Empty(t, identity.Email)
			}
		})
	}
}

func TestUnreadableJWKSDuringLoginIsTemporarilyUnavailable(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	p := newFaultyProvider(t, f)
	f.Set(idp.Faults{JWKSStatus: 500})

	_, _, err := login(t, p, f)

	providertest.RequireCode(t, err, domain.CodeTemporarilyUnavailable)
}

func TestHangingJWKSFailsWithinTheTimeoutAndRecovers(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	const timeout = 300 * time.Millisecond
	p := newFaultyProvider(t, f, func(s *oidc.Settings) { s.Timeout = timeout })
	f.Set(idp.Faults{JWKSHang: true})

	start := time.Now()
	_, _, err := login(t, p, f)
	providertest.RequireCode(t, err, domain.CodeTemporarilyUnavailable)
	require.Less(t, time.Since(start), timeout+2*time.Second)

	// The key fetch started in the background must end too (the injected
	// client gets the timeout), or every later login would wait on it.
	f.Set(idp.Faults{})
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		_, _, err := login(t, p, f)
		assert.NoError(c, err)
	}, 3*time.Second, 100*time.Millisecond)
}

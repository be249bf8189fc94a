package domain_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
)

var (
	now      = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	audience = domain.ClientAssertionAudience{Issuer: "https://as.example", TokenEndpoint: "https://as.example/token"}
)

// clientAssertion is a client assertion that CheckClientAssertion accepts.
func clientAssertion() domain.Assertion {
	return domain.Assertion{
		Issuer:    "client-1",
		Subject:   "client-1",
		Audience:  []string{"https://as.example"},
		ExpiresAt: now.Add(time.Minute),
		IssuedAt:  now,
		JTI:       "jti-1",
	}
}

// reason returns the rule an assertion broke, failing the test if the
// error is not an *AssertionError.
func reason(t *testing.T, err error) string {
	t.Helper()
	var e *domain.AssertionError
	require.True(t, errors.As(err, &e), "want an *AssertionError, got %v", err)
	require.ErrorIs(t, err, domain.ErrBadAssertion)
	return e.Reason
}

func TestCheckClientAssertionAcceptsTheIssuerOrTheTokenEndpointAsSoleAudience(t *testing.T) {
	for name, a := range map[string]func(*domain.Assertion){
		"issuer":                        func(*domain.Assertion) {},
		"issuer in a one-element array": func(a *domain.Assertion) { a.AudienceArray = true },
		"token endpoint":                func(a *domain.Assertion) { a.Audience = []string{"https://as.example/token"} },
		"typ JWT":                       func(a *domain.Assertion) { a.Type = "JWT" },
		"explicit typ with the issuer":  func(a *domain.Assertion) { a.Type = "client-authentication+jwt" },
		"no iat":                        func(a *domain.Assertion) { a.IssuedAt = time.Time{} },
		"exp just within the leeway": func(a *domain.Assertion) {
			a.IssuedAt, a.ExpiresAt = now.Add(-2*time.Minute), now.Add(-domain.AssertionLeeway+time.Second)
		},
		"iat just ahead, within leeway": func(a *domain.Assertion) {
			a.IssuedAt = now.Add(domain.AssertionLeeway - time.Second)
			a.ExpiresAt = now.Add(2 * time.Minute)
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := clientAssertion()
			a(&c)
			require.NoError(t, domain.CheckClientAssertion(c, "client-1", audience, now))
		})
	}
}

func TestCheckClientAssertionRefusesEachBrokenRule(t *testing.T) {
	for _, tc := range []struct {
		name, rule string
		change     func(*domain.Assertion)
	}{
		{"iss of another client", "iss is not the client_id", func(a *domain.Assertion) { a.Issuer = "client-2" }},
		{"sub of another client", "sub is not the client_id", func(a *domain.Assertion) { a.Subject = "client-2" }},
		{"aud of another server", "aud is not", func(a *domain.Assertion) { a.Audience = []string{"https://other.example"} }},
		{"no aud", "aud is not", func(a *domain.Assertion) { a.Audience = nil }},
		{"aud with a second audience", "aud is not", func(a *domain.Assertion) {
			a.Audience, a.AudienceArray = []string{"https://as.example", "https://other.example"}, true
		}},
		{"explicit typ with the token endpoint", "aud is not", func(a *domain.Assertion) {
			a.Type, a.Audience = "client-authentication+jwt", []string{"https://as.example/token"}
		}},
		{"an ID-JAG presented as a client assertion", "typ is not", func(a *domain.Assertion) { a.Type = "oauth-id-jag+jwt" }},
		{"an access token presented as a client assertion", "typ is not", func(a *domain.Assertion) { a.Type = "at+jwt" }},
		{"no exp", "exp is missing", func(a *domain.Assertion) { a.ExpiresAt = time.Time{} }},
		{"expired beyond the leeway", "expired", func(a *domain.Assertion) { a.ExpiresAt = now.Add(-domain.AssertionLeeway) }},
		{"exp too far ahead", "in the future", func(a *domain.Assertion) {
			a.ExpiresAt = now.Add(domain.MaxClientAssertionLifetime + domain.AssertionLeeway + time.Second)
		}},
		{"nbf in the future", "nbf", func(a *domain.Assertion) { a.NotBefore = now.Add(domain.AssertionLeeway + time.Second) }},
		{"iat in the future", "iat is in the future", func(a *domain.Assertion) {
			a.IssuedAt = now.Add(domain.AssertionLeeway + time.Second)
			a.ExpiresAt = now.Add(3 * time.Minute)
		}},
		{"iat long past", "iat is more than", func(a *domain.Assertion) { a.IssuedAt = now.Add(-time.Hour) }},
		{"no jti", "jti is missing", func(a *domain.Assertion) { a.JTI = "" }},
		{"overlong jti", "jti is longer", func(a *domain.Assertion) { a.JTI = string(make([]byte, domain.MaxJTILength+1)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := clientAssertion()
			tc.change(&c)
			require.Contains(t, reason(t, domain.CheckClientAssertion(c, "client-1", audience, now)), tc.rule)
		})
	}
}

// idJAG is an ID-JAG that CheckIDJAG accepts under idJAGPolicy.
func idJAG() domain.Assertion {
	return domain.Assertion{
		Type:      "oauth-id-jag+jwt",
		Issuer:    "https://idp.example",
		Subject:   "u-1",
		Audience:  []string{"https://as.example"},
		ExpiresAt: now.Add(4 * time.Minute),
		IssuedAt:  now.Add(-time.Minute),
		JTI:       "jti-1",
		ClientID:  "client-1",
		Resource:  []string{"https://as.example/mcp"},
	}
}

var idJAGPolicy = domain.IDJAGPolicy{
	Issuer:         "https://as.example",
	Resource:       "https://as.example/mcp",
	TrustedIssuers: []string{"https://idp.example", "https://other-idp.example"},
}

func TestCheckIDJAGAcceptsAValidGrant(t *testing.T) {
	for name, change := range map[string]func(*domain.Assertion){
		"as issued":                      func(*domain.Assertion) {},
		"typ with the application/ form": func(a *domain.Assertion) { a.Type = "application/OAUTH-ID-JAG+JWT" },
		"resource spelled non-canonically": func(a *domain.Assertion) {
			a.Resource = []string{"HTTPS://AS.example/mcp/"}
		},
	} {
		t.Run(name, func(t *testing.T) {
			a := idJAG()
			change(&a)
			require.NoError(t, domain.CheckIDJAG(a, idJAGPolicy, "client-1", now))
		})
	}
}

func TestCheckIDJAGRefusesEachBrokenRule(t *testing.T) {
	for _, tc := range []struct {
		name, rule string
		change     func(*domain.Assertion)
	}{
		{"untyped", "typ is not", func(a *domain.Assertion) { a.Type = "" }},
		{"typed JWT", "typ is not", func(a *domain.Assertion) { a.Type = "JWT" }},
		{"untrusted issuer", "iss is not a trusted issuer", func(a *domain.Assertion) { a.Issuer = "https://evil.example" }},
		{"aud of another server", "aud is not", func(a *domain.Assertion) { a.Audience = []string{"https://other.example"} }},
		{"aud of the token endpoint", "aud is not", func(a *domain.Assertion) { a.Audience = []string{"https://as.example/token"} }},
		{"aud with a second audience", "aud is not", func(a *domain.Assertion) {
			a.Audience = []string{"https://as.example", "https://other.example"}
		}},
		{"no client_id", "client_id is missing", func(a *domain.Assertion) { a.ClientID = "" }},
		{"another client", "client_id is not the authenticated client", func(a *domain.Assertion) { a.ClientID = "client-2" }},
		{"no resource", "resource is missing", func(a *domain.Assertion) { a.Resource = nil }},
		{"another resource", "resource is not this MCP server", func(a *domain.Assertion) { a.Resource = []string{"https://other.example/mcp"} }},
		{"our resource and another", "resource is not this MCP server", func(a *domain.Assertion) {
			a.Resource = []string{"https://as.example/mcp", "https://other.example/mcp"}
		}},
		{"no sub", "sub is missing", func(a *domain.Assertion) { a.Subject = "" }},
		{"no iat", "iat is missing", func(a *domain.Assertion) { a.IssuedAt = time.Time{} }},
		{"no exp", "exp is missing", func(a *domain.Assertion) { a.ExpiresAt = time.Time{} }},
		{"expired", "expired", func(a *domain.Assertion) { a.ExpiresAt = now.Add(-domain.AssertionLeeway) }},
		{"iat in the future", "iat is in the future", func(a *domain.Assertion) { a.IssuedAt = now.Add(2 * time.Minute) }},
		{"lifetime too long", "lifetime exceeds", func(a *domain.Assertion) {
			a.IssuedAt, a.ExpiresAt = now.Add(-time.Minute), now.Add(domain.MaxIDJAGLifetime)
		}},
		{"no jti", "jti is missing", func(a *domain.Assertion) { a.JTI = "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := idJAG()
			tc.change(&a)
			require.Contains(t, reason(t, domain.CheckIDJAG(a, idJAGPolicy, "client-1", now)), tc.rule)
		})
	}
}

func TestIDJAGScopesGrantTheIntersectionWithinWhatTheIdPDelegated(t *testing.T) {
	supported := []string{"openid", "email", "mcp:read", "mcp:write"}
	defaults := []string{"openid"}
	withScope := func(s string) domain.Assertion { a := idJAG(); a.Scope, a.HasScope = s, true; return a }

	got, err := domain.IDJAGScopes(withScope("mcp:read mcp:write"), nil, supported, defaults)
	require.NoError(t, err)
	require.Equal(t, []string{"mcp:read", "mcp:write"}, got)

	got, err = domain.IDJAGScopes(withScope("mcp:read mcp:write"), []string{"mcp:write", "email"}, supported, defaults)
	require.NoError(t, err)
	require.Equal(t, []string{"mcp:write"}, got, "the intersection of what was asked and what was delegated")

	got, err = domain.IDJAGScopes(idJAG(), nil, supported, defaults)
	require.NoError(t, err)
	require.Equal(t, defaults, got, "no scope claim: the defaults, as at /authorize")

	_, err = domain.IDJAGScopes(withScope("mcp:read"), []string{"mcp:write"}, supported, defaults)
	require.Equal(t, domain.CodeInvalidScope, domain.CodeOf(err))

	_, err = domain.IDJAGScopes(withScope("mcp:read admin"), nil, supported, defaults)
	require.Equal(t, domain.CodeInvalidGrant, domain.CodeOf(err), "a scope this server does not know")
}

func TestIDJAGSubjectIsTheBrowserLoginsForTheUpstreamIdPAndNamespacedOtherwise(t *testing.T) {
	require.Equal(t, "u-1", domain.IDJAGSubject("https://idp.example", "u-1", "https://idp.example"))
	require.Equal(t, "https://okta.example#u-1", domain.IDJAGSubject("https://okta.example", "u-1", "https://idp.example"))
	require.Equal(t, "https://okta.example#u-1", domain.IDJAGSubject("https://okta.example", "u-1", ""))
	// Two IdPs' "u-1" are two people.
	require.NotEqual(t, domain.IDJAGSubject("https://a.example", "u-1", "https://idp.example"),
		domain.IDJAGSubject("https://b.example", "u-1", "https://idp.example"))
}

func TestIDJAGIdentityKeepsTheUserClaimsAndValidatesThem(t *testing.T) {
	a := idJAG()
	a.Claims = map[string]any{
		"iss": a.Issuer, "sub": a.Subject, "aud": "https://as.example", "jti": "jti-1", "client_id": "client-1",
		"email": "u@example.com", "email_verified": true, "name": "U One", "groups": []any{"eng"}, "amr": []any{"mfa"},
		"acr": "urn:mace:incommon:iap:silver", "auth_time": 1767225600.0, "nickname": strings.Repeat("n", domain.MaxKeptClaimStringLength+1),
	}
	id, err := domain.IDJAGIdentity(a, a.Issuer)
	require.NoError(t, err)
	// The claims a browser login keeps, within the same bounds: small
	// scalars; lists (groups, amr) only through a policy's group claims,
	// which the use case keeps.
	require.Equal(t, domain.Identity{
		Subject: "u-1", Issuer: "https://idp.example", Email: "u@example.com", EmailVerified: true, Name: "U One",
		Claims: map[string]any{"acr": "urn:mace:incommon:iap:silver", "auth_time": 1767225600.0},
	}, id)

	a.Claims["email_verified"] = "true" // not a boolean: not verified
	id, err = domain.IDJAGIdentity(a, a.Issuer)
	require.NoError(t, err)
	require.False(t, id.EmailVerified)

	a.Subject = "bad\r\nsubject"
	_, err = domain.IDJAGIdentity(a, a.Issuer)
	var claim *domain.ClaimError
	require.ErrorAs(t, err, &claim)
}

// A partner IdP vouches for its own users only: its subject is mapped
// apart from the upstream IdP's, its email never counts as verified, and
// its group and other claims are dropped, so none of them can satisfy a
// rule written for the upstream IdP's users.
func TestAnotherIssuersIDJAGNeverPassesForTheUpstreamIdPsUser(t *testing.T) {
	a := idJAG()
	a.Claims = map[string]any{
		"iss": a.Issuer, "sub": a.Subject, "email": "alice@example.com", "email_verified": true,
		"name": "Alice", "groups": []any{"admins"},
	}
	id, err := domain.IDJAGIdentity(a, "https://upstream.example")
	require.NoError(t, err)
	require.Equal(t, domain.Identity{
		Subject: a.Issuer + "#" + a.Subject, Issuer: a.Issuer, Email: "alice@example.com", EmailVerified: false, Name: "Alice",
	}, id)
}

func TestAssertionReplayKeysDifferByIssuerAndJTI(t *testing.T) {
	require.Equal(t, domain.AssertionReplayKey("a", "b"), domain.AssertionReplayKey("a", "b"))
	require.NotEqual(t, domain.AssertionReplayKey("a", "bc"), domain.AssertionReplayKey("ab", "c"))
	require.NotEqual(t, domain.AssertionReplayKey("a", "b"), domain.AssertionReplayKey("b", "a"))
}

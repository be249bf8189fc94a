package oidc_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/domain/policy"
	"github.com/oidcproxy/oidcproxy/providers/oidc"
	"github.com/oidcproxy/oidcproxy/test/idp"
	"github.com/oidcproxy/oidcproxy/test/providertest"
)

// policySource hands out a policy the test replaces, as a reload does.
type policySource struct{ p atomic.Pointer[policy.Policy] }

func (s *policySource) Policy() *policy.Policy { return s.p.Load() }

// groupPolicy is a policy whose group claims are claims, written as the
// policy file writes them.
func groupPolicy(t *testing.T, claims ...string) *policySource {
	t.Helper()
	var paths []policy.ClaimPath
	for _, c := range claims {
		p, err := policy.ParseClaimPath(c)
		require.NoError(t, err)
		paths = append(paths, p)
	}
	p, err := policy.New(policy.Spec{GroupClaims: paths, Admission: &policy.AdmissionSpec{Groups: []string{"mcp"}}})
	require.NoError(t, err)
	src := &policySource{}
	src.p.Store(p)
	return src
}

// alice is a user whose ID tokens carry a groups list, Keycloak's nested
// realm roles and an object nobody asked for, and whose userinfo answer
// alone carries Entra-style roles.
func alice() idp.User {
	return idp.User{
		Subject: "alice-sub", Username: "alice", Password: "alice-password", Email: "alice@example.com", EmailVerified: true,
		Claims: map[string]any{
			"groups":       []any{"mcp", "staff"},
			"realm_access": map[string]any{"roles": []any{"kc-admin"}, "other": "not a role"},
			"department":   "eng",
			"address":      map[string]any{"street": "not kept"},
		},
		UserinfoClaims: map[string]any{"roles": []any{"MCP.User"}},
	}
}

func startUsersOP(t *testing.T, src *policySource, userinfo bool) (*idp.OP, *oidc.Provider) {
	t.Helper()
	op := idp.StartOPWithUsers(t, []idp.User{alice()}, idp.Client{ID: "proxy", Secret: "proxy-secret", RedirectURIs: []string{callback}})
	client, _ := newCountingClient(t)
	s := oidc.Settings{
		ConfigURL: op.ConfigURL, ClientID: "proxy", ClientSecret: "proxy-secret", RedirectURL: callback,
		Strict: true, Timeout: 5 * time.Second, UserinfoClaims: userinfo,
	}
	if src != nil {
		s.Policy = src
	}
	p, err := oidc.New(t.Context(), s, client)
	require.NoError(t, err)
	return op, p
}

func TestTheGroupClaimsThePolicyNamesAreKeptWithTheIdentity(t *testing.T) {
	t.Parallel()
	src := groupPolicy(t, "groups", "realm_access.roles", "roles")
	op, p := startUsersOP(t, src, false)

	identity, tokens, err := login(t, p, op, "email")
	require.NoError(t, err)

	require.Equal(t, "alice@example.com", identity.Email)
	require.Equal(t, []any{"mcp", "staff"}, identity.Claims["groups"])
	require.Equal(t, map[string]any{"roles": []any{"kc-admin"}}, identity.Claims["realm_access"], "only the named path is kept")
	require.Equal(t, "eng", identity.Claims["department"], "small scalar claims are kept as before")
	require.NotContains(t, identity.Claims, "address", "objects no policy names are not")
	require.NotContains(t, identity.Claims, "roles", "userinfo claims only when USERINFO_CLAIMS is on")

	// At the IdP, alice leaves mcp; the next refresh's ID token says so,
	// and the renewed identity carries it.
	op.SetClaims("alice-sub", map[string]any{"groups": []any{"staff"}})
	refreshed, err := p.Refresh(t.Context(), tokens)
	require.NoError(t, err)
	require.NotNil(t, refreshed.Identity)
	require.Equal(t, "alice-sub", refreshed.Identity.Subject)
	require.Equal(t, []any{"staff"}, refreshed.Identity.Claims["groups"])
	require.NotContains(t, refreshed.Identity.Claims, "realm_access")
	require.Equal(t, "alice@example.com", refreshed.Identity.Email, "completed from userinfo as at sign-in")
}

func TestWithoutAPolicyListsAndObjectsAreNotKept(t *testing.T) {
	t.Parallel()
	op, p := startUsersOP(t, nil, false)
	identity, _, err := login(t, p, op, "email")
	require.NoError(t, err)
	require.NotContains(t, identity.Claims, "groups")
	require.NotContains(t, identity.Claims, "realm_access")
	require.Equal(t, "eng", identity.Claims["department"])
}

func TestAReloadedPolicyNamesOtherClaimsForTheNextSignIn(t *testing.T) {
	t.Parallel()
	src := groupPolicy(t, "groups")
	op, p := startUsersOP(t, src, false)
	identity, _, err := login(t, p, op)
	require.NoError(t, err)
	require.NotContains(t, identity.Claims, "realm_access")

	src.p.Store(groupPolicy(t, "[realm_access, roles]").Policy())
	src.p.Store(groupPolicy(t, "realm_access.roles").Policy())
	identity, _, err = login(t, p, op)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"roles": []any{"kc-admin"}}, identity.Claims["realm_access"])
}

func TestUserinfoClaimsFillInWhatTheIDTokenLacks(t *testing.T) {
	t.Parallel()
	src := groupPolicy(t, "groups", "roles")
	op, p := startUsersOP(t, src, true)

	identity, tokens, err := login(t, p, op, "email")
	require.NoError(t, err)
	require.Equal(t, []any{"MCP.User"}, identity.Claims["roles"], "from userinfo")
	require.Equal(t, []any{"mcp", "staff"}, identity.Claims["groups"])

	refreshed, err := p.Refresh(t.Context(), tokens)
	require.NoError(t, err)
	require.Equal(t, []any{"MCP.User"}, refreshed.Identity.Claims["roles"], "and again at a refresh")
}

func TestTheIDTokensWordWinsOverUserinfo(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	f.Set(idp.Faults{
		IDTokenClaims: map[string]any{"groups": []any{"from-id-token"}},
		UserInfo:      map[string]any{"groups": []any{"from-userinfo"}, "roles": "one-role"},
	})
	src := groupPolicy(t, "groups", "roles")
	p := newFaultyProvider(t, f, func(s *oidc.Settings) { s.Policy = src; s.UserinfoClaims = true })
	identity, _, err := login(t, p, f)
	require.NoError(t, err)
	require.Equal(t, []any{"from-id-token"}, identity.Claims["groups"])
	require.Equal(t, "one-role", identity.Claims["roles"])
}

func TestAGroupClaimTooLargeToKeepRefusesTheSignInWithoutQuotingIt(t *testing.T) {
	t.Parallel()
	many := make([]any, 5000)
	for i := range many {
		many[i] = fmt.Sprintf("secret-group-%d", i)
	}
	cases := map[string]any{
		"too many groups":     many,
		"a group too long":    []any{"mcp", strings.Repeat("g", 10_000)},
		"a huge string claim": strings.Repeat("s", 100_000),
	}
	for name, value := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := idp.NewFaulty(t, idp.FaultyOptions{})
			f.Set(idp.Faults{IDTokenClaims: map[string]any{"groups": value}})
			p := newFaultyProvider(t, f, func(s *oidc.Settings) { s.Policy = groupPolicy(t, "groups") })
			_, _, err := login(t, p, f)
			providertest.RequireCode(t, err, domain.CodeAccessDenied)
			require.Contains(t, err.Error(), "upstream claim groups has")
			require.NotContains(t, err.Error(), "secret-group")
			require.NotContains(t, err.Error(), "ggggg")
		})
	}
}

func TestARefreshWhoseGroupsCannotBeKeptEndsTheSession(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	p := newFaultyProvider(t, f, func(s *oidc.Settings) { s.Policy = groupPolicy(t, "groups") })
	_, tokens, err := login(t, p, f)
	require.NoError(t, err)
	f.Set(idp.Faults{IDTokenClaims: map[string]any{"groups": []any{strings.Repeat("g", 300)}}})
	_, err = p.Refresh(t.Context(), tokens)
	providertest.RequireCode(t, err, domain.CodeInvalidGrant)
}

func TestARefreshWhoseUserinfoIsUnreachableKeepsTheStoredIdentity(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	f.Set(idp.Faults{UserInfo: map[string]any{"roles": "r"}})
	p := newFaultyProvider(t, f, func(s *oidc.Settings) { s.Policy = groupPolicy(t, "roles"); s.UserinfoClaims = true })
	_, tokens, err := login(t, p, f)
	require.NoError(t, err)

	f.Update(func(x *idp.Faults) { x.UserInfoStatus = 503 })
	refreshed, err := p.Refresh(t.Context(), tokens)
	require.NoError(t, err, "the IdP spent the old refresh token: the new tokens must be kept")
	require.NotEmpty(t, refreshed.Tokens.AccessToken)
	require.Nil(t, refreshed.Identity, "no identity: the stored one stands")
}

func TestWithUserinfoClaimsARefusingUserinfoRefusesTheSignIn(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	f.Set(idp.Faults{UserInfo: map[string]any{"roles": "r"}, UserInfoStatus: 401})
	p := newFaultyProvider(t, f, func(s *oidc.Settings) { s.Policy = groupPolicy(t, "roles"); s.UserinfoClaims = true })
	_, _, err := login(t, p, f)
	providertest.RequireCode(t, err, domain.CodeAccessDenied)
	require.Contains(t, err.Error(), "HTTP 401")
	require.NotContains(t, err.Error(), "userinfo failure", "the IdP's body stays out of the log")

	f.Update(func(x *idp.Faults) { x.UserInfoStatus = 502 })
	_, _, err = login(t, p, f)
	providertest.RequireCode(t, err, domain.CodeTemporarilyUnavailable)
}

func TestAProviderTrustsEmailsOnlyWhenItsPresetSaysSo(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	s := providertest.Settings(f)
	client, _ := newCountingClient(t)
	plain, err := oidc.New(t.Context(), s, client)
	require.NoError(t, err)
	require.False(t, plain.TrustsEmail())
	trusting, err := oidc.New(t.Context(), s, client, oidc.WithVerifiedEmails())
	require.NoError(t, err)
	require.True(t, trusting.TrustsEmail())
}

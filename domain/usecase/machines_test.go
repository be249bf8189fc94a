package usecase_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/assertion"
	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/domain/policy"
	"github.com/oidcproxy/oidcproxy/domain/usecase"
	"github.com/oidcproxy/oidcproxy/ports"
	"github.com/oidcproxy/oidcproxy/test/idp"
)

// fixedPolicy is a PolicySource holding one policy, as the policy file
// adapter holds the file it loaded.
type fixedPolicy struct{ p *policy.Policy }

func (f fixedPolicy) Policy() *policy.Policy { return f.p }

func admitting(t *testing.T, spec policy.AdmissionSpec) ports.PolicySource {
	t.Helper()
	p, err := policy.New(policy.Spec{Admission: &spec})
	require.NoError(t, err)
	return fixedPolicy{p}
}

// machineClient stores an operator's client_credentials client with a
// secret and returns how it authenticates.
func (h *harness) machineClient(t *testing.T, id, scope string) ports.ClientAuth {
	t.Helper()
	secret := "secret-of-" + id
	require.NoError(t, h.store.CreateClient(t.Context(), domain.Client{
		ID: id, SecretHash: []byte(domain.HashToken(secret)), TokenEndpointAuthMethod: domain.AuthClientSecretBasic,
		GrantTypes: []string{domain.GrantClientCredentials}, Scope: scope, Operator: true, CreatedAt: h.clock.Now(),
	}))
	return ports.ClientAuth{ClientID: id, Secret: secret, Method: domain.AuthClientSecretBasic}
}

func (h *harness) machineToken(t *testing.T, auth ports.ClientAuth) (ports.TokenResult, error) {
	t.Helper()
	return h.app.ClientCredentials.Handle(t.Context(), ports.ClientCredentialsCommand{Client: auth})
}

func TestAMachineTokenNamesTheClientAndHangsOnAMachineGrant(t *testing.T) {
	h := newHarness(t, nil)
	auth := h.machineClient(t, "ci", "mcp")
	res, err := h.machineToken(t, auth)
	require.NoError(t, err)
	require.Empty(t, res.RefreshToken)
	require.Equal(t, "mcp", res.Scope)

	access, err := h.app.VerifyAccessToken.Handle(t.Context(), ports.VerifyAccessTokenCommand{Token: res.AccessToken, Resource: resource, WithUpstream: true})
	require.NoError(t, err)
	require.True(t, access.Token.Machine)
	require.Equal(t, "ci", access.Token.Subject)
	require.True(t, access.Grant.Machine)
	require.Equal(t, domain.Identity{}, access.Grant.Identity)
	require.Empty(t, access.UpstreamAccessToken, "no upstream login behind a machine, and no error for it")
}

func TestClientCredentialsReusesTheClientsLiveGrantUntilNearItsEnd(t *testing.T) {
	h := newHarness(t, nil)
	auth := h.machineClient(t, "ci", "mcp")
	first, err := h.machineToken(t, auth)
	require.NoError(t, err)
	second, err := h.machineToken(t, auth)
	require.NoError(t, err)
	require.Equal(t, first.GrantID, second.GrantID, "one store write per client and day, not per token")

	// The grant lives a day; with less than a token's lifetime left, the
	// next token gets a new grant, so no token outlives its grant.
	h.clock.Advance(23*time.Hour + 30*time.Minute)
	third, err := h.machineToken(t, auth)
	require.NoError(t, err)
	require.NotEqual(t, first.GrantID, third.GrantID)
	require.True(t, h.live(t, third.AccessToken))
	h.clock.Advance(59 * time.Minute)
	require.True(t, h.live(t, third.AccessToken), "its grant outlives it")

	// A revoked grant is replaced at the next token.
	require.NoError(t, h.store.RevokeGrant(t.Context(), third.GrantID))
	require.False(t, h.live(t, third.AccessToken))
	fourth, err := h.machineToken(t, auth)
	require.NoError(t, err)
	require.NotEqual(t, third.GrantID, fourth.GrantID)
	require.True(t, h.live(t, fourth.AccessToken))
}

func TestABurstOfFirstMachineRequestsMakesOneGrant(t *testing.T) {
	h := newHarness(t, nil)
	auth := h.machineClient(t, "ci", "mcp")
	other := h.machineClient(t, "other", "mcp")
	var wg sync.WaitGroup
	ids := make([]string, 32)
	for i := range ids {
		wg.Go(func() {
			a := auth
			if i%2 == 1 {
				a = other
			}
			res, err := h.machineToken(t, a)
			if err == nil {
				ids[i] = res.GrantID
			}
		})
	}
	wg.Wait()
	grants := map[string]bool{}
	for _, id := range ids {
		require.NotEmpty(t, id)
		grants[id] = true
	}
	require.Len(t, grants, 2, "one grant per client")
	require.Equal(t, 2, h.stored(t))
}

func TestTheAdmissionPolicyDecidesWhichMachinesGetTokens(t *testing.T) {
	h := newHarnessWith(t, harnessOptions{policies: admitting(t, policy.AdmissionSpec{MachineClients: []string{"ci-allowed"}, Emails: []string{"alice@example.com"}})})
	_, err := h.machineToken(t, h.machineClient(t, "ci-allowed", "mcp"))
	require.NoError(t, err)
	_, err = h.machineToken(t, h.machineClient(t, "ci-other", "mcp"))
	require.Equal(t, domain.CodeUnauthorizedClient, domain.CodeOf(err))
}

// enterpriseHarness is a harness whose jwt-bearer grant trusts corp, and
// an operator's client "agent" that may use it.
func enterpriseHarness(t *testing.T, corp *idp.Faulty, policies ...ports.PolicySource) (*harness, ports.ClientAuth) {
	t.Helper()
	keys, err := assertion.NewIssuers(assertion.IssuerOptions{Issuers: []string{corp.Issuer}, Client: &http.Client{Timeout: 5 * time.Second}})
	require.NoError(t, err)
	o := harnessOptions{
		settings: func(s *usecase.Settings) {
			s.TrustedIDJAGIssuers, s.IDJAGClients = []string{corp.Issuer}, []string{"agent"}
		},
		opts: []usecase.Option{usecase.WithClientAssertions(assertion.Verifier{}, nil), usecase.WithIDJAG(keys)},
	}
	if len(policies) > 0 {
		o.policies = policies[0]
	}
	h := newHarnessWith(t, o)
	// The ID-JAG's times come from the IdP's real clock.
	h.clock.Set(time.Now())
	auth := h.machineClient(t, "agent", "")
	return h, auth
}

func (h *harness) idJAG(t *testing.T, corp *idp.Faulty, edit func(map[string]any)) string {
	t.Helper()
	c := corp.IDJAGClaims(issuer, "agent", resource, time.Now())
	if edit != nil {
		edit(c)
	}
	token, err := corp.SignJWT(c, jose.ES256, idp.IDJAGType)
	require.NoError(t, err)
	return token
}

func TestTheAdmissionPolicyDecidesWhichEnterpriseUsersGetTokens(t *testing.T) {
	corp := idp.NewFaulty(t, idp.FaultyOptions{Subject: "emp-1", Email: "alice@example.com"})
	// The enterprise IdP is not the upstream one: its users are admitted by
	// their mapped subject, never by an email it vouches for.
	h, auth := enterpriseHarness(t, corp, admitting(t, policy.AdmissionSpec{
		Subjects: []string{corp.Issuer + "#emp-1"}, Emails: []string{"mallory@example.com"},
	}))
	res, err := h.app.JWTBearer.Handle(t.Context(), ports.JWTBearerCommand{Client: auth, Assertion: h.idJAG(t, corp, nil)})
	require.NoError(t, err)
	require.Equal(t, corp.Issuer+"#emp-1", res.Subject)

	for name, edit := range map[string]func(map[string]any){
		"another user": func(c map[string]any) { c["sub"] = "emp-2" },
		"another user with an address the policy lists, verified by the partner IdP": func(c map[string]any) {
			c["sub"], c["email"], c["email_verified"] = "emp-3", "mallory@example.com", true
		},
	} {
		_, err = h.app.JWTBearer.Handle(t.Context(), ports.JWTBearerCommand{Client: auth, Assertion: h.idJAG(t, corp, edit)})
		require.Equal(t, domain.CodeInvalidGrant, domain.CodeOf(err), name)
		require.ErrorContains(t, err, "access policy", name)
	}
}

func TestAnUpstreamIDJAGKeepsWhatASignInKeeps(t *testing.T) {
	// The enterprise IdP is the upstream one: its ID-JAG's group claim
	// admits, as an ID token's would, within the same bounds.
	corp := idp.NewFaulty(t, idp.FaultyOptions{Subject: "emp-1", Email: "alice@example.com"})
	keys, err := assertion.NewIssuers(assertion.IssuerOptions{Issuers: []string{corp.Issuer}, Client: &http.Client{Timeout: 5 * time.Second}})
	require.NoError(t, err)
	h := newHarnessWith(t, harnessOptions{
		settings: func(s *usecase.Settings) {
			s.TrustedIDJAGIssuers, s.IDJAGClients = []string{corp.Issuer}, []string{"agent"}
		},
		opts:     []usecase.Option{usecase.WithClientAssertions(assertion.Verifier{}, nil), usecase.WithIDJAG(keys)},
		policies: admitting(t, policy.AdmissionSpec{Groups: []string{"eng"}}),
		idp:      func(p *scriptedIdP) { p.issuer = corp.Issuer },
	})
	h.clock.Set(time.Now())
	auth := h.machineClient(t, "agent", "")

	res, err := h.app.JWTBearer.Handle(t.Context(), ports.JWTBearerCommand{Client: auth, Assertion: h.idJAG(t, corp, func(c map[string]any) {
		c["groups"] = []any{"eng", 42.0}
		c["profile"] = map[string]any{"bio": "x"}
		c["bio"] = strings.Repeat("b", domain.MaxKeptClaimStringLength+1)
		c["acr"] = "silver"
	})})
	require.NoError(t, err)
	require.Equal(t, "emp-1", res.Subject, "the upstream's user keeps their subject")
	g, err := h.store.GetGrant(t.Context(), res.GrantID, time.Now())
	require.NoError(t, err)
	require.Equal(t, map[string]any{"groups": []any{"eng"}, "acr": "silver"}, g.Identity.Claims,
		"the group claim whole (strings only), small scalars, and nothing large")

	_, err = h.app.JWTBearer.Handle(t.Context(), ports.JWTBearerCommand{Client: auth, Assertion: h.idJAG(t, corp, func(c map[string]any) {
		c["groups"] = []any{"ops"}
	})})
	require.Equal(t, domain.CodeInvalidGrant, domain.CodeOf(err))
	require.ErrorContains(t, err, "access policy")

	tooMany := make([]any, policy.MaxGroupValues+1)
	for i := range tooMany {
		tooMany[i] = "eng"
	}
	_, err = h.app.JWTBearer.Handle(t.Context(), ports.JWTBearerCommand{Client: auth, Assertion: h.idJAG(t, corp, func(c map[string]any) {
		c["groups"] = tooMany
	})})
	require.Equal(t, domain.CodeInvalidGrant, domain.CodeOf(err), "a group claim that cannot be kept whole refuses the user, as at sign-in")
}

func TestAnIDJAGIsConsumedOnlyOnceItIsAccepted(t *testing.T) {
	corp := idp.NewFaulty(t, idp.FaultyOptions{})
	h, auth := enterpriseHarness(t, corp)
	jti := "jti-once"
	// A refused ID-JAG (here: a foreign resource parameter) does not burn
	// its jti: refusals must not let anyone who saw an ID-JAG spend it.
	token := h.idJAG(t, corp, func(c map[string]any) { c["jti"] = jti })
	_, err := h.app.JWTBearer.Handle(t.Context(), ports.JWTBearerCommand{Client: auth, Assertion: token, Resource: []string{"https://other.example/mcp"}})
	require.Equal(t, domain.CodeInvalidTarget, domain.CodeOf(err))
	_, err = h.app.JWTBearer.Handle(t.Context(), ports.JWTBearerCommand{Client: auth, Assertion: token})
	require.NoError(t, err)
	_, err = h.app.JWTBearer.Handle(t.Context(), ports.JWTBearerCommand{Client: auth, Assertion: token})
	require.Equal(t, domain.CodeInvalidGrant, domain.CodeOf(err))
}

func TestTheJWTBearerGrantIsOffUnlessConfigured(t *testing.T) {
	h := newHarness(t, nil)
	require.Nil(t, h.app.JWTBearer)
	// Configured without the ports it needs, the application refuses to
	// start rather than accept ID-JAGs it cannot verify.
	_, err := usecase.NewApplication(h.store, h.idp, nil, nil, h.clock, random{}, nil, nil, discardLogger(), usecase.Settings{
		TrustedIDJAGIssuers: []string{"https://idp.example"}, IDJAGClients: []string{"agent"},
	})
	require.ErrorContains(t, err, "jwt-bearer")
}

func TestAPrivateKeyJWTClientIsKnownByItsAssertionsSub(t *testing.T) {
	corp := idp.NewFaulty(t, idp.FaultyOptions{})
	h, _ := enterpriseHarness(t, corp)
	// The client registers its public key; the Faulty IdP's ES256 key plays
	// the client's key here.
	keys, err := assertion.NewIssuers(assertion.IssuerOptions{Issuers: []string{corp.Issuer}, Client: &http.Client{Timeout: 5 * time.Second}})
	require.NoError(t, err)
	set, err := keys.IssuerJWKS(t.Context(), corp.Issuer, false)
	require.NoError(t, err)
	require.NoError(t, h.store.CreateClient(t.Context(), domain.Client{
		ID: "keyed", TokenEndpointAuthMethod: domain.AuthPrivateKeyJWT, JWKS: set, Operator: true,
		GrantTypes: []string{domain.GrantClientCredentials}, CreatedAt: h.clock.Now(),
	}))
	sign := func(c map[string]any) string {
		token, err := corp.SignJWT(c, jose.ES256, "JWT")
		require.NoError(t, err)
		return token
	}
	claims := func(jti string) map[string]any {
		now := time.Now()
		return map[string]any{"iss": "keyed", "sub": "keyed", "aud": issuer, "jti": jti, "exp": now.Add(time.Minute).Unix()}
	}
	auth := func(clientID, jti string) ports.ClientAuth {
		return ports.ClientAuth{ClientID: clientID, Assertion: sign(claims(jti)), Method: domain.AuthPrivateKeyJWT}
	}
	_, err = h.machineToken(t, auth("", "j1"))
	require.NoError(t, err, "client_id may be left out: the assertion names the client")
	_, err = h.machineToken(t, auth("keyed", "j2"))
	require.NoError(t, err)
	_, err = h.machineToken(t, auth("agent", "j3"))
	require.Equal(t, domain.CodeInvalidClient, domain.CodeOf(err), "a client_id that is not the assertion's sub")
}

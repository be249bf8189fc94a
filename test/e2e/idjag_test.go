package e2e_test

import (
	"crypto/rand"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/test/idp"
)

// enterprise runs the proxy (in front of the real OP, with a gateway) and a
// second OpenID provider in-process as the enterprise IdP whose ID-JAGs it
// trusts; "agent" and "agent-keyed" may use the jwt-bearer grant.
func enterprise(t *testing.T) (*proxy, *idp.Faulty, *backend) {
	t.Helper()
	corp := idp.NewFaulty(t, idp.FaultyOptions{Subject: "emp-42", Email: "emp@corp.example", Name: "Em Ployee"})
	be := startBackend(t)
	p, _ := startWithOP(t, withEnv("MCP_UPSTREAM", be.URL), withEnv("SCOPES_SUPPORTED", "openid email mcp:tools"),
		withEnv("TRUSTED_ID_JAG_ISSUERS", corp.Issuer), withEnv("ID_JAG_CLIENTS", "agent,agent-keyed,agent-public"))
	return p, corp, be
}

// idJAG is an ID-JAG corp issues for its user to client, for the proxy.
func (p *proxy) idJAG(t *testing.T, corp *idp.Faulty, client string, edit ...func(map[string]any)) string {
	t.Helper()
	c := corp.IDJAGClaims(p.BaseURL, client, p.BaseURL+"/mcp", p.Clock.Now())
	for _, e := range edit {
		if e != nil {
			e(c)
		}
	}
	token, err := corp.SignJWT(c, jose.ES256, idp.IDJAGType)
	require.NoError(t, err)
	return token
}

// jwtBearer posts an ID-JAG for m (authenticated by its secret or key).
func (p *proxy) jwtBearer(t *testing.T, m *machine, assertion string, extra url.Values) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {domain.GrantJWTBearer}, "assertion": {assertion}}
	for k, v := range extra {
		form[k] = v
	}
	var status int
	var doc map[string]any
	switch {
	case m.Key != nil:
		status, _, doc = p.postToken(t, withAssertion(form, p.assertion(t, m)))
	case m.Secret != "":
		status, _, doc = p.postToken(t, form, m.ID, m.Secret)
	default:
		form.Set("client_id", m.ID)
		status, _, doc = p.postToken(t, form)
	}
	return status, doc
}

// enterpriseClient is a client the operator lets use the grant: a web
// application that authenticates with a secret or a key.
func (p *proxy) enterpriseClient(t *testing.T, id string, key bool) *machine {
	t.Helper()
	return p.operatorClient(t, id, "", key, func(c *domain.Client) {
		c.GrantTypes = []string{domain.GrantJWTBearer}
	})
}

func TestAnEnterpriseIDJAGBuysAnAccessTokenThatWorksAtTheGatewayOnce(t *testing.T) {
	p, corp, _ := enterprise(t)
	for _, key := range []bool{false, true} {
		id := map[bool]string{false: "agent", true: "agent-keyed"}[key]
		t.Run(id, func(t *testing.T) {
			m := p.enterpriseClient(t, id, key)
			assertion := p.idJAG(t, corp, m.ID, func(c map[string]any) { c["scope"] = "openid mcp:tools" })
			status, doc := p.jwtBearer(t, m, assertion, url.Values{"scope": {"mcp:tools email"}})
			require.Equal(t, http.StatusOK, status, doc)
			require.NotContains(t, doc, "refresh_token", "the enterprise IdP decides again at each ID-JAG")
			require.Equal(t, "mcp:tools", doc["scope"], "what was asked, within what the IdP delegated")
			access := doc["access_token"].(string)
			claims := tokenClaims(t, access)
			require.Equal(t, corp.Issuer+"#emp-42", claims["sub"], "an IdP other than the upstream one: its subjects are namespaced")
			require.Equal(t, m.ID, claims["client_id"])
			require.Equal(t, p.BaseURL+"/mcp", claims["aud"])
			require.NotContains(t, claims, "gty", "a person's token, not a machine's")

			session := p.mcpSession(t, access)
			res, err := session.CallTool(t.Context(), &mcp.CallToolParams{Name: "whoami"})
			require.NoError(t, err)
			out := res.StructuredContent.(map[string]any)
			require.Equal(t, corp.Issuer+"#emp-42", out["subject"])
			require.Empty(t, out["email"], "a partner IdP's email never counts as verified, so it is not forwarded")
			require.Empty(t, out["client"])

			status, doc = p.jwtBearer(t, m, assertion, nil)
			require.Equal(t, http.StatusBadRequest, status)
			require.Equal(t, "invalid_grant", doc["error"])
			require.Contains(t, doc["error_description"], "already used", "a replayed jti is refused")

			// The grant is revocable like any other.
			require.NoError(t, p.App.Store().RevokeGrant(t.Context(), claims["gid"].(string)))
			resp, _ := bearerPost(t, p, access, nil, nil)
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		})
	}
}

func TestEveryIDJAGRuleRefusesTheGrant(t *testing.T) {
	p, corp, _ := enterprise(t)
	untrusted := idp.NewFaulty(t, idp.FaultyOptions{Subject: "emp-42"})
	m := p.enterpriseClient(t, "agent", false)
	now := p.Clock.Now()
	signed := func(edit func(map[string]any)) string { return p.idJAG(t, corp, m.ID, edit) }
	typed := func(typ string) string {
		token, err := corp.SignJWT(corp.IDJAGClaims(p.BaseURL, m.ID, p.BaseURL+"/mcp", now), jose.ES256, typ)
		require.NoError(t, err)
		return token
	}
	rogue, err := corp.SignRogueJWT(corp.IDJAGClaims(p.BaseURL, m.ID, p.BaseURL+"/mcp", now), idp.IDJAGType)
	require.NoError(t, err)
	none, err := idp.UnsignedJWT(corp.IDJAGClaims(p.BaseURL, m.ID, p.BaseURL+"/mcp", now))
	require.NoError(t, err)
	foreign, err := untrusted.SignJWT(untrusted.IDJAGClaims(p.BaseURL, m.ID, p.BaseURL+"/mcp", now), jose.ES256, idp.IDJAGType)
	require.NoError(t, err)
	// An untrusted IdP naming the trusted one as its issuer: the trusted
	// issuer's keys refuse the signature.
	impostor, err := untrusted.SignJWT(corp.IDJAGClaims(p.BaseURL, m.ID, p.BaseURL+"/mcp", now), jose.ES256, idp.IDJAGType)
	require.NoError(t, err)
	replayed := signed(nil)
	status, doc := p.jwtBearer(t, m, replayed, nil)
	require.Equal(t, http.StatusOK, status, doc)

	for _, tc := range []struct{ name, assertion, rule string }{
		{"a signature by a key the issuer does not publish", rogue, "signature is not valid"},
		{"alg none", none, "not a well-formed JWT"},
		{"typ JWT", typed("JWT"), "typ is not"},
		{"an untrusted issuer", foreign, "issuer is not trusted"},
		{"an impostor of the trusted issuer", impostor, "signature is not valid"},
		{"aud of another server", signed(func(c map[string]any) { c["aud"] = "https://other.example" }), "aud is not"},
		{"aud of our token endpoint", signed(func(c map[string]any) { c["aud"] = p.BaseURL + "/token" }), "aud is not"},
		{"client_id of another client", signed(func(c map[string]any) { c["client_id"] = "agent-keyed" }), "client_id is not the authenticated client"},
		{"no client_id", signed(func(c map[string]any) { delete(c, "client_id") }), "client_id is missing"},
		{"no resource", signed(func(c map[string]any) { delete(c, "resource") }), "resource is missing"},
		{"another resource", signed(func(c map[string]any) { c["resource"] = "https://other.example/mcp" }), "resource is not this MCP server"},
		{"expired", signed(func(c map[string]any) {
			c["iat"], c["exp"] = now.Add(-5*time.Minute).Unix(), now.Add(-2*time.Minute).Unix()
		}), "expired"},
		{"issued in the future", signed(func(c map[string]any) {
			c["iat"], c["exp"] = now.Add(3*time.Minute).Unix(), now.Add(5*time.Minute).Unix()
		}), "iat is in the future"},
		{"living too long", signed(func(c map[string]any) { c["exp"] = now.Add(time.Hour).Unix() }), "exp is more than"},
		{"no iat", signed(func(c map[string]any) { delete(c, "iat") }), "iat is missing"},
		{"no jti", signed(func(c map[string]any) { delete(c, "jti") }), "jti is missing"},
		{"no sub", signed(func(c map[string]any) { delete(c, "sub") }), "sub is missing"},
		{"a scope this server does not know", signed(func(c map[string]any) { c["scope"] = "mcp:tools admin" }), "does not know"},
		{"a replayed jti", replayed, "already used"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, doc := p.jwtBearer(t, m, tc.assertion, nil)
			require.Equal(t, http.StatusBadRequest, status, doc)
			require.Equal(t, "invalid_grant", doc["error"])
			require.Contains(t, doc["error_description"], tc.rule)
		})
	}

	t.Run("a resource parameter naming another server", func(t *testing.T) {
		status, doc := p.jwtBearer(t, m, signed(nil), url.Values{"resource": {"https://other.example/mcp"}})
		require.Equal(t, http.StatusBadRequest, status)
		require.Equal(t, "invalid_target", doc["error"])
	})
	t.Run("a client the operator did not list", func(t *testing.T) {
		other := p.enterpriseClient(t, "unlisted", false)
		status, doc := p.jwtBearer(t, other, p.idJAG(t, corp, other.ID), nil)
		require.Equal(t, http.StatusBadRequest, status)
		require.Equal(t, "unauthorized_client", doc["error"])
	})
	t.Run("a listed client that is public", func(t *testing.T) {
		public := p.operatorClient(t, "agent-public", "", false, func(c *domain.Client) {
			c.TokenEndpointAuthMethod, c.SecretHash = domain.AuthNone, nil
		})
		public.Secret = ""
		status, doc := p.jwtBearer(t, public, p.idJAG(t, corp, public.ID), nil)
		require.Equal(t, http.StatusBadRequest, status)
		require.Equal(t, "unauthorized_client", doc["error"])
	})
	t.Run("a client that fails authentication", func(t *testing.T) {
		status, doc := p.jwtBearer(t, &machine{ID: m.ID, Secret: "wrong"}, signed(nil), nil)
		require.Equal(t, http.StatusUnauthorized, status)
		require.Equal(t, "invalid_client", doc["error"])
	})
	t.Run("no assertion", func(t *testing.T) {
		status, doc := p.jwtBearer(t, m, "", nil)
		require.Equal(t, http.StatusBadRequest, status)
		require.Equal(t, "invalid_request", doc["error"])
	})

	status, _, meta, _ := getJSON(t, p.BaseURL+"/.well-known/oauth-authorization-server")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, meta["grant_types_supported"], domain.GrantJWTBearer)
	require.Equal(t, []any{"urn:ietf:params:oauth:grant-profile:id-jag"}, meta["authorization_grant_profiles_supported"])
}

func TestAnIDJAGOfTheUpstreamIdPGivesTheSubjectABrowserLoginGives(t *testing.T) {
	be := startBackend(t)
	// The upstream IdP itself issues the ID-JAGs: its issuer is the
	// discovery URL's prefix.
	trustUpstream := func(env map[string]string) {
		env["OIDC_PROXY_TRUSTED_ID_JAG_ISSUERS"] = strings.TrimSuffix(env["OIDC_PROXY_CONFIG_URL"], "/.well-known/openid-configuration")
		env["OIDC_PROXY_ID_JAG_CLIENTS"] = "agent"
	}
	p, f := startWithFaulty(t, withEnv("MCP_UPSTREAM", be.URL), trustUpstream)

	browserToken, _ := p.login(t, p.register(t, nil))
	m := p.enterpriseClient(t, "agent", false)
	status, doc := p.jwtBearer(t, m, p.idJAG(t, f, m.ID, func(c map[string]any) { c["jti"] = rand.Text() }), nil)
	require.Equal(t, http.StatusOK, status, doc)

	var subjects []string
	for _, tok := range []string{browserToken.AccessToken, doc["access_token"].(string)} {
		out, err := p.mcpSession(t, tok).CallTool(t.Context(), &mcp.CallToolParams{Name: "whoami"})
		require.NoError(t, err)
		subjects = append(subjects, out.StructuredContent.(map[string]any)["subject"].(string))
	}
	require.Equal(t, []string{f.Subject, f.Subject}, subjects, "one person, one identity, however they arrived")
}

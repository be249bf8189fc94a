package e2e_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/oidcproxy/oidcproxy/domain"
)

// machine is a client an operator created for a daemon or a CI job: it
// authenticates with a secret or with a key, and uses client_credentials.
type machine struct {
	ID, Secret string
	Key        *ecdsa.PrivateKey
	KeyID      string
}

// operatorClient stores a machine client directly, as the admin API would
// (`oidcproxy clients create`): Operator, confidential, client_credentials
// only, with scope. With key it authenticates with private_key_jwt (its
// public key registered inline), otherwise with client_secret_basic.
func (p *proxy) operatorClient(t *testing.T, id, scope string, key bool, edit ...func(*domain.Client)) *machine {
	t.Helper()
	m := &machine{ID: id}
	c := domain.Client{
		ID:              id,
		Name:            "machine " + id,
		ApplicationType: domain.ApplicationWeb,
		GrantTypes:      []string{domain.GrantClientCredentials},
		Scope:           scope,
		Operator:        true,
		CreatedAt:       p.Clock.Now(),
	}
	if key {
		var err error
		m.Key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		m.KeyID = "key-1"
		c.TokenEndpointAuthMethod = domain.AuthPrivateKeyJWT
		c.JWKS = jwks(t, jose.JSONWebKey{Key: m.Key.Public(), KeyID: m.KeyID, Algorithm: "ES256", Use: "sig"})
	} else {
		m.Secret = rand.Text()
		c.TokenEndpointAuthMethod = domain.AuthClientSecretBasic
		c.SecretHash = []byte(domain.HashToken(m.Secret))
	}
	for _, e := range edit {
		e(&c)
	}
	require.NoError(t, p.App.Store().CreateClient(t.Context(), c))
	return m
}

func jwks(t *testing.T, keys ...jose.JSONWebKey) []byte {
	t.Helper()
	raw, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	require.NoError(t, err)
	return raw
}

// assertionClaims are the claims of a good client assertion for clientID at
// the proxy.
func (p *proxy) assertionClaims(clientID string) map[string]any {
	now := p.Clock.Now()
	return map[string]any{
		"iss": clientID, "sub": clientID, "aud": p.BaseURL, "jti": rand.Text(),
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
	}
}

// signJWT signs claims with key (ES256) under kid.
func signJWT(t *testing.T, key *ecdsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	require.NoError(t, err)
	token, err := jwt.Signed(signer).Claims(claims).Serialize()
	require.NoError(t, err)
	return token
}

// assertion is a fresh, good client assertion of m.
func (p *proxy) assertion(t *testing.T, m *machine) string {
	t.Helper()
	return signJWT(t, m.Key, m.KeyID, p.assertionClaims(m.ID))
}

// withAssertion adds private_key_jwt client authentication to a form.
func withAssertion(form url.Values, assertion string) url.Values {
	form.Set("client_assertion_type", domain.ClientAssertionType)
	form.Set("client_assertion", assertion)
	return form
}

// machineToken gets a token with client_credentials: x/oauth2's own client
// for a secret (client_secret_basic), the form by hand for a key.
func (p *proxy) machineToken(t *testing.T, m *machine, scope ...string) *oauth2.Token {
	t.Helper()
	if m.Key == nil {
		conf := clientcredentials.Config{
			ClientID: m.ID, ClientSecret: m.Secret, TokenURL: p.BaseURL + "/token", Scopes: scope,
			AuthStyle:      oauth2.AuthStyleInHeader,
			EndpointParams: url.Values{"resource": {p.BaseURL + "/mcp"}},
		}
		tok, err := conf.Token(t.Context())
		require.NoError(t, err)
		return tok
	}
	form := withAssertion(url.Values{"grant_type": {"client_credentials"}, "resource": {p.BaseURL + "/mcp"}}, p.assertion(t, m))
	if len(scope) > 0 {
		form.Set("scope", strings.Join(scope, " "))
	}
	status, _, doc := p.postToken(t, form)
	require.Equal(t, http.StatusOK, status, doc)
	require.NotContains(t, doc, "refresh_token")
	return &oauth2.Token{AccessToken: doc["access_token"].(string), TokenType: doc["token_type"].(string)}
}

// tokenClaims decodes an access token's payload without verifying it (the
// proxy verified it; the test reads what a resource server would).
func tokenClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	require.Len(t, parts, 3)
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var c map[string]any
	require.NoError(t, json.Unmarshal(raw, &c))
	return c
}

// mcpSession connects the official MCP Go SDK to the gateway with a bearer
// token the caller already has.
func (p *proxy) mcpSession(t *testing.T, token string) *mcp.ClientSession {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "machine", Version: "1"}, nil)
	httpClient := oauth2.NewClient(t.Context(), oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token, TokenType: "Bearer"}))
	session, err := client.Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: p.BaseURL + "/mcp", HTTPClient: httpClient}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = session.Close() })
	return session
}

func TestAMachineClientCallsAToolWithClientCredentialsUsingEitherAuthMethod(t *testing.T) {
	be := startBackend(t)
	p, _ := startWithOP(t, withEnv("MCP_UPSTREAM", be.URL), withEnv("SCOPES_SUPPORTED", "openid mcp:tools mcp:admin"))
	for _, key := range []bool{false, true} {
		name := map[bool]string{false: "client_secret_basic", true: "private_key_jwt"}[key]
		t.Run(name, func(t *testing.T) {
			m := p.operatorClient(t, "ci-"+name, "mcp:tools mcp:admin", key)
			tok := p.machineToken(t, m, "mcp:tools")

			c := tokenClaims(t, tok.AccessToken)
			require.Equal(t, m.ID, c["sub"], "a machine's token names the client as its subject")
			require.Equal(t, m.ID, c["client_id"])
			require.Equal(t, "client_credentials", c["gty"], "and says it is a machine's")
			require.Equal(t, "mcp:tools", c["scope"])
			require.Equal(t, p.BaseURL+"/mcp", c["aud"])
			for _, user := range []string{"email", "name", "preferred_username"} {
				require.NotContains(t, c, user)
			}

			session := p.mcpSession(t, tok.AccessToken)
			res, err := session.CallTool(t.Context(), &mcp.CallToolParams{Name: "whoami"})
			require.NoError(t, err)
			require.False(t, res.IsError)
			out := res.StructuredContent.(map[string]any)
			require.Equal(t, m.ID, out["client"], "the backend learns which machine calls")
			require.Empty(t, out["subject"], "and no user")
			require.Empty(t, out["email"])
		})
	}
	for _, h := range be.headers() {
		require.Empty(t, h.Get("X-Forwarded-User"))
		require.Empty(t, h.Get("Authorization"))
	}
}

func TestAClientMayNotPassForAMachineThroughTheForwardedHeader(t *testing.T) {
	be := startBackend(t)
	p, _ := startWithOP(t, withEnv("MCP_UPSTREAM", be.URL))
	c := p.register(t, nil)
	tok, _ := p.login(t, c)
	resp, _ := bearerPost(t, p, tok.AccessToken, nil, http.Header{
		"X-Forwarded-Client": {"ci-forged"}, "X_Forwarded_Client": {"ci-forged"},
	})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	for _, h := range be.headers() {
		require.Empty(t, h.Get("X-Forwarded-Client"), "a person's request never carries a machine header")
		require.Empty(t, h.Values("X_Forwarded_Client"))
		require.NotEmpty(t, h.Get("X-Forwarded-User"))
	}
}

func TestClientCredentialsIsRefusedToClientsThatMayNotUseIt(t *testing.T) {
	p, _ := startWithOP(t, withEnv("SCOPES_SUPPORTED", "openid mcp:tools mcp:admin"))
	grant := func(extra url.Values) url.Values {
		v := url.Values{"grant_type": {"client_credentials"}}
		for k, vs := range extra {
			v[k] = vs
		}
		return v
	}

	t.Run("a public client", func(t *testing.T) {
		c := p.register(t, nil)
		status, _, doc := p.postToken(t, grant(url.Values{"client_id": {c.ID}}))
		require.Equal(t, http.StatusBadRequest, status)
		require.Equal(t, "unauthorized_client", doc["error"])
	})
	t.Run("a confidential client that registered itself", func(t *testing.T) {
		c := p.register(t, map[string]any{"token_endpoint_auth_method": "client_secret_basic", "redirect_uris": []string{"https://app.example/cb"}, "application_type": "web"})
		status, _, doc := p.postToken(t, grant(nil), c.ID, c.Secret)
		require.Equal(t, http.StatusBadRequest, status)
		require.Equal(t, "unauthorized_client", doc["error"])
	})
	t.Run("registering the grant at /register", func(t *testing.T) {
		status, doc := p.postJSON(t, "/register", map[string]any{
			"redirect_uris": []string{"http://127.0.0.1:53682/callback"},
			"grant_types":   []string{"authorization_code", "client_credentials"},
		})
		require.Equal(t, http.StatusBadRequest, status)
		require.Equal(t, "invalid_client_metadata", doc["error"])
	})
	t.Run("an operator's client without the grant type", func(t *testing.T) {
		m := p.operatorClient(t, "web-app", "mcp:tools", false, func(c *domain.Client) {
			c.GrantTypes = []string{domain.GrantAuthorizationCode}
		})
		status, _, doc := p.postToken(t, grant(nil), m.ID, m.Secret)
		require.Equal(t, http.StatusBadRequest, status)
		require.Equal(t, "unauthorized_client", doc["error"])
	})
	t.Run("a scope beyond the client's", func(t *testing.T) {
		m := p.operatorClient(t, "ci-narrow", "mcp:tools", false)
		status, _, doc := p.postToken(t, grant(url.Values{"scope": {"mcp:tools mcp:admin"}}), m.ID, m.Secret)
		require.Equal(t, http.StatusBadRequest, status)
		require.Equal(t, "invalid_scope", doc["error"])
		status, _, doc = p.postToken(t, grant(nil), m.ID, m.Secret)
		require.Equal(t, http.StatusOK, status, doc)
		require.Equal(t, "mcp:tools", doc["scope"], "no scope asked: the client's own")
	})
	t.Run("another resource", func(t *testing.T) {
		m := p.operatorClient(t, "ci-elsewhere", "mcp:tools", false)
		status, _, doc := p.postToken(t, grant(url.Values{"resource": {"https://other.example/mcp"}}), m.ID, m.Secret)
		require.Equal(t, http.StatusBadRequest, status)
		require.Equal(t, "invalid_target", doc["error"])
	})
	t.Run("a wrong secret", func(t *testing.T) {
		m := p.operatorClient(t, "ci-wrong", "mcp:tools", false)
		status, _, doc := p.postToken(t, grant(nil), m.ID, "not-"+m.Secret)
		require.Equal(t, http.StatusUnauthorized, status)
		require.Equal(t, "invalid_client", doc["error"])
	})
}

func TestRevokingAMachineGrantEndsItsTokensAtTheGatewayAtOnce(t *testing.T) {
	be := startBackend(t)
	p, _ := startWithOP(t, withEnv("MCP_UPSTREAM", be.URL))
	m := p.operatorClient(t, "daemon", "openid", true)
	first := p.machineToken(t, m)
	second := p.machineToken(t, m)
	gid := tokenClaims(t, first.AccessToken)["gid"].(string)
	require.Equal(t, gid, tokenClaims(t, second.AccessToken)["gid"], "the client's tokens share its live machine grant")
	resp, _ := bearerPost(t, p, first.AccessToken, nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// What `oidcproxy grants revoke --client daemon` does.
	require.NoError(t, p.App.Store().RevokeGrant(t.Context(), gid))
	for _, tok := range []*oauth2.Token{first, second} {
		resp, _ = bearerPost(t, p, tok.AccessToken, nil, nil)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	}
	third := p.machineToken(t, m)
	require.NotEqual(t, gid, tokenClaims(t, third.AccessToken)["gid"], "a new grant")
	resp, _ = bearerPost(t, p, third.AccessToken, nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// The client can end its own tokens too (RFC 7009).
	status, _, _ := p.postFormJSON(t, "/revoke", withAssertion(url.Values{"token": {third.AccessToken}}, p.assertion(t, m)))
	require.Equal(t, http.StatusOK, status)
	resp, _ = bearerPost(t, p, third.AccessToken, nil, nil)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

func TestPrivateKeyJWTRefusesEveryBadAssertion(t *testing.T) {
	p, _ := startWithOP(t)
	m := p.operatorClient(t, "keyed", "openid", true)
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	pubDER, err := x509.MarshalPKIXPublicKey(m.Key.Public())
	require.NoError(t, err)
	enc := base64.RawURLEncoding

	cc := url.Values{"grant_type": {"client_credentials"}}
	token := func(assertion string) (int, map[string]any) {
		form := withAssertion(url.Values{}, assertion)
		for k, v := range cc {
			form[k] = v
		}
		status, _, doc := p.postToken(t, form)
		return status, doc
	}
	with := func(edit func(map[string]any)) map[string]any {
		c := p.assertionClaims(m.ID)
		edit(c)
		return c
	}

	status, doc := token(p.assertion(t, m))
	require.Equal(t, http.StatusOK, status, doc)

	replayed := p.assertion(t, m)
	status, _ = token(replayed)
	require.Equal(t, http.StatusOK, status)

	hmac := func() string {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: pubDER}, (&jose.SignerOptions{}).WithType("JWT"))
		require.NoError(t, err)
		s, err := jwt.Signed(signer).Claims(p.assertionClaims(m.ID)).Serialize()
		require.NoError(t, err)
		return s
	}
	none := func() string {
		payload, err := json.Marshal(p.assertionClaims(m.ID))
		require.NoError(t, err)
		return enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc.EncodeToString(payload) + "."
	}
	for _, tc := range []struct{ name, assertion string }{
		{"a wrong key", signJWT(t, other, m.KeyID, p.assertionClaims(m.ID))},
		{"a wrong key without a kid", signJWT(t, other, "", p.assertionClaims(m.ID))},
		{"an expired assertion", signJWT(t, m.Key, m.KeyID, with(func(c map[string]any) {
			c["iat"] = p.Clock.Now().Add(-5 * time.Minute).Unix()
			c["exp"] = p.Clock.Now().Add(-2 * time.Minute).Unix()
		}))},
		{"an assertion living too long", signJWT(t, m.Key, m.KeyID, with(func(c map[string]any) {
			c["exp"] = p.Clock.Now().Add(time.Hour).Unix()
		}))},
		{"a replayed jti", replayed},
		{"alg none", none()},
		{"HS256 with the public key as the secret", hmac()},
		{"a wrong aud", signJWT(t, m.Key, m.KeyID, with(func(c map[string]any) { c["aud"] = "https://other.example" }))},
		{"two audiences", signJWT(t, m.Key, m.KeyID, with(func(c map[string]any) {
			c["aud"] = []string{p.BaseURL, "https://other.example"}
		}))},
		{"iss of another client", signJWT(t, m.Key, m.KeyID, with(func(c map[string]any) { c["iss"] = "someone" }))},
		{"no jti", signJWT(t, m.Key, m.KeyID, with(func(c map[string]any) { delete(c, "jti") }))},
		{"no exp", signJWT(t, m.Key, m.KeyID, with(func(c map[string]any) { delete(c, "exp") }))},
		{"garbage", "not-a-jwt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, doc := token(tc.assertion)
			require.Equal(t, http.StatusUnauthorized, status, doc)
			require.Equal(t, "invalid_client", doc["error"])
		})
	}

	t.Run("the token endpoint URL as the audience", func(t *testing.T) {
		status, doc := token(signJWT(t, m.Key, m.KeyID, with(func(c map[string]any) { c["aud"] = p.BaseURL + "/token" })))
		require.Equal(t, http.StatusOK, status, doc)
	})
	t.Run("an assertion with a secret too", func(t *testing.T) {
		form := withAssertion(url.Values{"grant_type": {"client_credentials"}, "client_secret": {"x"}}, p.assertion(t, m))
		status, _, doc := p.postToken(t, form)
		require.Equal(t, http.StatusBadRequest, status)
		require.Equal(t, "invalid_request", doc["error"])
	})
	t.Run("a key client presenting a secret", func(t *testing.T) {
		status, _, doc := p.postToken(t, url.Values{"grant_type": {"client_credentials"}}, m.ID, "guess")
		require.Equal(t, http.StatusUnauthorized, status)
		require.Equal(t, "invalid_client", doc["error"])
	})
	t.Run("a secret client presenting an assertion", func(t *testing.T) {
		s := p.operatorClient(t, "secretive", "openid", false)
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		status, doc := token(signJWT(t, key, "k", p.assertionClaims(s.ID)))
		require.Equal(t, http.StatusUnauthorized, status)
		require.Equal(t, "invalid_client", doc["error"])
	})
	t.Run("an unknown assertion type", func(t *testing.T) {
		form := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {"urn:example:saml"}, "client_assertion": {p.assertion(t, m)}}
		status, _, doc := p.postToken(t, form)
		require.Equal(t, http.StatusUnauthorized, status)
		require.Equal(t, "invalid_client", doc["error"])
	})
}

func TestPrivateKeyJWTAuthenticatesAtRevocationAndIntrospection(t *testing.T) {
	p, _ := startWithOP(t)
	m := p.operatorClient(t, "keyed", "openid", true)
	tok := p.machineToken(t, m)

	status, _, doc := p.postFormJSON(t, "/introspect", withAssertion(url.Values{"token": {tok.AccessToken}}, p.assertion(t, m)))
	require.Equal(t, http.StatusOK, status, doc)
	require.Equal(t, true, doc["active"])
	require.Equal(t, m.ID, doc["sub"])

	status, _, doc = p.postFormJSON(t, "/introspect", withAssertion(url.Values{"token": {tok.AccessToken}}, "bad"))
	require.Equal(t, http.StatusUnauthorized, status)
	require.Equal(t, "invalid_client", doc["error"])

	status, _, _ = p.postFormJSON(t, "/revoke", withAssertion(url.Values{"token": {tok.AccessToken}}, p.assertion(t, m)))
	require.Equal(t, http.StatusOK, status)
	status, _, doc = p.postFormJSON(t, "/introspect", withAssertion(url.Values{"token": {tok.AccessToken}}, p.assertion(t, m)))
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, false, doc["active"])
}

// serveRaw publishes body as application/json at path of the document host.
func (h *docHost) serveRaw(path, body string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.docs[path] = body
	return h.URL + path
}

func TestKeysAreFetchedFromARegisteredJWKSURIAndARotationIsPickedUp(t *testing.T) {
	p, docs := startWithDocHost(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	uri := docs.serveRaw("/keys.json", string(jwks(t, jose.JSONWebKey{Key: key.Public(), KeyID: "k1", Use: "sig"})))

	status, reg := p.postJSON(t, "/register", map[string]any{
		"redirect_uris": []string{"https://app.example/cb"}, "application_type": "web",
		"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": uri,
	})
	require.Equal(t, http.StatusCreated, status, reg)
	require.NotContains(t, reg, "client_secret", "its keys are its credentials")
	require.Equal(t, uri, reg["jwks_uri"])
	id := reg["client_id"].(string)

	introspect := func(key *ecdsa.PrivateKey, kid string) int {
		status, _, _ := p.postFormJSON(t, "/introspect", withAssertion(url.Values{"token": {"x"}}, signJWT(t, key, kid, p.assertionClaims(id))))
		return status
	}
	require.Equal(t, http.StatusOK, introspect(key, "k1"))
	require.Equal(t, 1, docs.Hits("/keys.json"))
	require.Equal(t, http.StatusOK, introspect(key, "k1"))
	require.Equal(t, 1, docs.Hits("/keys.json"), "cached")

	// The client rotates: a new key under a new kid.
	next, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	docs.serveRaw("/keys.json", string(jwks(t, jose.JSONWebKey{Key: next.Public(), KeyID: "k2", Use: "sig"})))
	require.Equal(t, http.StatusUnauthorized, introspect(next, "k2"), "too soon after the last fetch to fetch again")
	p.Clock.Advance(time.Minute)
	require.Equal(t, http.StatusOK, introspect(next, "k2"), "an unknown kid fetches the set again")
	require.Equal(t, http.StatusUnauthorized, introspect(key, "k1"), "the old key is gone")
}

func TestADocumentClientAuthenticatesWithTheKeysOfItsDocument(t *testing.T) {
	p, docs := startWithDocHost(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	doc := cimdDocument()
	doc["token_endpoint_auth_method"] = "private_key_jwt"
	doc["jwks"] = json.RawMessage(jwks(t, jose.JSONWebKey{Key: key.Public(), KeyID: "k1", Use: "sig"}))
	id := docs.publish(t, "/agent.json", doc)

	status, _, body := p.postFormJSON(t, "/introspect", withAssertion(url.Values{"token": {"x"}}, signJWT(t, key, "k1", p.assertionClaims(id))))
	require.Equal(t, http.StatusOK, status, body)

	keyURI := docs.serveRaw("/agent-keys.json", string(jwks(t, jose.JSONWebKey{Key: key.Public(), KeyID: "k1", Use: "sig"})))
	doc = cimdDocument()
	doc["token_endpoint_auth_method"] = "private_key_jwt"
	doc["jwks_uri"] = keyURI
	id = docs.publish(t, "/agent-by-uri.json", doc)
	status, _, body = p.postFormJSON(t, "/introspect", withAssertion(url.Values{"token": {"x"}}, signJWT(t, key, "k1", p.assertionClaims(id))))
	require.Equal(t, http.StatusOK, status, body)
	require.Equal(t, 1, docs.Hits("/agent-keys.json"))

	// Without an assertion the document client cannot pass for a public one.
	status, _, body = p.postFormJSON(t, "/introspect", url.Values{"token": {"x"}, "client_id": {id}})
	require.Equal(t, http.StatusUnauthorized, status, body)
}

func TestRegistrationOfKeysIsValidated(t *testing.T) {
	p, _ := startWithOP(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	publicSet := json.RawMessage(jwks(t, jose.JSONWebKey{Key: key.Public(), KeyID: "k1"}))
	base := func(extra map[string]any) map[string]any {
		m := map[string]any{"redirect_uris": []string{"https://app.example/cb"}, "application_type": "web", "token_endpoint_auth_method": "private_key_jwt"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	status, doc := p.postJSON(t, "/register", base(map[string]any{"jwks": publicSet}))
	require.Equal(t, http.StatusCreated, status, doc)
	require.NotContains(t, doc, "client_secret")
	require.NotNil(t, doc["jwks"])

	for name, extra := range map[string]map[string]any{
		"both jwks and jwks_uri":     {"jwks": publicSet, "jwks_uri": "https://app.example/keys.json"},
		"neither":                    {},
		"an http jwks_uri":           {"jwks_uri": "http://app.example/keys.json"},
		"a jwks_uri with no path":    {"jwks_uri": "https://app.example"},
		"an IP-literal jwks_uri":     {"jwks_uri": "https://10.0.0.1/keys.json"},
		"a jwks_uri with a fragment": {"jwks_uri": "https://app.example/keys.json#k"},
		"a private key":              {"jwks": json.RawMessage(jwks(t, jose.JSONWebKey{Key: key, KeyID: "k1"}))},
		"a symmetric key":            {"jwks": json.RawMessage(`{"keys":[{"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}]}`)},
		"jwks that is no set":        {"jwks": "keys"},
	} {
		status, doc := p.postJSON(t, "/register", base(extra))
		require.Equal(t, http.StatusBadRequest, status, name)
		require.Equal(t, "invalid_client_metadata", doc["error"], name)
	}
}

func TestTheMetadataSaysExactlyWhichClientAuthenticationAndGrantsWork(t *testing.T) {
	p, _ := startWithOP(t)
	status, _, meta, _ := getJSON(t, p.BaseURL+"/.well-known/oauth-authorization-server")
	require.Equal(t, http.StatusOK, status)
	methods := []any{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"}
	algs := []any{"ES256", "RS256", "EdDSA"}
	require.Equal(t, methods, meta["token_endpoint_auth_methods_supported"])
	require.Equal(t, algs, meta["token_endpoint_auth_signing_alg_values_supported"])
	require.Equal(t, methods, meta["revocation_endpoint_auth_methods_supported"])
	require.Equal(t, algs, meta["revocation_endpoint_auth_signing_alg_values_supported"])
	require.Equal(t, []any{"client_secret_basic", "client_secret_post", "private_key_jwt", "bearer"}, meta["introspection_endpoint_auth_methods_supported"])
	require.Equal(t, algs, meta["introspection_endpoint_auth_signing_alg_values_supported"])
	require.Equal(t, []any{"authorization_code", "refresh_token", "client_credentials"}, meta["grant_types_supported"],
		"jwt-bearer only when enterprise-managed authorization is configured")
	require.NotContains(t, meta, "authorization_grant_profiles_supported")
}

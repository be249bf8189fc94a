package e2e_test

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/require"
)

func getJSON(t *testing.T, u string) (int, http.Header, map[string]any, string) {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var doc map[string]any
	if resp.StatusCode == http.StatusOK {
		require.NoError(t, json.Unmarshal(raw, &doc), string(raw))
	}
	return resp.StatusCode, resp.Header, doc, string(raw)
}

func TestMetadataIsServedAtEveryWellKnownAlias(t *testing.T) {
	p, _ := startWithOP(t)
	var first string
	for _, path := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		status, h, doc, raw := getJSON(t, p.BaseURL+path)
		require.Equal(t, http.StatusOK, status, path)
		require.Equal(t, "*", h.Get("Access-Control-Allow-Origin"))
		require.Equal(t, p.BaseURL, doc["issuer"], "issuer byte-equal to the configuration")
		require.Equal(t, []any{"S256"}, doc["code_challenge_methods_supported"])
		require.Equal(t, true, doc["authorization_response_iss_parameter_supported"])
		for _, k := range []string{"authorization_endpoint", "token_endpoint", "registration_endpoint", "revocation_endpoint", "jwks_uri"} {
			require.NotEmpty(t, doc[k], k)
		}
		for k, v := range doc {
			require.NotNil(t, v, "optional field %s must be omitted, not null", k)
		}
		if first == "" {
			first = raw
		}
		require.JSONEq(t, first, raw, "both documents are the same")
	}

	status, h, doc, _ := getJSON(t, p.BaseURL+"/.well-known/oauth-protected-resource/mcp")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "*", h.Get("Access-Control-Allow-Origin"))
	require.Equal(t, p.BaseURL+"/mcp", doc["resource"])
	require.Equal(t, []any{p.BaseURL}, doc["authorization_servers"])
	require.Equal(t, []any{"header"}, doc["bearer_methods_supported"])

	// CORS preflight on the token endpoint, never on /authorize.
	req, _ := http.NewRequest(http.MethodOptions, p.BaseURL+"/token", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))
	resp, err = http.Get(p.BaseURL + "/authorize")
	require.NoError(t, err)
	resp.Body.Close()
	require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))
}

func TestAnIssuerWithAPathGetsPathAwareMetadata(t *testing.T) {
	p, _ := startWithOP(t, func(env map[string]string) {
		env["OIDC_PROXY_ISSUER_URL"] = env["OIDC_PROXY_BASE_URL"] + "/tenant-a"
	})
	for _, path := range []string{
		"/.well-known/oauth-authorization-server/tenant-a",
		"/.well-known/openid-configuration/tenant-a",
		"/tenant-a/.well-known/openid-configuration",
		"/.well-known/oauth-authorization-server",
	} {
		status, _, doc, _ := getJSON(t, p.BaseURL+path)
		require.Equal(t, http.StatusOK, status, path)
		require.Equal(t, p.BaseURL+"/tenant-a", doc["issuer"], path)
	}
}

func TestAccessTokensAreES256JWTsVerifiableWithTheJWKS(t *testing.T) {
	p, op := startWithOP(t)
	c := p.register(t, nil)
	tok, _ := p.login(t, c)

	parsed, err := jwt.ParseSigned(tok.AccessToken, []jose.SignatureAlgorithm{jose.ES256})
	require.NoError(t, err)
	require.Equal(t, "at+jwt", parsed.Headers[0].ExtraHeaders["typ"])

	status, _, _, raw := getJSON(t, p.BaseURL+"/jwks.json")
	require.Equal(t, http.StatusOK, status)
	var set jose.JSONWebKeySet
	require.NoError(t, json.Unmarshal([]byte(raw), &set))
	keys := set.Key(parsed.Headers[0].KeyID)
	require.Len(t, keys, 1)

	var claims struct {
		jwt.Claims
		ClientID string `json:"client_id"`
		Scope    string `json:"scope"`
	}
	require.NoError(t, parsed.Claims(keys[0].Key, &claims))
	require.NoError(t, claims.Validate(jwt.Expected{Issuer: p.BaseURL, AnyAudience: jwt.Audience{p.BaseURL + "/mcp"}, Time: p.Clock.Now()}))
	require.Equal(t, op.Subject, claims.Subject)
	require.Equal(t, c.ID, claims.ClientID)
	require.NotEmpty(t, claims.ID)
}

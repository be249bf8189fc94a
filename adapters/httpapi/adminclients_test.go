package httpapi_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/httpapi"
	"github.com/oidcproxy/oidcproxy/adapters/tokens"
	"github.com/oidcproxy/oidcproxy/domain/usecase"
)

// adminServer serves the admin listener of a fixture on a real loopback
// listener (the guard judges the peer's address), with token as
// ADMIN_TOKEN ("" for none).
func adminServer(t *testing.T, f *fixture, token string) string {
	t.Helper()
	admin, err := usecase.NewAdmin(f.store, tokens.KeySets{}, fuzzClock{}, fuzzRandom{}, []string{"openid", "profile", "mcp:tools"})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(f.srv.Admin(httpapi.AdminOptions{Admin: admin, Token: token, Addr: ln.Addr().String()}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

// adminCall sends one request as the CLI does (the program header, JSON)
// plus header, and decodes a JSON answer into out when given.
func adminCall(t *testing.T, method, u, body string, header http.Header, out any) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, u, rd)
	require.NoError(t, err)
	req.Header.Set(httpapi.AdminRequestHeader, "1")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil {
		require.NoError(t, json.Unmarshal(raw, out), string(raw))
	}
	return resp
}

// errorOf decodes an OAuth error answer.
func errorOf(t *testing.T, method, u, body string, header http.Header) (int, map[string]string) {
	t.Helper()
	var doc map[string]string
	resp := adminCall(t, method, u, body, header, &doc)
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	return resp.StatusCode, doc
}

func TestAdminClientEndpoints(t *testing.T) {
	f := newFixture(t)
	base := adminServer(t, f, "")

	var created httpapi.CreatedClient
	resp := adminCall(t, http.MethodPost, base+"/clients", `{"client_name":"nightly CI","scope":"mcp:tools"}`, nil, &created)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"), "the answer holds a secret")
	require.NotEmpty(t, created.ClientSecret)
	require.True(t, created.Operator)
	require.Equal(t, "client_secret_basic", created.TokenEndpointAuthMethod)
	require.Equal(t, []string{"client_credentials"}, created.GrantTypes)

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256"}}})
	require.NoError(t, err)
	var keyed httpapi.CreatedClient
	resp = adminCall(t, http.MethodPost, base+"/clients",
		`{"client_name":"agent","token_endpoint_auth_method":"private_key_jwt","jwks":`+string(jwks)+`}`, nil, &keyed)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Empty(t, keyed.ClientSecret)
	require.True(t, keyed.HasJWKS)

	var page httpapi.ClientPage
	resp = adminCall(t, http.MethodGet, base+"/clients", "", nil, &page)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	operator := map[string]bool{}
	for _, c := range page.Clients {
		operator[c.ClientID] = c.Operator
	}
	require.Equal(t, map[string]bool{f.Public: false, f.Confidential: false, created.ClientID: true, keyed.ClientID: true}, operator)
	require.NotContains(t, resp.Header.Get("Content-Type"), "html")

	var first httpapi.ClientPage
	adminCall(t, http.MethodGet, base+"/clients?limit=3", "", nil, &first)
	require.Len(t, first.Clients, 3)
	require.NotEmpty(t, first.Next)
	var rest httpapi.ClientPage
	adminCall(t, http.MethodGet, base+"/clients?limit=3&after="+url.QueryEscape(first.Next), "", nil, &rest)
	require.Len(t, rest.Clients, 1)
	require.Empty(t, rest.Next)

	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		code, says               string
	}{
		{"no name", http.MethodPost, "/clients", `{"scope":"openid"}`, 400, "invalid_request", "name is required"},
		{"an unknown member", http.MethodPost, "/clients", `{"client_name":"x","grant_types":["password"]}`, 400, "invalid_request", "unknown field"},
		{"a member of the wrong type", http.MethodPost, "/clients", `{"client_name":7}`, 400, "invalid_request", `"client_name" has the wrong type`},
		{"malformed JSON", http.MethodPost, "/clients", `{"client_name":`, 400, "invalid_request", "truncated"},
		{"two documents", http.MethodPost, "/clients", `{"client_name":"a"}{}`, 400, "invalid_request", "more than one"},
		{"an unsupported scope", http.MethodPost, "/clients", `{"client_name":"x","scope":"admin"}`, 400, "invalid_scope", "not supported"},
		{"a shared secret as the key", http.MethodPost, "/clients", `{"client_name":"x","token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}}`, 400, "invalid_request", "shared secret"},
		{"a huge body", http.MethodPost, "/clients", `{"client_name":"` + strings.Repeat("a", 70<<10) + `"}`, 413, "invalid_request", "too large"},
		{"a negative limit", http.MethodGet, "/clients?limit=-1", "", 400, "invalid_request", "limit"},
		{"a repeated cursor", http.MethodGet, "/clients?after=a&after=b", "", 400, "invalid_request", "repeated"},
		{"a malformed query", http.MethodGet, "/clients?after=%zz", "", 400, "invalid_request", "malformed"},
		{"deleting an unknown client", http.MethodDelete, "/clients/nope", "", 404, "invalid_request", "no stored client"},
		{"deleting a document client, escaped", http.MethodDelete, "/clients/" + url.PathEscape("https://app.example/c.json"), "", 404, "invalid_request", "no stored client"},
	} {
		status, doc := errorOf(t, tc.method, base+tc.path, tc.body, nil)
		require.Equal(t, tc.status, status, tc.name)
		require.Equal(t, tc.code, doc["error"], tc.name)
		require.Contains(t, doc["error_description"], tc.says, tc.name)
	}

	// Deleting a client ends its grants.
	refresh := f.mintRefreshToken(t, false)
	var deleted httpapi.DeletedClient
	resp = adminCall(t, http.MethodDelete, base+"/clients/"+url.PathEscape(f.Public), "", nil, &deleted)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, httpapi.DeletedClient{ClientID: f.Public, RevokedGrants: 1}, deleted)
	w := f.serve(tokenRequest(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {f.Public}}))
	require.Equal(t, http.StatusUnauthorized, w.Code, "the client is gone")
	status, _ := errorOf(t, http.MethodDelete, base+"/clients/"+url.PathEscape(f.Public), "", nil)
	require.Equal(t, http.StatusNotFound, status)
}

// tokenRequest is a POST to /token with form.
func tokenRequest(form url.Values) *http.Request {
	r := httptest.NewRequest(http.MethodPost, fuzzIssuer+"/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

func TestAdminGrantEndpoints(t *testing.T) {
	f := newFixture(t)
	base := adminServer(t, f, "")
	publicRefresh := f.mintRefreshToken(t, false)
	f.mintRefreshToken(t, false)
	confidentialRefresh := f.mintRefreshToken(t, true)

	var all httpapi.GrantPage
	resp := adminCall(t, http.MethodGet, base+"/grants?user=user-1", "", nil, &all)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Len(t, all.Grants, 3)
	for _, g := range all.Grants {
		require.Equal(t, "user-1", g.Subject)
		require.Equal(t, "openid offline_access", g.Scope)
		require.False(t, g.CreatedAt.IsZero())
		require.False(t, g.ExpiresAt.IsZero())
		require.True(t, g.LastUsedAt.IsZero(), "not refreshed yet")
	}
	var ofPublic httpapi.GrantPage
	adminCall(t, http.MethodGet, base+"/grants?client="+url.QueryEscape(f.Public)+"&user=user-1", "", nil, &ofPublic)
	require.Len(t, ofPublic.Grants, 2)
	var none httpapi.GrantPage
	adminCall(t, http.MethodGet, base+"/grants?user=someone-else", "", nil, &none)
	require.NotNil(t, none.Grants)
	require.Empty(t, none.Grants)
	var raw map[string]any
	adminCall(t, http.MethodGet, base+"/grants?user=someone-else", "", nil, &raw)
	require.Equal(t, []any{}, raw["grants"], "an empty page is an empty list, not null")

	for _, tc := range []struct {
		name, method, path, body string
		says                     string
	}{
		{"an empty revocation", http.MethodPost, "/grants/revoke", `{}`, "name a user, a client or a grant"},
		{"a mistyped member", http.MethodPost, "/grants/revoke", `{"usr":"user-1"}`, "unknown field"},
		{"a repeated user", http.MethodGet, "/grants?user=a&user=b", "", "repeated"},
		{"a zero limit", http.MethodGet, "/grants?limit=0", "", "limit"},
		{"a limit that is not a number", http.MethodGet, "/grants?limit=ten", "", "limit"},
		{"a subject no one can have", http.MethodGet, "/grants?user=%FF", "", "not valid UTF-8"},
	} {
		status, doc := errorOf(t, tc.method, base+tc.path, tc.body, nil)
		require.Equal(t, http.StatusBadRequest, status, tc.name)
		require.Contains(t, doc["error_description"], tc.says, tc.name)
	}

	var revoked httpapi.RevokedGrants
	resp = adminCall(t, http.MethodPost, base+"/grants/revoke", `{"user":"user-1","client":"`+f.Public+`"}`, nil, &revoked)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, 2, revoked.Revoked)
	w := f.serve(tokenRequest(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {publicRefresh}, "client_id": {f.Public}}))
	require.Equal(t, http.StatusBadRequest, w.Code)
	require.Contains(t, w.Body.String(), "invalid_grant")
	req := tokenRequest(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {confidentialRefresh}})
	req.SetBasicAuth(f.Confidential, f.Secret)
	w = f.serve(req)
	require.Equal(t, http.StatusOK, w.Code, "the other client's grant lives: %s", w.Body.String())

	// The refresh recorded the grant's use.
	var after httpapi.GrantPage
	adminCall(t, http.MethodGet, base+"/grants?user=user-1", "", nil, &after)
	require.Len(t, after.Grants, 1)
	require.False(t, after.Grants[0].LastUsedAt.IsZero())
}

// The client and grant endpoints sit behind the guard of /keys: the token,
// the Host rule, the cross-origin rules and the non-simple request rule.
func TestTheAdminGuardCoversClientsAndGrants(t *testing.T) {
	f := newFixture(t)
	base := adminServer(t, f, "")
	host := strings.TrimPrefix(base, "http://")
	f.mintRefreshToken(t, false)

	refused := []struct {
		name, method, path, body string
		header                   http.Header
	}{
		{"a rebound name listing grants", http.MethodGet, "/grants", "", http.Header{"Host": {"attacker.example"}}},
		{"a foreign origin listing clients", http.MethodGet, "/clients", "", http.Header{"Origin": {"http://evil.example"}}},
		{"a cross-site revocation", http.MethodPost, "/grants/revoke", `{"user":"user-1"}`, http.Header{"Sec-Fetch-Site": {"cross-site"}}},
		{"a same-site client deletion", http.MethodDelete, "/clients/" + f.Confidential, "", http.Header{"Sec-Fetch-Site": {"same-site"}}},
	}
	for _, tc := range refused {
		req, err := http.NewRequestWithContext(t.Context(), tc.method, base+tc.path, strings.NewReader(tc.body))
		require.NoError(t, err)
		req.Header.Set(httpapi.AdminRequestHeader, "1")
		req.Header.Set("Content-Type", "application/json")
		for k, v := range tc.header {
			req.Header[k] = v
		}
		if h := tc.header.Get("Host"); h != "" {
			req.Host = h
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusForbidden, resp.StatusCode, tc.name)
	}

	// A simple request (what a form or fetch without preflight sends) may
	// not change state: neither a text/plain revocation nor a bare DELETE.
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", ""} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/grants/revoke", strings.NewReader(`{"user":"user-1"}`))
		require.NoError(t, err)
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusForbidden, resp.StatusCode, ct)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodDelete, base+"/clients/"+f.Confidential, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)

	// Nothing above changed anything.
	var grants httpapi.GrantPage
	adminCall(t, http.MethodGet, base+"/grants", "", nil, &grants)
	require.Len(t, grants.Grants, 1)
	var clients httpapi.ClientPage
	adminCall(t, http.MethodGet, "http://localhost:"+host[strings.LastIndex(host, ":")+1:]+"/clients", "", nil, &clients)
	require.Len(t, clients.Clients, 2)

	// With a token, the token is required too.
	tokened := adminServer(t, newFixture(t), "admin-token-for-the-test")
	status, _ := errorOf(t, http.MethodGet, tokened+"/grants", "", nil)
	require.Equal(t, http.StatusForbidden, status)
	status, _ = errorOf(t, http.MethodGet, tokened+"/grants", "", http.Header{"Authorization": {"Bearer wrong"}})
	require.Equal(t, http.StatusForbidden, status)
	var ok httpapi.GrantPage
	resp = adminCall(t, http.MethodGet, tokened+"/grants", "", http.Header{"Authorization": {"Bearer admin-token-for-the-test"}}, &ok)
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

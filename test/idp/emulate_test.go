package idp_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/oidcproxy/oidcproxy/test/idp"
)

// discover reads an emulation's discovery document.
func discover(t *testing.T, f *idp.Faulty) map[string]any {
	t.Helper()
	resp, err := http.Get(f.ConfigURL)
	require.NoError(t, err)
	defer resp.Body.Close()
	var doc map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&doc))
	return doc
}

// emulatedClient is an oauth2 client of an emulation.
func emulatedClient(t *testing.T, f *idp.Faulty, scopes ...string) *oauth2.Config {
	t.Helper()
	doc := discover(t, f)
	conf := oauthConfig(doc["authorization_endpoint"].(string), doc["token_endpoint"].(string), f.ClientID, f.ClientSecret)
	conf.Scopes = scopes
	return conf
}

// authorize logs in with extra parameters and returns the callback query.
func authorize(t *testing.T, f *idp.Faulty, conf *oauth2.Config, verifier string, params ...string) url.Values {
	t.Helper()
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	for i := 0; i+1 < len(params); i += 2 {
		opts = append(opts, oauth2.SetAuthURLParam(params[i], params[i+1]))
	}
	cb, err := f.Login(t.Context(), browser(t), conf.AuthCodeURL("st", opts...))
	require.NoError(t, err)
	return cb.Query()
}

// exchange runs a whole login and returns the token response.
func exchange(t *testing.T, f *idp.Faulty, conf *oauth2.Config, params ...string) *oauth2.Token {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	q := authorize(t, f, conf, verifier, params...)
	require.Empty(t, q.Get("error"), q.Get("error_description"))
	tok, err := conf.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(verifier))
	require.NoError(t, err)
	return tok
}

// claims reads a JWT's claims without verifying it (the emulation signed it).
func claims(t *testing.T, raw string) map[string]any {
	t.Helper()
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, tok.UnsafeClaimsWithoutVerification(&out))
	return out
}

func TestTheAuth0EmulationIssuesJWTsOnlyForAKnownAudience(t *testing.T) {
	t.Parallel()
	f := idp.NewAuth0(t, idp.Auth0Options{})
	require.Equal(t, f.URL+"/", discover(t, f)["issuer"])
	conf := emulatedClient(t, f, "openid")

	opaque := exchange(t, f, conf)
	require.NotEqual(t, 2, strings.Count(opaque.AccessToken, "."))
	require.Empty(t, opaque.RefreshToken, "no offline_access, no refresh token")

	conf.Scopes = []string{"openid", "offline_access"}
	tok := exchange(t, f, conf, "audience", idp.DefaultAuth0Audience)
	require.Equal(t, []any{idp.DefaultAuth0Audience, f.URL + "/userinfo"}, claims(t, tok.AccessToken)["aud"])
	require.Equal(t, f.URL+"/", claims(t, tok.Extra("id_token").(string))["iss"])
	require.NotEmpty(t, tok.RefreshToken)

	q := authorize(t, f, conf, oauth2.GenerateVerifier(), "audience", "https://unknown.example")
	require.Equal(t, "access_denied", q.Get("error"))
}

func TestTheGoogleEmulationRefusesOfflineAccessAndEchoesLongScopes(t *testing.T) {
	t.Parallel()
	f := idp.NewGoogle(t, idp.GoogleOptions{HostedDomain: "example.com"})
	require.NotContains(t, discover(t, f)["scopes_supported"], "offline_access")

	q := authorize(t, f, emulatedClient(t, f, "openid", "offline_access"), oauth2.GenerateVerifier())
	require.Equal(t, "invalid_scope", q.Get("error"))

	conf := emulatedClient(t, f, "openid", "email", "profile")
	online := exchange(t, f, conf)
	require.Empty(t, online.RefreshToken, "no access_type=offline, no refresh token")

	tok := exchange(t, f, conf, "access_type", "offline")
	require.NotEmpty(t, tok.RefreshToken)
	require.Equal(t, "openid "+idp.GoogleEmailScope+" "+idp.GoogleProfileScope, tok.Extra("scope"))
	require.True(t, strings.HasPrefix(tok.AccessToken, "ya29."))
	require.Equal(t, 2, strings.Count(tok.AccessToken, "."), "shaped like a JWT")
	_, err := jwt.ParseSigned(tok.AccessToken, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	require.Error(t, err, "but not one")
	require.Equal(t, "example.com", claims(t, tok.Extra("id_token").(string))["hd"])
}

func TestTheAzureEmulationEnforcesOneResourceAndNoResourceParameter(t *testing.T) {
	t.Parallel()
	f := idp.NewAzure(t, idp.AzureOptions{})
	require.Equal(t, f.URL+"/{tenantid}/v2.0", discover(t, f)["issuer"])
	api := "api://" + f.ClientID + "/mcp.read"

	q := authorize(t, f, emulatedClient(t, f, "openid", api), oauth2.GenerateVerifier(), "resource", "https://mcp.example.com")
	require.Equal(t, "invalid_request", q.Get("error"))
	require.Contains(t, q.Get("error_description"), "AADSTS9010010")

	q = authorize(t, f, emulatedClient(t, f, "openid", api, "User.Read"), oauth2.GenerateVerifier())
	require.Equal(t, "invalid_scope", q.Get("error"))
	require.Contains(t, q.Get("error_description"), "AADSTS28000")

	tok := exchange(t, f, emulatedClient(t, f, "openid", "offline_access", api))
	require.Equal(t, "1.0", claims(t, tok.AccessToken)["ver"], "the manifest's null means v1.0 access tokens")
	require.Equal(t, api, tok.Extra("scope"))
	require.NotEmpty(t, tok.RefreshToken)
	id := claims(t, tok.Extra("id_token").(string))
	require.Equal(t, f.TokenIssuer, id["iss"])
	require.Equal(t, idp.DefaultTenantID, id["tid"])

	// A bare custom scope is Graph's: the token is for Graph.
	graph := exchange(t, f, emulatedClient(t, f, "openid", "mcp.read"))
	require.Equal(t, []any{idp.GraphAudience}, claims(t, graph.AccessToken)["aud"])
	require.Empty(t, graph.RefreshToken, "no offline_access, no refresh token")
}

func TestTheAzureEmulationIssuesTheAccessTokenVersionTheManifestAsksFor(t *testing.T) {
	t.Parallel()
	const identifier = "https://mcp.example.com/api"
	v1 := map[string]any{"ver": "1.0", "iss": idp.EntraV1Issuer + "/" + idp.DefaultTenantID + "/",
		"aud": []any{identifier}, "appid": idp.DefaultClientID}
	v2 := map[string]any{"ver": "2.0", "aud": []any{idp.DefaultClientID}, "azp": idp.DefaultClientID}
	cases := []struct {
		version int
		want    map[string]any
	}{{0, v1}, {1, v1}, {2, v2}}
	for _, tc := range cases {
		f := idp.NewAzure(t, idp.AzureOptions{AccessTokenVersion: tc.version, IdentifierURI: identifier})
		tok := exchange(t, f, emulatedClient(t, f, "openid", identifier+"/mcp.read"))
		at := claims(t, tok.AccessToken)
		for k, v := range tc.want {
			require.Equal(t, v, at[k], "version %d: %s", tc.version, k)
		}
		if tc.version == 2 {
			require.Equal(t, f.URL+"/"+idp.DefaultTenantID+"/v2.0", at["iss"], "the v2.0 issuer of the user's tenant")
			require.NotContains(t, at, "appid", "azp replaces appid in v2.0 tokens")
		} else {
			require.NotContains(t, at, "azp", "azp exists only in v2.0 tokens")
		}
		require.Equal(t, "mcp.read", at["scp"], "the API's scopes without the prefix")
		require.Equal(t, idp.DefaultTenantID, at["tid"])
		// Whatever the version, the ID token comes from the v2.0 endpoint.
		require.Equal(t, "2.0", claims(t, tok.Extra("id_token").(string))["ver"])
	}
}

func TestTheKeycloakEmulationSendsRefreshExpiresInZero(t *testing.T) {
	t.Parallel()
	f := idp.NewKeycloak(t, idp.FaultyOptions{})
	require.Equal(t, f.URL+"/realms/mcp", discover(t, f)["issuer"])

	tok := exchange(t, f, emulatedClient(t, f, "openid", "offline_access"))

	require.EqualValues(t, 0, tok.Extra("refresh_expires_in"))
	require.NotEmpty(t, tok.RefreshToken)
	require.Equal(t, []any{"account"}, claims(t, tok.AccessToken)["aud"])
}

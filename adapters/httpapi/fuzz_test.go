package httpapi_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
)

// The seeds of each target are in testdata/fuzz/<target>/ and run as
// ordinary tests in `go test ./...`. Fuzzing:
//
//	go test -run '^$' -fuzz FuzzRegister -fuzztime 60s -fuzzminimizetime 3s ./adapters/httpapi
//
// The short minimization matters: with the default minute per new input,
// minimizing the long seeds (a 2 KB state, 70 KB bodies) takes whole
// minutes in which nothing new is tried.

// FuzzRegister posts hostile registration requests (RFC 7591): whatever the
// body, the answer is a 201 with a client id whose redirect URIs are safe to
// send a browser to, or an RFC 7591 error in JSON, never a 5xx.
func FuzzRegister(f *testing.F) {
	fixtures := &recycler{n: 5000}
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		fx := fixtures.get(t)
		r := httptest.NewRequest(http.MethodPost, "/register", bytes.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		w := fx.serve(r)
		switch w.Code {
		case http.StatusCreated:
			require.Equal(t, "application/json", w.Header().Get("Content-Type"))
			require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
			var doc struct {
				ClientID     string   `json:"client_id"`
				RedirectURIs []string `json:"redirect_uris"`
				AuthMethod   string   `json:"token_endpoint_auth_method"`
				Secret       string   `json:"client_secret"`
			}
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &doc), w.Body.String())
			require.NotEmpty(t, doc.ClientID)
			require.NotEmpty(t, doc.RedirectURIs)
			for _, u := range doc.RedirectURIs {
				requireSafeRedirectURI(t, u)
			}
			require.Equal(t, doc.AuthMethod != "none", doc.Secret != "", "a secret exactly for confidential clients")
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			requireJSONError(t, w, "invalid_client_metadata", "invalid_redirect_uri")
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
	})
}

// requireSafeRedirectURI is the registration policy seen from outside:
// an absolute URI with no userinfo, fragment or dot segments, and never a
// scheme that runs code or reads files in the browser.
func requireSafeRedirectURI(t *testing.T, raw string) {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err, raw)
	require.True(t, u.IsAbs(), raw)
	require.NotContains(t, []string{"javascript", "data", "file", "vbscript", "blob", "about"}, strings.ToLower(u.Scheme), raw)
	require.Nil(t, u.User, raw)
	require.Empty(t, u.Fragment, raw)
	require.NotContains(t, u.Path, "/../", raw)
	require.NotContains(t, u.Path, "/./", raw)
	if u.Scheme == "http" {
		require.True(t, domain.IsLoopbackHost(u.Hostname()), "plain http only to loopback: %s", raw)
	}
}

// FuzzToken posts hostile token requests: any combination of grant type,
// code, refresh token, PKCE verifier, redirect URI, client credentials in
// the body or in an Authorization header, and raw extra form bytes. The
// answer is tokens or a JSON error with an RFC 6749 code and no-store,
// never a 5xx: every input here is a client's mistake.
//
// Placeholders reach past "unknown client": {client} and {secret} are the
// registered client's (the confidential one when confidential is set),
// {code}, {verifier} and {redirect} belong to a code minted for it, and
// {refresh} is a live refresh token; {basic} is a whole valid
// "Basic ..." header value for the client.
func FuzzToken(f *testing.F) {
	fixtures := &recycler{n: 5000}
	f.Fuzz(func(t *testing.T, grantType, code, refreshToken, verifier, redirectURI, clientID, clientSecret, authorization, extra string, confidential bool) {
		fx := fixtures.get(t)
		all := grantType + code + refreshToken + verifier + redirectURI + clientID + clientSecret + authorization + extra
		vals := map[string]string{"client": fx.Public, "secret": ""}
		if confidential {
			vals["client"], vals["secret"] = fx.Confidential, fx.Secret
		}
		if strings.Contains(all, "{code}") || strings.Contains(all, "{verifier}") || strings.Contains(all, "{redirect}") {
			c := fx.mintCode(t, confidential)
			vals["code"], vals["verifier"], vals["redirect"] = c.Code, c.Verifier, c.RedirectURI
		}
		if strings.Contains(all, "{refresh}") {
			vals["refresh"] = fx.mintRefreshToken(t, confidential)
		}
		vals["basic"] = "Basic " + base64.StdEncoding.EncodeToString(
			[]byte(url.QueryEscape(vals["client"])+":"+url.QueryEscape(vals["secret"])))

		form := url.Values{}
		for k, v := range map[string]string{
			"grant_type": grantType, "code": code, "refresh_token": refreshToken, "code_verifier": verifier,
			"redirect_uri": redirectURI, "client_id": clientID, "client_secret": clientSecret,
		} {
			if v != "" {
				form.Set(k, substitute(v, vals))
			}
		}
		body := form.Encode()
		if extra != "" {
			// Raw, unencoded: malformed escapes and repeated keys included.
			body += "&" + substitute(extra, vals)
		}
		r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if authorization != "" {
			r.Header.Set("Authorization", substitute(authorization, vals))
		}
		w := fx.serve(r)
		switch w.Code {
		case http.StatusOK:
			require.Equal(t, "application/json", w.Header().Get("Content-Type"))
			require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
			var doc map[string]any
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &doc))
			require.NotEmpty(t, doc["access_token"])
			require.Equal(t, "Bearer", doc["token_type"])
			require.Positive(t, doc["expires_in"])
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge:
			requireJSONError(t, w)
			if w.Code == http.StatusUnauthorized && r.Header.Get("Authorization") != "" {
				require.NotEmpty(t, w.Header().Get("WWW-Authenticate"), "RFC 6749 5.2: 401 to HTTP auth carries a challenge")
			}
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
	})
}

// FuzzAuthorize sends hostile authorization requests, as a query (GET) or a
// form (POST): the answer is an HTML error page that cannot be framed, the
// redirect to our own consent page, or an error redirect to a redirect URI
// registered for the client that was named — never a redirect anywhere
// else, never a 5xx.
//
// Placeholders: {client}, {conf} are the public and confidential clients;
// {redirect}, {native} and {web} their registered redirect URIs,
// query-escaped.
func FuzzAuthorize(f *testing.F) {
	fixtures := &recycler{n: 5000}
	f.Fuzz(func(t *testing.T, post bool, query string) {
		fx := fixtures.get(t)
		registered := map[string][]string{
			fx.Public:       {fuzzRedirect, fuzzNativeRedirect},
			fx.Confidential: {fuzzWebRedirect},
		}
		query = substitute(query, map[string]string{
			"client": fx.Public, "conf": fx.Confidential,
			"redirect": url.QueryEscape(fuzzRedirect), "native": url.QueryEscape(fuzzNativeRedirect), "web": url.QueryEscape(fuzzWebRedirect),
		})
		var r *http.Request
		if post {
			r = httptest.NewRequest(http.MethodPost, "/authorize", strings.NewReader(query))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			r = httptest.NewRequest(http.MethodGet, "/authorize", nil)
			r.URL.RawQuery = query
		}
		w := fx.serve(r)
		switch {
		case w.Code == http.StatusFound || w.Code == http.StatusSeeOther:
			loc := w.Header().Get("Location")
			if strings.HasPrefix(loc, "/consent?txn=") {
				return
			}
			params, _ := url.ParseQuery(query)
			requireRegisteredErrorRedirect(t, loc, registered[params.Get("client_id")])
		case w.Code >= 400 && w.Code < 500:
			require.Equal(t, "text/html; charset=utf-8", w.Header().Get("Content-Type"), w.Body.String())
			require.Equal(t, "DENY", w.Header().Get("X-Frame-Options"))
			require.Contains(t, w.Header().Get("Content-Security-Policy"), "frame-ancestors 'none'")
			require.Empty(t, w.Header().Get("Location"))
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
	})
}

// requireRegisteredErrorRedirect: an authorization error may only go to a
// redirect URI registered for the client (RFC 6749 4.1.2.1; a loopback
// one on any port, RFC 8252 7.3), with error and our iss (RFC 9207).
func requireRegisteredErrorRedirect(t *testing.T, loc string, registered []string) {
	t.Helper()
	u, err := url.Parse(loc)
	require.NoError(t, err, loc)
	q := u.Query()
	require.NotEmpty(t, q.Get("error"), loc)
	require.Empty(t, q.Get("code"), loc)
	require.Equal(t, fuzzIssuer, q.Get("iss"), loc)
	require.Nil(t, u.User, loc)
	require.Empty(t, u.Fragment, loc)
	target := *u
	target.RawQuery = ""
	ok := slices.ContainsFunc(registered, func(r string) bool {
		ru, err := url.Parse(r)
		require.NoError(t, err)
		if ru.Scheme == "http" && domain.IsLoopbackHost(ru.Hostname()) {
			return target.Scheme == "http" && target.Hostname() == ru.Hostname() && target.EscapedPath() == ru.EscapedPath()
		}
		return target.String() == r
	})
	require.True(t, ok, "redirected to %s, registered: %v", loc, registered)
}

package e2e_test

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/oidcproxy/oidcproxy/test/idp"
)

// exchangeForm is an authorization_code token request of a public client.
func exchangeForm(c *mcpClient, code, verifier string) url.Values {
	return url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {c.RedirectURI},
		"code_verifier": {verifier},
		"client_id":     {c.ID},
	}
}

func requireOAuthError(t *testing.T, wantStatus int, wantCode string, status int, header http.Header, doc map[string]any) {
	t.Helper()
	require.Equal(t, wantStatus, status, doc)
	require.Equal(t, wantCode, doc["error"], doc)
	require.Equal(t, "no-store", header.Get("Cache-Control"))
}

func TestPKCEIsRequiredAndOnlyS256IsAccepted(t *testing.T) {
	p, _ := startWithOP(t)
	c := p.register(t, nil)
	b := newBrowser(t)
	cases := map[string]string{
		"missing": c.OAuth.AuthCodeURL("st"),
		"plain": c.OAuth.AuthCodeURL("st", oauth2.SetAuthURLParam("code_challenge", strings.Repeat("a", 43)),
			oauth2.SetAuthURLParam("code_challenge_method", "plain")),
		"method omitted (means plain)": c.OAuth.AuthCodeURL("st", oauth2.SetAuthURLParam("code_challenge", strings.Repeat("a", 43))),
	}
	for name, u := range cases {
		t.Run(name, func(t *testing.T) {
			res := b.get(t, u)
			require.Equal(t, http.StatusFound, res.Status)
			q := res.Location.Query()
			require.True(t, strings.HasPrefix(res.Location.String(), c.RedirectURI))
			require.Equal(t, "invalid_request", q.Get("error"))
			require.Equal(t, "st", q.Get("state"))
			require.Equal(t, p.BaseURL, q.Get("iss"))
		})
	}
}

func TestAWrongVerifierBurnsTheCode(t *testing.T) {
	p, _ := startWithOP(t)
	c := p.register(t, nil)
	f := newFlow(t, c)
	code := p.authorize(t, f).Query().Get("code")

	status, h, doc := p.postToken(t, exchangeForm(c, code, oauth2.GenerateVerifier()))
	requireOAuthError(t, http.StatusBadRequest, "invalid_grant", status, h, doc)
	// The right verifier no longer helps: the code was burned.
	status, h, doc = p.postToken(t, exchangeForm(c, code, f.Verifier))
	requireOAuthError(t, http.StatusBadRequest, "invalid_grant", status, h, doc)
}

func TestAReplayedCodeRevokesTheGrant(t *testing.T) {
	p, _ := startWithOP(t)
	c := p.register(t, nil)
	f := newFlow(t, c)
	code := p.authorize(t, f).Query().Get("code")

	status, h, first := p.postToken(t, exchangeForm(c, code, f.Verifier))
	require.Equal(t, http.StatusOK, status, first)
	require.Equal(t, "no-store", h.Get("Cache-Control"))

	// A replay with invalid parameters is refused but does not revoke.
	status, h, doc := p.postToken(t, exchangeForm(c, code, oauth2.GenerateVerifier()))
	requireOAuthError(t, http.StatusBadRequest, "invalid_grant", status, h, doc)
	next, err := p.refresh(t, c, first["refresh_token"].(string))
	require.NoError(t, err, "an attacker without the verifier cannot kill the user's grant")

	// A replay with everything the legitimate client holds revokes it.
	status, h, doc = p.postToken(t, exchangeForm(c, code, f.Verifier))
	requireOAuthError(t, http.StatusBadRequest, "invalid_grant", status, h, doc)
	_, err = p.refresh(t, c, next.RefreshToken)
	require.Equal(t, "invalid_grant", oauthErrorCode(err))
}

func TestACodeIsBoundToItsClientAndRedirectURI(t *testing.T) {
	p, _ := startWithOP(t)
	c := p.register(t, nil)
	other := p.register(t, nil)

	t.Run("another client", func(t *testing.T) {
		f := newFlow(t, c)
		code := p.authorize(t, f).Query().Get("code")
		form := exchangeForm(c, code, f.Verifier)
		form.Set("client_id", other.ID)
		status, h, doc := p.postToken(t, form)
		requireOAuthError(t, http.StatusBadRequest, "invalid_grant", status, h, doc)
	})
	t.Run("redirect_uri mismatch", func(t *testing.T) {
		f := newFlow(t, c)
		code := p.authorize(t, f).Query().Get("code")
		form := exchangeForm(c, code, f.Verifier)
		form.Set("redirect_uri", "http://127.0.0.1:53682/other")
		status, h, doc := p.postToken(t, form)
		requireOAuthError(t, http.StatusBadRequest, "invalid_grant", status, h, doc)
	})
	t.Run("unknown client", func(t *testing.T) {
		form := exchangeForm(c, "whatever", oauth2.GenerateVerifier())
		form.Set("client_id", "no-such-client")
		status, h, doc := p.postToken(t, form)
		requireOAuthError(t, http.StatusUnauthorized, "invalid_client", status, h, doc)
	})
	t.Run("unknown grant type", func(t *testing.T) {
		status, h, doc := p.postToken(t, url.Values{"grant_type": {"password"}, "client_id": {c.ID}})
		requireOAuthError(t, http.StatusBadRequest, "unsupported_grant_type", status, h, doc)
	})
	t.Run("repeated parameter", func(t *testing.T) {
		form := exchangeForm(c, "a", oauth2.GenerateVerifier())
		form.Add("code", "b")
		status, h, doc := p.postToken(t, form)
		requireOAuthError(t, http.StatusBadRequest, "invalid_request", status, h, doc)
	})
}

func TestTheCallbackRejectsTamperedReplayedAndUnboundStates(t *testing.T) {
	p, _ := startWithOP(t)
	c := p.register(t, nil)

	t.Run("tampered state", func(t *testing.T) {
		f := newFlow(t, c)
		cb := p.toCallback(t, f)
		q := cb.Query()
		q.Set("state", q.Get("state")+"x")
		cb.RawQuery = q.Encode()
		res := f.Browser.get(t, cb.String())
		require.Equal(t, http.StatusBadRequest, res.Status)
		require.Contains(t, res.Header.Get("Content-Type"), "text/html")
		require.Nil(t, res.Location, "never a redirect")
	})
	t.Run("replayed state", func(t *testing.T) {
		f := newFlow(t, c)
		cb := p.toCallback(t, f)
		require.Equal(t, http.StatusFound, f.Browser.get(t, cb.String()).Status)
		res := f.Browser.get(t, cb.String())
		require.Equal(t, http.StatusBadRequest, res.Status)
		require.Nil(t, res.Location)
	})
	t.Run("another browser", func(t *testing.T) {
		f := newFlow(t, c)
		cb := p.toCallback(t, f)
		res := newBrowser(t).get(t, cb.String())
		require.Equal(t, http.StatusForbidden, res.Status)
		require.Contains(t, res.Body, "access_denied")
		require.Nil(t, res.Location)
		// The state is single use: the right browser cannot finish either.
		require.Equal(t, http.StatusBadRequest, f.Browser.get(t, cb.String()).Status)
	})
}

func TestTheConsentFormRequiresItsCSRFTokenOnce(t *testing.T) {
	p, _ := startWithOP(t)
	c := p.register(t, nil)

	t.Run("wrong token", func(t *testing.T) {
		f := newFlow(t, c)
		consent := p.toConsent(t, f)
		action, fields := formFields(t, consent.Body)
		fields.Set("csrf_token", oauth2.GenerateVerifier())
		fields.Set("decision", "approve")
		res := f.Browser.postForm(t, p.BaseURL+action, fields)
		require.Equal(t, http.StatusForbidden, res.Status)
		require.Nil(t, res.Location)
	})
	t.Run("reused token", func(t *testing.T) {
		f := newFlow(t, c)
		consent := p.toConsent(t, f)
		require.Equal(t, http.StatusSeeOther, p.decide(t, f, consent, "approve").Status)
		res := p.decide(t, f, consent, "approve")
		require.Contains(t, []int{http.StatusForbidden, http.StatusBadRequest}, res.Status)
		require.Nil(t, res.Location)
	})
	t.Run("token from an older render", func(t *testing.T) {
		f := newFlow(t, c)
		first := p.toConsent(t, f)
		res := f.Browser.get(t, p.BaseURL+"/consent?"+url.Values{"txn": {fieldsOf(t, first).Get("txn")}}.Encode())
		require.Equal(t, http.StatusOK, res.Status)
		stale := p.decide(t, f, first, "approve")
		require.Equal(t, http.StatusForbidden, stale.Status)
	})
	t.Run("another browser posting a form it fetched", func(t *testing.T) {
		f := newFlow(t, c)
		consent := p.toConsent(t, f)
		action, fields := formFields(t, consent.Body)
		fields.Set("decision", "approve")
		res := newBrowser(t).postForm(t, p.BaseURL+action, fields)
		require.Equal(t, http.StatusForbidden, res.Status)
	})
	t.Run("cross-site post", func(t *testing.T) {
		f := newFlow(t, c)
		consent := p.toConsent(t, f)
		action, fields := formFields(t, consent.Body)
		fields.Set("decision", "approve")
		req, err := http.NewRequest(http.MethodPost, p.BaseURL+action, strings.NewReader(fields.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://evil.example")
		res := f.Browser.do(t, req)
		require.Equal(t, http.StatusForbidden, res.Status)
	})
}

func fieldsOf(t *testing.T, pg page) url.Values {
	_, v := formFields(t, pg.Body)
	return v
}

func TestTheConsentPageIsSafeToShow(t *testing.T) {
	p, _ := startWithOP(t)
	c := p.register(t, map[string]any{"client_name": `<script>alert("x")</script>Evil & Co`})
	f := newFlow(t, c)
	consent := p.toConsent(t, f)
	require.Equal(t, "DENY", consent.Header.Get("X-Frame-Options"))
	require.Contains(t, consent.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'")
	require.Equal(t, "no-store", consent.Header.Get("Cache-Control"))
	// Under no-referrer, browsers send "Origin: null" with the form's POST,
	// which the consent handler must refuse: same-origin keeps the real
	// Origin on our own POST and still sends no referrer to other sites.
	require.Equal(t, "same-origin", consent.Header.Get("Referrer-Policy"))
	require.NotContains(t, consent.Body, `<script>alert`)
	require.Contains(t, consent.Body, "&lt;script&gt;")

	// The consent cookie is HttpOnly and SameSite=Lax (unprefixed on plain
	// http loopback).
	u, _ := url.Parse(p.BaseURL)
	cookies := f.Browser.Jar.Cookies(u)
	require.NotEmpty(t, cookies)
	var setCookie string
	for _, v := range consent.Header.Values("Set-Cookie") {
		setCookie += v
	}
	require.Contains(t, setCookie, "HttpOnly")
	require.Contains(t, setCookie, "SameSite=Lax")
}

func TestDenyingConsentSendsAccessDeniedToTheClient(t *testing.T) {
	p, _ := startWithOP(t)
	c := p.register(t, nil)
	f := newFlow(t, c)
	consent := p.toConsent(t, f)
	res := p.decide(t, f, consent, "deny")
	require.Equal(t, http.StatusSeeOther, res.Status)
	q := res.Location.Query()
	require.True(t, strings.HasPrefix(res.Location.String(), c.RedirectURI))
	require.Equal(t, "access_denied", q.Get("error"))
	require.Equal(t, f.State, q.Get("state"))
	require.Equal(t, p.BaseURL, q.Get("iss"))
}

func TestUpstreamFailuresReachTheClientAsOAuthErrorsWithoutUpstreamText(t *testing.T) {
	p, f := startWithFaulty(t)
	c := p.register(t, nil)

	t.Run("upstream access_denied", func(t *testing.T) {
		f.Update(func(x *idp.Faults) {
			*x = idp.Faults{AuthorizeError: "access_denied", AuthorizeErrorDescription: "<b>internal detail 42</b>"}
		})
		fl := newFlow(t, c)
		cb := p.toCallback(t, fl)
		res := fl.Browser.get(t, cb.String())
		require.Equal(t, http.StatusFound, res.Status)
		q := res.Location.Query()
		require.Equal(t, "access_denied", q.Get("error"))
		require.Equal(t, fl.State, q.Get("state"))
		require.NotContains(t, res.Location.String(), "internal")
	})
	t.Run("upstream token endpoint fails", func(t *testing.T) {
		f.Update(func(x *idp.Faults) {
			*x = idp.Faults{TokenStatus: http.StatusInternalServerError, TokenErrorDescription: "db down at 10.0.0.7"}
		})
		fl := newFlow(t, c)
		cb := p.toCallback(t, fl)
		res := fl.Browser.get(t, cb.String())
		require.Equal(t, http.StatusFound, res.Status)
		q := res.Location.Query()
		require.Equal(t, "temporarily_unavailable", q.Get("error"))
		require.NotContains(t, res.Location.String(), "10.0.0.7")
	})
	t.Run("upstream ID token with a wrong nonce", func(t *testing.T) {
		f.Update(func(x *idp.Faults) { *x = idp.Faults{IDToken: idp.IDTokenWrongNonce} })
		fl := newFlow(t, c)
		cb := p.toCallback(t, fl)
		res := fl.Browser.get(t, cb.String())
		require.Equal(t, "access_denied", res.Location.Query().Get("error"))
	})
}

func TestRefreshTokenReuseRevokesTheGrant(t *testing.T) {
	p, _ := startWithOP(t)
	c := p.register(t, nil)
	tok, _ := p.login(t, c)
	next, err := p.refresh(t, c, tok.RefreshToken)
	require.NoError(t, err)
	last, err := p.refresh(t, c, next.RefreshToken)
	require.NoError(t, err)

	// The successor was used, so this is no retry of a lost response.
	_, err = p.refresh(t, c, tok.RefreshToken)
	require.Equal(t, "invalid_grant", oauthErrorCode(err))
	_, err = p.refresh(t, c, last.RefreshToken)
	require.Equal(t, "invalid_grant", oauthErrorCode(err), "the thief's reuse killed the legitimate chain too")
	require.Contains(t, p.Logs.String(), `"event":"token_reuse_detected_grant_revoked"`)
}

func TestRegistrationRejectsBadInputAndStaysHealthy(t *testing.T) {
	p, _ := startWithOP(t)
	post := func(t *testing.T, body []byte, ct string) (int, string) {
		req, err := http.NewRequest(http.MethodPost, p.BaseURL+"/register", bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", ct)
		if len(body) > 64<<10 {
			// The proxy answers a body declared too large without reading
			// it and closes the connection; a client still writing it may
			// see the close before the answer. A client that sends a large
			// body announces it and waits for the go-ahead, and then reads
			// the refusal every time.
			req.Header.Set("Expect", "100-continue")
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		return resp.StatusCode, buf.String()
	}
	status, body := post(t, []byte(`{"redirect_uris": [`), "application/json")
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, body, "invalid_client_metadata")

	status, body = post(t, []byte(`{"redirect_uris": "http://127.0.0.1/cb"}`), "application/json")
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, body, "invalid_client_metadata")

	big := append([]byte(`{"client_name":"`), bytes.Repeat([]byte("a"), 2<<20)...)
	big = append(big, []byte(`","redirect_uris":["http://127.0.0.1/cb"]}`)...)
	status, body = post(t, big, "application/json")
	require.Equal(t, http.StatusRequestEntityTooLarge, status)
	require.Contains(t, body, "invalid_client_metadata")

	status, _ = post(t, []byte(`{}`), "text/plain")
	require.Equal(t, http.StatusBadRequest, status)

	for _, uri := range []string{
		"javascript:alert(1)", "data:text/html,x", "file:///etc/passwd", "vbscript:x",
		"https://user:pw@example.com/cb", "https://example.com/a/../cb", "http://example.com/cb",
		"https://example.com/cb#frag", "/relative",
	} {
		status, doc := p.postJSON(t, "/register", map[string]any{"redirect_uris": []string{uri}})
		require.Equal(t, http.StatusBadRequest, status, uri)
		require.Equal(t, "invalid_redirect_uri", doc["error"], uri)
	}
	status, doc := p.postJSON(t, "/register", map[string]any{
		"redirect_uris": []string{"http://127.0.0.1:9/cb"}, "application_type": "web",
	})
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "invalid_redirect_uri", doc["error"])

	resp, err := http.Get(p.BaseURL + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestUnknownClientsAndUnregisteredRedirectURIsGetAPageNeverARedirect(t *testing.T) {
	p, _ := startWithOP(t)
	c := p.register(t, nil)
	b := newBrowser(t)
	verifier := oauth2.GenerateVerifier()

	unknown := *c.OAuth
	unknown.ClientID = "no-such-client"
	res := b.get(t, unknown.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
	require.Equal(t, http.StatusBadRequest, res.Status)
	require.Nil(t, res.Location)
	require.Contains(t, res.Header.Get("Content-Type"), "text/html")

	evil := *c.OAuth
	evil.RedirectURL = "https://evil.example/cb"
	res = b.get(t, evil.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
	require.Equal(t, http.StatusBadRequest, res.Status)
	require.Nil(t, res.Location)
	require.NotContains(t, res.Body, "evil.example")
}

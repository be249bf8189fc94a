package idp_test

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/oidcproxy/oidcproxy/test/idp"
)

const callback = "http://127.0.0.1:9/callback"

func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{
		Jar:           jar,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func oauthConfig(authURL, tokenURL, id, secret string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: id, ClientSecret: secret, RedirectURL: callback,
		Endpoint: oauth2.Endpoint{AuthURL: authURL, TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInHeader},
		Scopes:   []string{"openid", "offline_access"},
	}
}

func TestOPLoginReturnsTheCallbackWithCodeAndState(t *testing.T) {
	t.Parallel()
	op := idp.StartOP(t, idp.Client{ID: "c", Secret: "s", RedirectURIs: []string{callback}})
	conf := oauthConfig(op.Issuer+"/auth", op.Issuer+"/oauth/token", "c", "s")
	verifier := oauth2.GenerateVerifier()

	cb, err := op.Login(t.Context(), browser(t), conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
	require.NoError(t, err)
	require.Equal(t, "st", cb.Query().Get("state"))

	tok, err := conf.Exchange(t.Context(), cb.Query().Get("code"), oauth2.VerifierOption(verifier))
	require.NoError(t, err)
	require.NotEmpty(t, tok.RefreshToken)
	require.Equal(t, 1, op.TokenCalls())
}

func TestOPLoginWithAWrongPasswordFails(t *testing.T) {
	t.Parallel()
	op := idp.StartOP(t, idp.Client{ID: "c", Secret: "s", RedirectURIs: []string{callback}})
	op.Password = "not-the-password"
	conf := oauthConfig(op.Issuer+"/auth", op.Issuer+"/oauth/token", "c", "s")

	_, err := op.Login(t.Context(), browser(t), conf.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))

	require.ErrorContains(t, err, "credentials refused")
}

func TestOPDownDropsConnections(t *testing.T) {
	t.Parallel()
	op := idp.StartOP(t)
	op.SetDown(true)

	_, err := http.Get(op.ConfigURL)

	require.Error(t, err)
}

func TestFaultyTokenEndpointChecksPKCEAndTheClient(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{IssuerPath: "/tenant/v2.0"})
	conf := oauthConfig(f.Issuer+"/authorize", f.Issuer+"/token", f.ClientID, f.ClientSecret)
	code := func(verifier string) string {
		cb, err := f.Login(t.Context(), browser(t), conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
		require.NoError(t, err)
		return cb.Query().Get("code")
	}
	verifier := oauth2.GenerateVerifier()

	_, err := conf.Exchange(t.Context(), code(verifier), oauth2.VerifierOption(oauth2.GenerateVerifier()))
	require.ErrorContains(t, err, "invalid_grant")

	wrongSecret := oauthConfig(conf.Endpoint.AuthURL, conf.Endpoint.TokenURL, f.ClientID, "wrong")
	_, err = wrongSecret.Exchange(t.Context(), code(verifier), oauth2.VerifierOption(verifier))
	require.ErrorContains(t, err, "invalid_client")

	c := code(verifier)
	tok, err := conf.Exchange(t.Context(), c, oauth2.VerifierOption(verifier))
	require.NoError(t, err)
	require.NotEmpty(t, tok.Extra("id_token"))
	_, err = conf.Exchange(t.Context(), c, oauth2.VerifierOption(verifier))
	require.ErrorContains(t, err, "invalid_grant", "codes are single use")
	require.Equal(t, "client_secret_basic", f.LastToken().AuthMethod)

	// Its own RFC 7636 check: the plain method (an authorization request
	// naming none), and the verifier's form.
	plain := func(challenge string) string {
		cb, err := f.Login(t.Context(), browser(t), conf.AuthCodeURL("st", oauth2.SetAuthURLParam("code_challenge", challenge)))
		require.NoError(t, err)
		return cb.Query().Get("code")
	}
	_, err = conf.Exchange(t.Context(), plain(verifier), oauth2.VerifierOption(verifier))
	require.NoError(t, err, "plain: the verifier is the challenge")
	_, err = conf.Exchange(t.Context(), plain(verifier), oauth2.VerifierOption(oauth2.GenerateVerifier()))
	require.ErrorContains(t, err, "invalid_grant")
	short := "too-short-to-be-a-verifier"
	_, err = conf.Exchange(t.Context(), plain(short), oauth2.VerifierOption(short))
	require.ErrorContains(t, err, "invalid_grant", "a verifier has 43 to 128 characters")
}

func TestFaultyHangingEndpointsReleaseWhenTheClientGivesUp(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	f.Set(idp.Faults{DiscoveryHang: true})
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.ConfigURL, nil)
	require.NoError(t, err)

	_, err = http.DefaultClient.Do(req)

	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, 1, f.Calls().Discovery)
}

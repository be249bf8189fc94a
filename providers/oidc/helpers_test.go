package oidc_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
	"github.com/oidcproxy/oidcproxy/providers/oidc"
	"github.com/oidcproxy/oidcproxy/test/idp"
)

// callback is oidcproxy's redirect URL in these tests. Nothing listens
// there: the browser stops at the redirect and hands its URL back.
const callback = "http://127.0.0.1:9/auth/callback"

// countingTransport counts the requests of the client injected into the
// provider, to prove every upstream call goes through it.
type countingTransport struct {
	n    atomic.Int64
	base http.RoundTripper
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(r)
}

func newCountingClient(t *testing.T) (*http.Client, *countingTransport) {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	ct := &countingTransport{base: tr}
	return &http.Client{Transport: ct}, ct
}

// browser is a cookie-keeping client that stops at every redirect, as
// idp.OP.Login requires.
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

// loginer is what both test IdPs offer.
type loginer interface {
	Login(ctx context.Context, c *http.Client, authURL string) (*url.URL, error)
}

// flow is one login's secrets, as the core would keep them in a transaction.
type flow struct {
	State, Nonce, Verifier string
}

func newFlow() flow {
	return flow{State: rand.Text(), Nonce: rand.Text(), Verifier: rand.Text() + rand.Text()}
}

func (f flow) challenge() string {
	sum := sha256.Sum256([]byte(f.Verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func (f flow) request(scopes ...string) ports.AuthCodeRequest {
	return ports.AuthCodeRequest{State: f.State, Nonce: f.Nonce, CodeChallenge: f.challenge(), Scopes: scopes}
}

// loginCode runs the browser part of a login and returns the upstream code.
func loginCode(t *testing.T, p *oidc.Provider, l loginer, f flow, scopes ...string) string {
	t.Helper()
	cb, err := l.Login(t.Context(), browser(t), p.AuthCodeURL(f.request(scopes...)))
	require.NoError(t, err)
	require.Equal(t, callback, cb.Scheme+"://"+cb.Host+cb.Path, "the IdP must come back to our exact callback")
	require.Equal(t, f.State, cb.Query().Get("state"))
	code := cb.Query().Get("code")
	require.NotEmpty(t, code, "callback without code: %s", cb.RawQuery)
	return code
}

// login runs a whole login and returns what Exchange returned.
func login(t *testing.T, p *oidc.Provider, l loginer, scopes ...string) (domain.Identity, domain.UpstreamTokens, error) {
	t.Helper()
	f := newFlow()
	code := loginCode(t, p, l, f, scopes...)
	return p.Exchange(t.Context(), ports.ExchangeRequest{Code: code, Verifier: f.Verifier, Nonce: f.Nonce})
}

func faultySettings(f *idp.Faulty) oidc.Settings {
	return oidc.Settings{
		ConfigURL:    f.ConfigURL,
		ClientID:     f.ClientID,
		ClientSecret: f.ClientSecret,
		RedirectURL:  callback,
		Strict:       true,
		Timeout:      3 * time.Second,
	}
}

func newFaultyProvider(t *testing.T, f *idp.Faulty, edit ...func(*oidc.Settings)) *oidc.Provider {
	t.Helper()
	s := faultySettings(f)
	for _, e := range edit {
		e(&s)
	}
	client, _ := newCountingClient(t)
	p, err := oidc.New(t.Context(), s, client)
	require.NoError(t, err)
	return p
}

// requireCode asserts err is a *domain.Error with the code.
func requireCode(t *testing.T, err error, code domain.ErrorCode) *domain.Error {
	t.Helper()
	require.Error(t, err)
	e, ok := domain.AsError(err)
	require.True(t, ok, "not a *domain.Error: %v", err)
	require.Equal(t, code, e.Code, "error: %v", err)
	return e
}

func exchangeRequest(code string, f flow) ports.ExchangeRequest {
	return ports.ExchangeRequest{Code: code, Verifier: f.Verifier, Nonce: f.Nonce}
}

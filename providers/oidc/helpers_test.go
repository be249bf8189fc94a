package oidc_test

import (
	"context"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
	"github.com/oidcproxy/oidcproxy/providers/oidc"
	"github.com/oidcproxy/oidcproxy/test/idp"
	"github.com/oidcproxy/oidcproxy/test/providertest"
)

// callback is oidcproxy's redirect URL in these tests. Nothing listens
// there: the browser stops at the redirect and hands its URL back.
const callback = providertest.RedirectURL

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

// loginer is what both test IdPs offer.
type loginer interface {
	Login(ctx context.Context, c *http.Client, authURL string) (*url.URL, error)
}

// flow is one login's secrets, as the core keeps them in a transaction.
type flow = providertest.Flow

func newFlow() flow { return providertest.NewFlow() }

// loginCode runs the browser part of a login and returns the upstream code.
func loginCode(t *testing.T, p *oidc.Provider, l loginer, f flow, scopes ...string) string {
	t.Helper()
	cb, err := l.Login(t.Context(), providertest.Browser(t), p.AuthCodeURL(f.Request(scopes...)))
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

func newFaultyProvider(t *testing.T, f *idp.Faulty, edit ...func(*oidc.Settings)) *oidc.Provider {
	t.Helper()
	s := providertest.Settings(f)
	for _, e := range edit {
		e(&s)
	}
	client, _ := newCountingClient(t)
	p, err := oidc.New(t.Context(), s, client)
	require.NoError(t, err)
	return p
}

func exchangeRequest(code string, f flow) ports.ExchangeRequest {
	return ports.ExchangeRequest{Code: code, Verifier: f.Verifier, Nonce: f.Nonce}
}

package providertest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
	"github.com/oidcproxy/oidcproxy/providers/oidc"
	"github.com/oidcproxy/oidcproxy/test/idp"
)

// RedirectURL is oidcproxy's callback in these tests. Nothing listens
// there: the browser stops at the redirect and hands its URL back.
const RedirectURL = "http://127.0.0.1:9/auth/callback"

// Settings returns provider settings for an upstream: its discovery URL,
// client and secret, RedirectURL, strict discovery and a timeout that a
// loaded two-core machine running the race detector still meets (3 s was
// seen to expire there); tests of slow upstreams set their own.
func Settings(up *idp.Faulty) oidc.Settings {
	return oidc.Settings{
		ConfigURL:    up.ConfigURL,
		ClientID:     up.ClientID,
		ClientSecret: up.ClientSecret,
		RedirectURL:  RedirectURL,
		Strict:       true,
		Timeout:      10 * time.Second,
	}
}

// Flow is one login's secrets, as the core keeps them in a transaction.
type Flow struct {
	State, Nonce, Verifier string
}

// NewFlow returns fresh random secrets.
func NewFlow() Flow {
	return Flow{State: rand.Text(), Nonce: rand.Text(), Verifier: rand.Text() + rand.Text()}
}

// Challenge is the S256 challenge of the verifier.
func (f Flow) Challenge() string {
	sum := sha256.Sum256([]byte(f.Verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Request is the authorization request the core would make for scopes.
func (f Flow) Request(scopes ...string) ports.AuthCodeRequest {
	return ports.AuthCodeRequest{State: f.State, Nonce: f.Nonce, CodeChallenge: f.Challenge(), Scopes: scopes}
}

// Exchange is the exchange request for the callback cb of this flow,
// carrying its code and RFC 9207 iss.
func (f Flow) Exchange(cb *url.URL) ports.ExchangeRequest {
	q := cb.Query()
	return ports.ExchangeRequest{Code: q.Get("code"), Verifier: f.Verifier, Nonce: f.Nonce, Issuer: q.Get("iss")}
}

// Browser is a cookie-keeping client that stops at every redirect, as
// idp.Faulty.Login requires.
func Browser(t testing.TB) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{
		Jar:           jar,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Callback sends a browser to p's authorization URL for f and scopes and
// returns where the IdP sends it back, after checking that this is
// RedirectURL with f's state. The caller checks for a code or an error.
func Callback(t testing.TB, p ports.IdentityProvider, up *idp.Faulty, f Flow, scopes ...string) *url.URL {
	t.Helper()
	cb, err := up.Login(t.Context(), Browser(t), p.AuthCodeURL(f.Request(scopes...)))
	require.NoError(t, err)
	require.Equal(t, RedirectURL, cb.Scheme+"://"+cb.Host+cb.Path, "the IdP must come back to our exact callback")
	require.Equal(t, f.State, cb.Query().Get("state"))
	return cb
}

// Code runs the browser part of a login and returns the callback, which
// must carry a code.
func Code(t testing.TB, p ports.IdentityProvider, up *idp.Faulty, f Flow, scopes ...string) *url.URL {
	t.Helper()
	cb := Callback(t, p, up, f, scopes...)
	require.NotEmpty(t, cb.Query().Get("code"), "the IdP refused the authorization request: %s", cb.RawQuery)
	return cb
}

// Login runs a whole login and returns what Exchange returned.
func Login(t testing.TB, p ports.IdentityProvider, up *idp.Faulty, scopes ...string) (domain.Identity, domain.UpstreamTokens, error) {
	t.Helper()
	f := NewFlow()
	cb := Code(t, p, up, f, scopes...)
	return p.Exchange(t.Context(), f.Exchange(cb))
}

// RequireCode asserts that err is a *domain.Error with code.
func RequireCode(t testing.TB, err error, code domain.ErrorCode) *domain.Error {
	t.Helper()
	require.Error(t, err)
	e, ok := domain.AsError(err)
	require.True(t, ok, "not a *domain.Error: %v", err)
	require.Equal(t, code, e.Code, "error: %v", err)
	return e
}

// CountingClient is an HTTP client that counts its requests, to prove
// that every upstream call goes through the client given to a provider.
type CountingClient struct {
	*http.Client
	n atomic.Int64
}

// NewCountingClient returns a counting client with its own transport.
func NewCountingClient(t testing.TB) *CountingClient {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c := &CountingClient{}
	c.Client = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		c.n.Add(1)
		return tr.RoundTrip(r)
	})}
	return c
}

// Requests returns how many requests went through the client.
func (c *CountingClient) Requests() int64 { return c.n.Load() }

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// errOffline is what FirstRequest's transport answers every request with.
var errOffline = errors.New("providertest: offline")

// FirstRequest calls build with a client whose transport refuses every
// request, and returns the URL of the first request build made (where a
// preset looks for its discovery document when ConfigURL is unset), or ""
// when it made none. build's error is returned too.
func FirstRequest(t testing.TB, build func(*http.Client) error) (string, error) {
	t.Helper()
	var (
		mu    sync.Mutex
		first string
	)
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		defer mu.Unlock()
		if first == "" {
			first = r.URL.String()
		}
		return nil, errOffline
	})}
	err := build(client)
	mu.Lock()
	defer mu.Unlock()
	return first, err
}

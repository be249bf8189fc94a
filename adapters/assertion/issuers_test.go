package assertion_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/assertion"
	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/test/idp"
)

// clock is a settable time for the cache.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }

func newIssuers(t *testing.T, c *clock, issuers ...string) *assertion.Issuers {
	t.Helper()
	i, err := assertion.NewIssuers(assertion.IssuerOptions{Issuers: issuers, Client: &http.Client{Timeout: 5 * time.Second}, Now: c.Now})
	require.NoError(t, err)
	return i
}

func TestIssuersFetchTheKeysThroughDiscoveryAndCacheThem(t *testing.T) {
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	c := &clock{now: time.Now()}
	i := newIssuers(t, c, f.Issuer)

	set, err := i.IssuerJWKS(t.Context(), f.Issuer, false)
	require.NoError(t, err)
	// The keys verify what the IdP signs.
	token, err := f.SignJWT(f.IDJAGClaims("https://as.example", "client-1", "https://as.example/mcp", time.Now()), jose.ES256, idp.IDJAGType)
	require.NoError(t, err)
	a, err := assertion.Verifier{}.VerifyAssertion(token, set, domain.AssertionAlgorithms)
	require.NoError(t, err)
	require.Equal(t, idp.IDJAGType, a.Type)

	_, err = i.IssuerJWKS(t.Context(), f.Issuer, false)
	require.NoError(t, err)
	_, err = i.IssuerJWKS(t.Context(), f.Issuer, true)
	require.NoError(t, err)
	require.Equal(t, 1, f.Calls().JWKS, "cached, and a forced refresh waits for the minimum age")

	c.Advance(assertion.MinKeysTTL)
	_, err = i.IssuerJWKS(t.Context(), f.Issuer, true)
	require.NoError(t, err)
	require.Equal(t, 2, f.Calls().JWKS, "a forced refresh once the set is old enough")

	c.Advance(assertion.DefaultKeysTTL)
	_, err = i.IssuerJWKS(t.Context(), f.Issuer, false)
	require.NoError(t, err)
	require.Equal(t, 3, f.Calls().JWKS, "expired by its max-age")
}

func TestIssuersNeverContactAnUntrustedIssuer(t *testing.T) {
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	i := newIssuers(t, &clock{now: time.Now()}, "https://trusted.example")
	_, err := i.IssuerJWKS(t.Context(), f.Issuer, false)
	require.Error(t, err)
	require.Zero(t, f.Calls().Discovery)
}

func TestIssuersRefuseADiscoveryDocumentOfAnotherIssuerAndRememberTheFailure(t *testing.T) {
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	f.Update(func(x *idp.Faults) { x.DiscoveryIssuer = "https://impostor.example" })
	c := &clock{now: time.Now()}
	i := newIssuers(t, c, f.Issuer)
	_, err := i.IssuerJWKS(t.Context(), f.Issuer, false)
	require.ErrorContains(t, err, "another issuer")
	_, err = i.IssuerJWKS(t.Context(), f.Issuer, true)
	require.Error(t, err)
	require.Equal(t, 1, f.Calls().Discovery, "the failure is remembered")
	require.Zero(t, f.Calls().JWKS)

	f.Update(func(x *idp.Faults) { x.DiscoveryIssuer = "" })
	c.Advance(assertion.FailureTTL)
	_, err = i.IssuerJWKS(t.Context(), f.Issuer, false)
	require.NoError(t, err)
}

func TestIssuerURLsMustBeIssuerIdentifiers(t *testing.T) {
	for _, bad := range []string{"http://idp.example", "https://idp.example?x=1", "https://idp.example#f", "idp.example", "https://u@idp.example"} {
		_, err := assertion.CheckIssuerURL(bad)
		require.Error(t, err, bad)
	}
	insecure, err := assertion.CheckIssuerURL("http://127.0.0.1:8080")
	require.NoError(t, err)
	require.True(t, insecure)
	insecure, err = assertion.CheckIssuerURL("https://idp.example/tenant")
	require.NoError(t, err)
	require.False(t, insecure)
}

// A caller that gives up must not poison the cache for everyone else: the
// fetch does not run on the caller's context, so a request cancelled
// while it forces a refresh leaves the next caller the keys.
func TestACancelledCallerDoesNotMakeTheIssuersKeysFail(t *testing.T) {
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	c := &clock{now: time.Now()}
	i := newIssuers(t, c, f.Issuer)

	gone, cancel := context.WithCancel(t.Context())
	cancel()
	_, _ = i.IssuerJWKS(gone, f.Issuer, true)

	set, err := i.IssuerJWKS(t.Context(), f.Issuer, false)
	require.NoError(t, err, "the next caller gets the keys")
	require.NotEmpty(t, set)
}

package providers_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/ports"
	"github.com/oidcproxy/oidcproxy/providers"
	"github.com/oidcproxy/oidcproxy/providers/oidc"
	"github.com/oidcproxy/oidcproxy/test/idp"
)

func TestUnknownProviderErrorListsTheKnownNamesSorted(t *testing.T) {
	// Not parallel: it adds entries to the package-level registry.
	fake := func(context.Context, oidc.Settings, *http.Client) (ports.IdentityProvider, error) { return nil, nil }
	providers.Registry["zeta"] = fake
	providers.Registry["alpha"] = fake
	t.Cleanup(func() {
		delete(providers.Registry, "zeta")
		delete(providers.Registry, "alpha")
	})

	_, err := providers.New(t.Context(), "okta", oidc.Settings{}, http.DefaultClient)

	require.EqualError(t, err, `unknown provider "okta" (known: alpha, auth0, azure, google, oidc, zeta)`)
	require.Equal(t, []string{"alpha", "auth0", "azure", "google", "oidc", "zeta"}, providers.Names())
}

func TestOIDCIsRegistered(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})

	p, err := providers.New(t.Context(), "oidc", oidc.Settings{
		ConfigURL:    f.ConfigURL,
		ClientID:     f.ClientID,
		ClientSecret: f.ClientSecret,
		RedirectURL:  "http://127.0.0.1:9/auth/callback",
		Timeout:      3 * time.Second,
	}, &http.Client{})

	require.NoError(t, err)
	require.Equal(t, "oidc", p.Name())
	require.Implements(t, (*ports.Refresher)(nil), p)
	require.Implements(t, (*ports.Revoker)(nil), p)
	require.Implements(t, (*ports.ReadinessChecker)(nil), p)
}

func TestAFailedConstructionReturnsANilProvider(t *testing.T) {
	t.Parallel()

	p, err := providers.New(t.Context(), "oidc", oidc.Settings{}, &http.Client{})

	require.ErrorContains(t, err, "providers: new oidc: oidc: new provider:")
	require.True(t, p == nil, "a typed nil inside the interface would pass a nil check by callers")
}

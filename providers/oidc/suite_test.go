package oidc_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/oidcproxy/oidcproxy/ports"
	"github.com/oidcproxy/oidcproxy/providers/oidc"
	"github.com/oidcproxy/oidcproxy/test/idp"
	"github.com/oidcproxy/oidcproxy/test/providertest"
)

func TestTheGenericProviderPassesTheProviderSuiteAgainstKeycloak(t *testing.T) {
	t.Parallel()
	providertest.Run(t, providertest.Case{
		Name: oidc.Name,
		New: func(ctx context.Context, s oidc.Settings, c *http.Client) (ports.IdentityProvider, error) {
			return oidc.New(ctx, s, c)
		},
		Upstream:     func(t testing.TB, o idp.FaultyOptions) *idp.Faulty { return idp.NewKeycloak(t, o) },
		Scopes:       []string{"email", "profile"},
		GrantedScope: "openid offline_access email profile",
		Claims:       map[string]any{"preferred_username": "faulty-user"},
	})
}

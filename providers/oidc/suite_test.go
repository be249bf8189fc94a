package oidc_test

import (
	"testing"

	"github.com/oidcproxy/oidcproxy/providers/oidc"
	"github.com/oidcproxy/oidcproxy/test/idp"
	"github.com/oidcproxy/oidcproxy/test/providertest"
)

func TestTheGenericProviderPassesTheProviderSuiteAgainstKeycloak(t *testing.T) {
	t.Parallel()
	providertest.Run(t, providertest.Case{
		Name:         oidc.Name,
		Upstream:     func(t testing.TB, o idp.FaultyOptions) *idp.Faulty { return idp.NewKeycloak(t, o) },
		Scopes:       []string{"email", "profile"},
		GrantedScope: "openid offline_access email profile",
		Claims:       map[string]any{"preferred_username": "faulty-user"},
	})
}

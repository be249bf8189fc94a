package domain_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
)

func TestDefaultScopesAreTheRequiredOnesElseTheSupportedOpenIDBasics(t *testing.T) {
	cases := []struct {
		name                string
		required, supported []string
		want                []string
	}{
		{"the required scopes win", []string{"mcp:read"}, []string{"openid", "profile", "email", "mcp:read"}, []string{"mcp:read"}},
		{"without required ones, the OpenID basics", nil, []string{"offline_access", "email", "profile", "openid"}, []string{"openid", "profile", "email"}},
		{"only the supported basics", nil, []string{"openid", "mcp"}, []string{"openid"}},
		{"none supported, none granted", nil, []string{"mcp"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, domain.DefaultScopes(tc.required, tc.supported))
		})
	}
}

func TestDefaultScopesDoNotShareTheRequiredSlice(t *testing.T) {
	required := []string{"mcp"}
	got := domain.DefaultScopes(required, nil)
	got[0] = "changed"
	require.Equal(t, []string{"mcp"}, required)
}

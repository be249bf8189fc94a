package usecase_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain/usecase"
	"github.com/oidcproxy/oidcproxy/ports"
)

func TestARequestWithoutScopeIsGrantedTheRequiredScopesElseTheOpenIDBasics(t *testing.T) {
	cases := []struct {
		name     string
		required []string
		want     string
	}{
		{"without required scopes, the supported OpenID basics", nil, "openid"},
		{"the scopes the MCP server requires", []string{"mcp"}, "mcp"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(s *usecase.Settings) { s.RequiredScopes = tc.required })
			c := h.register(t)
			cmd := h.authorizeCommand(c)
			cmd.Scope = ""
			res, err := h.app.StartAuthorization.Handle(t.Context(), cmd)
			require.NoError(t, err)
			require.NotNil(t, res.Upstream, "consent was asked for")
			cb, err := h.callback(t, *res.Upstream, ports.CompleteCallbackCommand{})
			require.NoError(t, err)
			tok, err := h.exchange(t, c, cb.Code)
			require.NoError(t, err)
			require.Equal(t, tc.want, tok.Scope)
		})
	}
}

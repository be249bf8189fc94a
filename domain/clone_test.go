package domain_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
)

func TestCloneSharesNothingMutable(t *testing.T) {
	g := domain.Grant{
		Scopes:         []string{"a"},
		SealedUpstream: []byte{1},
		Identity: domain.Identity{Claims: map[string]any{
			"groups": []any{"x", map[string]any{"k": "v"}},
			"roles":  []string{"r"},
			"attrs":  map[string]string{"a": "b"},
		}},
	}
	c := g.Clone()
	c.Scopes[0] = "changed"
	c.SealedUpstream[0] = 9
	c.Identity.Claims["groups"].([]any)[1].(map[string]any)["k"] = "changed"
	c.Identity.Claims["roles"].([]string)[0] = "changed"
	c.Identity.Claims["attrs"].(map[string]string)["a"] = "changed"
	c.Identity.Claims["new"] = true

	require.Equal(t, []string{"a"}, g.Scopes)
	require.Equal(t, []byte{1}, g.SealedUpstream)
	require.Equal(t, "v", g.Identity.Claims["groups"].([]any)[1].(map[string]any)["k"])
	require.Equal(t, []string{"r"}, g.Identity.Claims["roles"])
	require.Equal(t, map[string]string{"a": "b"}, g.Identity.Claims["attrs"])
	require.NotContains(t, g.Identity.Claims, "new")

	cl := domain.Client{RedirectURIs: []string{"u"}, SecretHash: []byte("h")}
	cc := cl.Clone()
	cc.RedirectURIs[0], cc.SecretHash[0] = "x", 'x'
	require.Equal(t, "u", cl.RedirectURIs[0])
	require.Equal(t, byte('h'), cl.SecretHash[0])
}

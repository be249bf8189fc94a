package usecase_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/tokens"
	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/domain/usecase"
	"github.com/oidcproxy/oidcproxy/ports"
)

// admin builds the operator's use cases on the harness's store, with the
// real key set validator.
func (h *harness) admin(t *testing.T) ports.Admin {
	t.Helper()
	a, err := usecase.NewAdmin(h.store, tokens.KeySets{}, h.clock, random{}, []string{"openid", "mcp", "mcp:tools"})
	require.NoError(t, err)
	return a
}

// publicJWKS is a JWK Set holding one fresh EC P-256 public key.
func publicJWKS(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	doc, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "k1"}}})
	require.NoError(t, err)
	return doc
}

func TestNewAdminNamesEveryMissingDependency(t *testing.T) {
	_, err := usecase.NewAdmin(nil, nil, nil, nil, nil)
	require.Error(t, err)
	for _, want := range []string{"store", "key set validator", "clock", "random source"} {
		require.Contains(t, err.Error(), "nil "+want)
	}
}

func TestCreateClientMakesMachineClientsOnly(t *testing.T) {
	h := newHarness(t, nil)
	a := h.admin(t)
	jwks := publicJWKS(t)
	privateKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	privateJWKS, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: privateKey}}})
	require.NoError(t, err)

	t.Run("with a generated secret, shown once and stored as a hash", func(t *testing.T) {
		res, err := a.CreateClient.Handle(t.Context(), ports.CreateClientCommand{Name: "  nightly CI  ", Scope: "mcp openid mcp"})
		require.NoError(t, err)
		require.NotEmpty(t, res.ClientSecret)
		require.Equal(t, "nightly CI", res.Client.Name)
		require.Equal(t, "mcp openid", res.Client.Scope)
		require.True(t, res.Client.Operator)

		stored, err := h.store.GetClient(t.Context(), res.Client.ID)
		require.NoError(t, err)
		require.Equal(t, domain.AuthClientSecretBasic, stored.TokenEndpointAuthMethod)
		require.Equal(t, []string{domain.GrantClientCredentials}, stored.GrantTypes)
		require.True(t, stored.Operator)
		require.Empty(t, stored.RedirectURIs, "a machine has no browser to send back")
		require.False(t, stored.IsPublic())
		require.True(t, domain.EqualHash(res.ClientSecret, string(stored.SecretHash)))
		require.NotContains(t, string(stored.SecretHash), res.ClientSecret)
		require.Equal(t, h.clock.Now(), stored.CreatedAt)
	})

	t.Run("with a public key set, and no secret", func(t *testing.T) {
		res, err := a.CreateClient.Handle(t.Context(), ports.CreateClientCommand{
			Name: "agent runtime", Scope: "mcp:tools", AuthMethod: domain.AuthPrivateKeyJWT, JWKS: jwks,
		})
		require.NoError(t, err)
		require.Empty(t, res.ClientSecret)
		require.True(t, res.Client.HasJWKS)
		stored, err := h.store.GetClient(t.Context(), res.Client.ID)
		require.NoError(t, err)
		require.Equal(t, domain.AuthPrivateKeyJWT, stored.TokenEndpointAuthMethod)
		require.Empty(t, stored.SecretHash)
		var set jose.JSONWebKeySet
		require.NoError(t, json.Unmarshal(stored.JWKS, &set))
		require.Len(t, set.Keys, 1)
		require.Equal(t, "k1", set.Keys[0].KeyID)
	})

	for _, tc := range []struct {
		name string
		cmd  ports.CreateClientCommand
		code domain.ErrorCode
		says string
	}{
		{"no name", ports.CreateClientCommand{Name: "  "}, domain.CodeInvalidRequest, "name is required"},
		{"a long name", ports.CreateClientCommand{Name: strings.Repeat("n", 201)}, domain.CodeInvalidRequest, "longer than"},
		{"a name with a line break", ports.CreateClientCommand{Name: "ci\nadmin"}, domain.CodeInvalidRequest, "control characters"},
		{"a scope the server does not support", ports.CreateClientCommand{Name: "ci", Scope: "mcp admin"}, domain.CodeInvalidScope, `"admin" is not supported`},
		{"a malformed scope", ports.CreateClientCommand{Name: "ci", Scope: `mcp "x"`}, domain.CodeInvalidScope, "forbidden character"},
		{"a key set for a secret client", ports.CreateClientCommand{Name: "ci", JWKS: jwks}, domain.CodeInvalidRequest, "for private_key_jwt"},
		{"private_key_jwt without keys", ports.CreateClientCommand{Name: "ci", AuthMethod: domain.AuthPrivateKeyJWT}, domain.CodeInvalidRequest, "needs the client's public keys"},
		{"a private key", ports.CreateClientCommand{Name: "ci", AuthMethod: domain.AuthPrivateKeyJWT, JWKS: privateJWKS}, domain.CodeInvalidRequest, "private key"},
		{"not a key set", ports.CreateClientCommand{Name: "ci", AuthMethod: domain.AuthPrivateKeyJWT, JWKS: []byte("{")}, domain.CodeInvalidRequest, "not a JWK Set"},
		{"a public client", ports.CreateClientCommand{Name: "ci", AuthMethod: domain.AuthNone}, domain.CodeInvalidRequest, "must be client_secret_basic or private_key_jwt"},
		{"client_secret_post", ports.CreateClientCommand{Name: "ci", AuthMethod: domain.AuthClientSecretPost}, domain.CodeInvalidRequest, "must be client_secret_basic or private_key_jwt"},
	} {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			before, err := a.ListClients.Handle(t.Context(), ports.ListClientsCommand{})
			require.NoError(t, err)
			_, err = a.CreateClient.Handle(t.Context(), tc.cmd)
			require.Equal(t, tc.code, domain.CodeOf(err), "%v", err)
			e, _ := domain.AsError(err)
			require.Contains(t, e.Description, tc.says)
			after, err := a.ListClients.Handle(t.Context(), ports.ListClientsCommand{})
			require.NoError(t, err)
			require.Equal(t, before, after, "nothing was stored")
		})
	}
}

func TestListClientsPagesWithoutSecrets(t *testing.T) {
	h := newHarness(t, nil)
	a := h.admin(t)
	dynamic := h.register(t)
	machine, err := a.CreateClient.Handle(t.Context(), ports.CreateClientCommand{Name: "ci"})
	require.NoError(t, err)
	for range 3 {
		h.register(t)
	}

	all, err := a.ListClients.Handle(t.Context(), ports.ListClientsCommand{})
	require.NoError(t, err)
	require.Len(t, all.Clients, 5)
	require.Empty(t, all.Next, "one page holds them all")
	kinds := map[string]bool{}
	for _, c := range all.Clients {
		kinds[c.ID] = c.Operator
	}
	require.Equal(t, map[string]bool{dynamic.id: false, machine.Client.ID: true}, map[string]bool{dynamic.id: kinds[dynamic.id], machine.Client.ID: kinds[machine.Client.ID]})

	var paged []ports.ClientInfo
	cmd := ports.ListClientsCommand{Limit: 2}
	for range 5 {
		page, err := a.ListClients.Handle(t.Context(), cmd)
		require.NoError(t, err)
		paged = append(paged, page.Clients...)
		if page.Next == "" {
			break
		}
		require.Len(t, page.Clients, 2)
		cmd.After = page.Next
	}
	require.Equal(t, all.Clients, paged)

	huge, err := a.ListClients.Handle(t.Context(), ports.ListClientsCommand{Limit: 1 << 30})
	require.NoError(t, err, "a page larger than the bound is cut to it")
	require.Len(t, huge.Clients, 5)
	_, err = a.ListClients.Handle(t.Context(), ports.ListClientsCommand{Limit: -1})
	require.Equal(t, domain.CodeInvalidRequest, domain.CodeOf(err))
	_, err = a.ListClients.Handle(t.Context(), ports.ListClientsCommand{After: "\xff"})
	require.Equal(t, domain.CodeInvalidRequest, domain.CodeOf(err))
}

func TestGrantsListWithTheirUseAndRevokeAtOnce(t *testing.T) {
	h := newHarness(t, nil)
	a := h.admin(t)
	c1, c2 := h.register(t), h.register(t)
	first := h.login(t, c1)
	second := h.login(t, c2)
	h.idp.script(func(p *scriptedIdP) { p.identity.Subject = "bob" })
	bobs := h.login(t, c1)

	t.Run("a user's grants, a client's grants, or both", func(t *testing.T) {
		for _, tc := range []struct {
			cmd  ports.ListGrantsCommand
			want []string
		}{
			{ports.ListGrantsCommand{Subject: "alice"}, []string{first.GrantID, second.GrantID}},
			{ports.ListGrantsCommand{ClientID: c1.id}, []string{first.GrantID, bobs.GrantID}},
			{ports.ListGrantsCommand{Subject: "alice", ClientID: c2.id}, []string{second.GrantID}},
			{ports.ListGrantsCommand{}, []string{first.GrantID, second.GrantID, bobs.GrantID}},
			{ports.ListGrantsCommand{Subject: "carol"}, []string{}},
		} {
			res, err := a.ListGrants.Handle(t.Context(), tc.cmd)
			require.NoError(t, err)
			ids := []string{}
			for _, g := range res.Grants {
				ids = append(ids, g.ID)
			}
			require.ElementsMatch(t, tc.want, ids, "%+v", tc.cmd)
		}
	})

	t.Run("a refresh records the grant's last use; an access token's use does not", func(t *testing.T) {
		res, err := a.ListGrants.Handle(t.Context(), ports.ListGrantsCommand{Subject: "alice", ClientID: c1.id})
		require.NoError(t, err)
		require.Len(t, res.Grants, 1)
		g := res.Grants[0]
		require.Equal(t, h.clock.Now(), g.CreatedAt)
		require.True(t, g.LastUsedAt.IsZero(), "never refreshed")
		require.Equal(t, []string{"openid", "mcp"}, g.Scopes)
		require.Equal(t, resource, g.Resource)

		h.clock.Advance(time.Minute)
		require.True(t, h.live(t, first.AccessToken))
		res, err = a.ListGrants.Handle(t.Context(), ports.ListGrantsCommand{Subject: "alice", ClientID: c1.id})
		require.NoError(t, err)
		require.True(t, res.Grants[0].LastUsedAt.IsZero(), "the bearer check writes nothing")

		refreshed, err := h.refresh(t, c1, first.RefreshToken)
		require.NoError(t, err)
		first = refreshed
		res, err = a.ListGrants.Handle(t.Context(), ports.ListGrantsCommand{Subject: "alice", ClientID: c1.id})
		require.NoError(t, err)
		require.Equal(t, h.clock.Now(), res.Grants[0].LastUsedAt)
		require.Equal(t, h.clock.Now().Add(24*time.Hour), res.Grants[0].ExpiresAt, "the refresh slid the expiry")
	})

	t.Run("pages follow Next", func(t *testing.T) {
		page, err := a.ListGrants.Handle(t.Context(), ports.ListGrantsCommand{Limit: 2})
		require.NoError(t, err)
		require.Len(t, page.Grants, 2)
		require.Equal(t, page.Grants[1].ID, page.Next)
		rest, err := a.ListGrants.Handle(t.Context(), ports.ListGrantsCommand{Limit: 2, After: page.Next})
		require.NoError(t, err)
		require.Len(t, rest.Grants, 1)
		require.Empty(t, rest.Next)
	})

	t.Run("revocation needs a target and ends every token of it at once", func(t *testing.T) {
		_, err := a.RevokeGrants.Handle(t.Context(), ports.RevokeGrantsCommand{})
		require.Equal(t, domain.CodeInvalidRequest, domain.CodeOf(err))
		_, err = a.RevokeGrants.Handle(t.Context(), ports.RevokeGrantsCommand{Subject: strings.Repeat("s", 5000)})
		require.Equal(t, domain.CodeInvalidRequest, domain.CodeOf(err))
		require.True(t, h.live(t, first.AccessToken))

		res, err := a.RevokeGrants.Handle(t.Context(), ports.RevokeGrantsCommand{Subject: "alice"})
		require.NoError(t, err)
		require.Equal(t, 2, res.Revoked)
		require.False(t, h.live(t, first.AccessToken))
		require.False(t, h.live(t, second.AccessToken))
		_, err = h.refresh(t, c1, first.RefreshToken)
		require.Equal(t, domain.CodeInvalidGrant, domain.CodeOf(err))
		require.True(t, h.live(t, bobs.AccessToken), "bob is another user")

		res, err = a.RevokeGrants.Handle(t.Context(), ports.RevokeGrantsCommand{GrantID: bobs.GrantID})
		require.NoError(t, err)
		require.Equal(t, 1, res.Revoked)
		require.False(t, h.live(t, bobs.AccessToken))
		res, err = a.RevokeGrants.Handle(t.Context(), ports.RevokeGrantsCommand{GrantID: bobs.GrantID})
		require.NoError(t, err)
		require.Zero(t, res.Revoked, "already gone")
	})
}

func TestDeleteClientEndsItsTokens(t *testing.T) {
	h := newHarness(t, nil)
	a := h.admin(t)
	c := h.register(t)
	tok := h.login(t, c)
	other := h.register(t)
	otherTok := h.login(t, other)

	_, err := a.DeleteClient.Handle(t.Context(), ports.DeleteClientCommand{})
	require.Equal(t, domain.CodeInvalidRequest, domain.CodeOf(err))
	_, err = a.DeleteClient.Handle(t.Context(), ports.DeleteClientCommand{ClientID: "https://app.example.com/client.json"})
	require.Equal(t, domain.CodeInvalidRequest, domain.CodeOf(err))
	require.True(t, errors.Is(err, domain.ErrNotFound), "the admin listener answers 404")

	res, err := a.DeleteClient.Handle(t.Context(), ports.DeleteClientCommand{ClientID: c.id})
	require.NoError(t, err)
	require.Equal(t, ports.DeleteClientResult{ClientID: c.id, RevokedGrants: 1}, res)
	require.False(t, h.live(t, tok.AccessToken))
	_, err = h.refresh(t, c, tok.RefreshToken)
	require.Equal(t, domain.CodeInvalidClient, domain.CodeOf(err), "the client itself is gone")
	require.True(t, h.live(t, otherTok.AccessToken))
}

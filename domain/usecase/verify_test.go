package usecase_test

import (
	"crypto/rand"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/memstore"
	"github.com/oidcproxy/oidcproxy/adapters/seal"
	"github.com/oidcproxy/oidcproxy/adapters/tokens"
	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/domain/usecase"
	"github.com/oidcproxy/oidcproxy/ports"
	"github.com/oidcproxy/oidcproxy/providers/oidc"
	"github.com/oidcproxy/oidcproxy/test/idp"
)

const (
	issuer   = "https://proxy.example"
	resource = "https://proxy.example/mcp"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

type random struct{}

func (random) Token() string { return rand.Text() }

// fixture is the use cases over real parts: memstore, the ES256 key ring,
// AES-GCM sealing, and the generic OIDC provider pointed at the
// fault-injecting IdP (only discovery is used here).
type fixture struct {
	app    ports.Application
	store  *memstore.Store
	tokens *tokens.Issuer
	sealer *seal.Sealer
	clock  *clock
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	p, err := oidc.New(t.Context(), oidc.Settings{ConfigURL: f.ConfigURL, ClientID: f.ClientID, ClientSecret: f.ClientSecret,
		RedirectURL: "https://proxy.example/auth/callback", Strict: true, Timeout: 3 * time.Second}, http.DefaultClient)
	require.NoError(t, err)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	sealer, err := seal.New(key)
	require.NoError(t, err)
	store := memstore.New()
	c := &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	iss, err := tokens.Open(t.Context(), store, sealer, c)
	require.NoError(t, err)
	deps := usecase.Deps{
		Store: store, Provider: p, Tokens: iss, Sealer: sealer, Clock: c, Random: random{},
		Logger: discardLogger(), Settings: usecase.Settings{Issuer: issuer, Resource: resource, AccessTokenTTL: time.Hour,
			RefreshTokenTTL: 24 * time.Hour, Consent: domain.ConsentAlways, SupportedScopes: []string{"openid", "mcp"}},
	}
	app, err := usecase.NewApplication(deps)
	require.NoError(t, err)
	// Wiring mistakes fail at construction, not at the first request.
	broken := deps
	broken.Logger, broken.Settings.Issuer = nil, ""
	_, err = usecase.NewApplication(broken)
	require.ErrorContains(t, err, "nil logger")
	require.ErrorContains(t, err, "issuer is empty")
	return &fixture{app: app, store: store, tokens: iss, sealer: sealer, clock: c}
}

// mint stores a live grant and signs a token for it, edited by edit.
func (f *fixture) mint(t *testing.T, edit func(*domain.AccessToken)) string {
	t.Helper()
	now := f.clock.Now()
	g := domain.Grant{ID: rand.Text(), ClientID: "c", Subject: "alice", Resource: resource, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	require.NoError(t, f.store.CreateGrant(t.Context(), g, domain.AuthorizationCode{Hash: rand.Text(), ClientID: "c", GrantID: g.ID,
		IssuedAt: now, ExpiresAt: now.Add(time.Minute)}))
	at := domain.AccessToken{Issuer: issuer, Subject: "alice", Audience: resource, ClientID: "c", Scopes: []string{"mcp"},
		GrantID: g.ID, JTI: rand.Text(), IssuedAt: now, NotBefore: now, ExpiresAt: now.Add(time.Hour)}
	if edit != nil {
		edit(&at)
	}
	tok, err := f.tokens.Issue(t.Context(), at)
	require.NoError(t, err)
	return tok
}

func TestVerifyAccessTokenJudgesIssuerAudienceTimeScopeAndRevocation(t *testing.T) {
	f := newFixture(t)
	verify := func(token string, scopes ...string) error {
		_, err := f.app.VerifyAccessToken.Handle(t.Context(), ports.VerifyAccessTokenCommand{Token: token, Resource: resource, RequiredScopes: scopes})
		return err
	}
	require.NoError(t, verify(f.mint(t, nil), "mcp"))

	cases := map[string]struct {
		edit func(*domain.AccessToken)
		code domain.ErrorCode
	}{
		"another audience":      {func(a *domain.AccessToken) { a.Audience = "https://other.example/mcp" }, domain.CodeInvalidToken},
		"another issuer":        {func(a *domain.AccessToken) { a.Issuer = "https://evil.example" }, domain.CodeInvalidToken},
		"expired":               {func(a *domain.AccessToken) { a.ExpiresAt = a.IssuedAt.Add(-time.Minute) }, domain.CodeInvalidToken},
		"not yet valid":         {func(a *domain.AccessToken) { a.NotBefore = a.IssuedAt.Add(time.Hour) }, domain.CodeInvalidToken},
		"grant does not exist":  {func(a *domain.AccessToken) { a.GrantID = "gone" }, domain.CodeInvalidToken},
		"missing a scope":       {func(a *domain.AccessToken) { a.Scopes = []string{"openid"} }, domain.CodeInsufficientScope},
		"expired within leeway": {func(a *domain.AccessToken) { a.ExpiresAt = a.IssuedAt.Add(-10 * time.Second) }, ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := verify(f.mint(t, tc.edit), "mcp")
			if tc.code == "" {
				require.NoError(t, err)
				return
			}
			require.Equal(t, tc.code, domain.CodeOf(err), "%v", err)
		})
	}

	t.Run("revoked after a first, cached verification", func(t *testing.T) {
		var grant string
		tok := f.mint(t, func(a *domain.AccessToken) { grant = a.GrantID })
		require.NoError(t, verify(tok))
		require.NoError(t, f.store.RevokeGrant(t.Context(), grant))
		require.Equal(t, domain.CodeInvalidToken, domain.CodeOf(verify(tok)))
	})
	t.Run("garbage and empty", func(t *testing.T) {
		require.Equal(t, domain.CodeInvalidToken, domain.CodeOf(verify("")))
		require.Equal(t, domain.CodeInvalidToken, domain.CodeOf(verify("a.b.c")))
	})
}

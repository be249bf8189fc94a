package usecase_test

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/memstore"
	"github.com/oidcproxy/oidcproxy/adapters/seal"
	"github.com/oidcproxy/oidcproxy/adapters/tokens"
	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/domain/usecase"
	"github.com/oidcproxy/oidcproxy/ports"
)

// fixture is the use cases over memstore, the ES256 key ring and AES-GCM
// sealing, with tokens minted directly (the identity provider plays no
// part in verifying our tokens: the scripted one stands in).
type fixture struct {
	app    ports.Application
	store  *memstore.Store
	tokens *tokens.Issuer
	sealer *seal.Sealer
	clock  *clock
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	sealer, err := seal.New(key)
	require.NoError(t, err)
	store := memstore.New()
	c := &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	iss, err := tokens.Open(t.Context(), store, sealer, c)
	require.NoError(t, err)
	settings := usecase.Settings{Issuer: issuer, Resource: resource, AccessTokenTTL: time.Hour,
		RefreshTokenTTL: 24 * time.Hour, Consent: domain.ConsentAlways, SupportedScopes: []string{"openid", "mcp"},
		IntrospectionSecret: introspectionSecret}
	app, err := usecase.NewApplication(store, newScriptedIdP(), iss, sealer, c, random{}, nil, nil, discardLogger(), settings)
	require.NoError(t, err)
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
		"another audience":     {func(a *domain.AccessToken) { a.Audience = "https://other.example/mcp" }, domain.CodeInvalidToken},
		"another issuer":       {func(a *domain.AccessToken) { a.Issuer = "https://evil.example" }, domain.CodeInvalidToken},
		"expired":              {func(a *domain.AccessToken) { a.ExpiresAt = a.IssuedAt.Add(-time.Minute) }, domain.CodeInvalidToken},
		"not yet valid":        {func(a *domain.AccessToken) { a.NotBefore = a.IssuedAt.Add(time.Hour) }, domain.CodeInvalidToken},
		"grant does not exist": {func(a *domain.AccessToken) { a.GrantID = "gone" }, domain.CodeInvalidToken},
		"missing a scope":      {func(a *domain.AccessToken) { a.Scopes = []string{"openid"} }, domain.CodeInsufficientScope},
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

// Our own tokens are judged on our own clock, which signed them: there is
// no skew to forgive, so exp and nbf hold to the nanosecond (RFC 9068 4,
// RFC 7519 4.1.4 and 4.1.5), at the gateway and at /introspect alike.
func TestOurOwnTokensGetNoClockLeeway(t *testing.T) {
	f := newFixture(t)
	start := f.clock.Now()
	exp, nbf := start.Add(time.Minute), start.Add(10*time.Minute)
	expiring := f.mint(t, func(a *domain.AccessToken) { a.ExpiresAt = exp })
	early := f.mint(t, func(a *domain.AccessToken) { a.NotBefore, a.ExpiresAt = nbf, nbf.Add(time.Hour) })

	verify := func(token string) error {
		_, err := f.app.VerifyAccessToken.Handle(t.Context(), ports.VerifyAccessTokenCommand{Token: token, Resource: resource})
		return err
	}
	active := func(token string) bool {
		res, err := f.app.Introspect.Handle(t.Context(), ports.IntrospectCommand{Secret: introspectionSecret, Token: token})
		require.NoError(t, err)
		return res.Active
	}
	cases := []struct {
		name   string
		token  string
		at     time.Time
		active bool
	}{
		{"a nanosecond before exp", expiring, exp.Add(-time.Nanosecond), true},
		{"at exp", expiring, exp, false},
		{"a nanosecond after exp", expiring, exp.Add(time.Nanosecond), false},
		{"ten seconds after exp", expiring, exp.Add(10 * time.Second), false},
		{"ten seconds before nbf", early, nbf.Add(-10 * time.Second), false},
		{"a nanosecond before nbf", early, nbf.Add(-time.Nanosecond), false},
		{"at nbf", early, nbf, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f.clock.Set(tc.at)
			err := verify(tc.token)
			if tc.active {
				require.NoError(t, err)
			} else {
				require.Equal(t, domain.CodeInvalidToken, domain.CodeOf(err), "%v", err)
			}
			require.Equal(t, tc.active, active(tc.token), "introspection")
		})
	}
}

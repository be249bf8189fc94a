package usecase_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"net/url"
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
)

const (
	issuer   = "https://proxy.example"
	resource = "https://proxy.example/mcp"
	// introspectionSecret is what resource servers present at /introspect.
	introspectionSecret = "introspection-secret"
)

// clock is the time the test sets.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }

// random is a real random source.
type random struct{}

func (random) Token() string { return rand.Text() }

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// scriptedIdP is the upstream identity provider as the use cases see it
// (ports.IdentityProvider and ports.Refresher), answering what each test
// scripts: an identity and tokens, or an error.
//
// A scripted provider is the right part here, where everywhere else the
// tests run a real OpenID provider: these tests isolate the use-case rules
// (what the callback makes of an identity or an upstream error, when a
// code burns, when a refresh revokes), and need to hand the use cases
// inputs a real provider adapter would never let through (a verified
// identity whose subject holds CR LF). Speaking OpenID Connect to a real
// provider is the provider adapter's job; test/providertest and test/e2e
// exercise it against a real OP and the fault-injecting IdP.
type scriptedIdP struct {
	mu          sync.Mutex
	identity    domain.Identity
	upstream    domain.UpstreamTokens
	exchangeErr error
	refreshErr  error
	// refreshIdentity, when set, is the identity a refresh's new ID token
	// names; nil scripts an IdP that sends no new ID token.
	refreshIdentity *domain.Identity
	// trustEmail is the answer to TrustsEmail.
	trustEmail bool
	// issuer is the answer to Issuer: the upstream's issuer identifier,
	// "" for a provider that does not say.
	issuer    string
	exchanges []ports.ExchangeRequest
	refreshes int
	// onRefresh, when set, runs (once, outside the lock) before a refresh
	// answers, and its error becomes the answer: a test's way to let
	// another request act while this one waits on the IdP.
	onRefresh func() error
}

var (
	_ ports.IdentityProvider = (*scriptedIdP)(nil)
	_ ports.Refresher        = (*scriptedIdP)(nil)
	_ ports.EmailVerifier    = (*scriptedIdP)(nil)
	_ ports.IssuerIdentifier = (*scriptedIdP)(nil)
)

func newScriptedIdP() *scriptedIdP {
	return &scriptedIdP{
		identity: domain.Identity{Subject: "alice", Issuer: "https://idp.test", Email: "alice@example.com", EmailVerified: true, Name: "Alice"},
		upstream: domain.UpstreamTokens{AccessToken: "upstream-at", RefreshToken: "upstream-rt", TokenType: "Bearer"},
	}
}

func (p *scriptedIdP) Name() string { return "scripted" }

func (p *scriptedIdP) TrustsEmail() bool { return p.trustEmail }

func (p *scriptedIdP) Issuer() string { return p.issuer }

// AuthCodeURL puts the request's state in the URL, where a browser would
// carry it to the IdP and back.
func (p *scriptedIdP) AuthCodeURL(req ports.AuthCodeRequest) string {
	return "https://idp.test/authorize?" + url.Values{"state": {req.State}, "code_challenge": {req.CodeChallenge}}.Encode()
}

func (p *scriptedIdP) Exchange(_ context.Context, req ports.ExchangeRequest) (domain.Identity, domain.UpstreamTokens, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.exchanges = append(p.exchanges, req)
	if p.exchangeErr != nil {
		return domain.Identity{}, domain.UpstreamTokens{}, p.exchangeErr
	}
	return p.identity.Clone(), p.upstream, nil
}

func (p *scriptedIdP) Refresh(_ context.Context, current domain.UpstreamTokens) (ports.Refreshed, error) {
	p.mu.Lock()
	hook := p.onRefresh
	p.onRefresh = nil
	p.mu.Unlock()
	if hook != nil {
		if err := hook(); err != nil {
			return ports.Refreshed{}, err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refreshes++
	if p.refreshErr != nil {
		return ports.Refreshed{}, p.refreshErr
	}
	current.AccessToken += "+"
	current.Expiry = current.Expiry.Add(24 * time.Hour)
	out := ports.Refreshed{Tokens: current}
	if p.refreshIdentity != nil {
		id := p.refreshIdentity.Clone()
		out.Identity = &id
	}
	return out, nil
}

func (p *scriptedIdP) script(fn func(*scriptedIdP)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fn(p)
}

// harness is the use cases over memstore, the real key ring and sealer,
// and the scripted IdP, on a clock the test moves.
type harness struct {
	app   ports.Application
	store *memstore.Store
	idp   *scriptedIdP
	clock *clock
}

func newHarness(t *testing.T, edit func(*usecase.Settings)) *harness {
	t.Helper()
	return newHarnessWith(t, harnessOptions{settings: edit})
}

// harnessOptions adjust a harness before its use cases are built.
type harnessOptions struct {
	settings func(*usecase.Settings)
	// policies is the access policy source; nil is no policy.
	policies ports.PolicySource
	// idp scripts the IdP before the use cases ask it what it can do.
	idp func(*scriptedIdP)
	// opts turn on the application's optional capabilities.
	opts []usecase.Option
	// store, when set, wraps the in-memory store the use cases get (the
	// harness keeps reading the store itself).
	store func(*memstore.Store) ports.Store
}

func newHarnessWith(t *testing.T, o harnessOptions) *harness {
	t.Helper()
	edit := o.settings
	key := make([]byte, seal.KeySize)
	_, _ = rand.Read(key)
	sealer, err := seal.New(key)
	require.NoError(t, err)
	store := memstore.New()
	c := &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	iss, err := tokens.Open(t.Context(), store, sealer, c)
	require.NoError(t, err)
	settings := usecase.Settings{
		Issuer: issuer, Resource: resource, SupportedScopes: []string{"openid", "mcp"},
		AccessTokenTTL: time.Hour, RefreshTokenTTL: 24 * time.Hour, RefreshReuseGrace: time.Minute, Consent: domain.ConsentOff,
	}
	if edit != nil {
		edit(&settings)
	}
	idp := newScriptedIdP()
	if o.idp != nil {
		o.idp(idp)
	}
	var used ports.Store = store
	if o.store != nil {
		used = o.store(store)
	}
	app, err := usecase.NewApplication(used, idp, iss, sealer, c, random{}, nil, o.policies, discardLogger(), settings, o.opts...)
	require.NoError(t, err)
	return &harness{app: app, store: store, idp: idp, clock: c}
}

// client is a registered public client and the PKCE verifier of its
// current flow.
type client struct {
	id, redirectURI, verifier string
}

func (h *harness) register(t *testing.T) client {
	t.Helper()
	res, err := h.app.RegisterClient.Handle(t.Context(), ports.RegisterClientCommand{RedirectURIs: []string{"http://127.0.0.1:7777/cb"}})
	require.NoError(t, err)
	return client{id: res.Client.ID, redirectURI: res.Client.RedirectURIs[0], verifier: rand.Text() + rand.Text()}
}

// challenge is the S256 challenge of verifier, computed here rather than
// with domain's helper, so that the tests do not share the code they test.
func challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func (h *harness) authorizeCommand(c client) ports.StartAuthorizationCommand {
	return ports.StartAuthorizationCommand{
		ClientID: c.id, RedirectURI: c.redirectURI, ResponseType: "code", State: "client-state", Scope: "openid mcp",
		CodeChallenge: challenge(c.verifier), CodeChallengeMethod: "S256",
	}
}

// upstream starts an authorization that needs no consent (ConsentOff) and
// returns where the browser is sent upstream.
func (h *harness) upstream(t *testing.T, c client) ports.UpstreamRedirect {
	t.Helper()
	res, err := h.app.StartAuthorization.Handle(t.Context(), h.authorizeCommand(c))
	require.NoError(t, err)
	require.NotNil(t, res.Upstream, "consent was asked for")
	return *res.Upstream
}

// upstreamState reads the state the use case sent upstream.
func upstreamState(t *testing.T, up ports.UpstreamRedirect) string {
	t.Helper()
	u, err := url.Parse(up.URL)
	require.NoError(t, err)
	return u.Query().Get("state")
}

// callback completes the upstream login the way the browser returns.
func (h *harness) callback(t *testing.T, up ports.UpstreamRedirect, cmd ports.CompleteCallbackCommand) (ports.CompleteCallbackResult, error) {
	t.Helper()
	cmd.State = upstreamState(t, up)
	if cmd.Code == "" && cmd.Error == "" {
		cmd.Code = "upstream-code"
	}
	if cmd.BindingSecret == "" {
		cmd.BindingSecret = up.BindingSecret
	}
	return h.app.CompleteCallback.Handle(t.Context(), cmd)
}

// code runs a flow to our authorization code.
func (h *harness) code(t *testing.T, c client) string {
	t.Helper()
	res, err := h.callback(t, h.upstream(t, c), ports.CompleteCallbackCommand{})
	require.NoError(t, err)
	require.NotEmpty(t, res.Code)
	return res.Code
}

func (h *harness) exchange(t *testing.T, c client, code string) (ports.TokenResult, error) {
	t.Helper()
	return h.app.ExchangeToken.Handle(t.Context(), ports.ExchangeTokenCommand{
		Client: ports.ClientAuth{ClientID: c.id, Method: domain.AuthNone}, Code: code, RedirectURI: c.redirectURI, CodeVerifier: c.verifier,
	})
}

// login runs a whole flow to tokens.
func (h *harness) login(t *testing.T, c client) ports.TokenResult {
	t.Helper()
	res, err := h.exchange(t, c, h.code(t, c))
	require.NoError(t, err)
	return res
}

func (h *harness) refresh(t *testing.T, c client, refreshToken string) (ports.TokenResult, error) {
	t.Helper()
	return h.app.RefreshToken.Handle(t.Context(), ports.RefreshTokenCommand{
		Client: ports.ClientAuth{ClientID: c.id, Method: domain.AuthNone}, RefreshToken: refreshToken,
	})
}

// live reports whether the access token still passes the bearer check.
func (h *harness) live(t *testing.T, accessToken string) bool {
	t.Helper()
	_, err := h.app.VerifyAccessToken.Handle(t.Context(), ports.VerifyAccessTokenCommand{Token: accessToken, Resource: resource})
	if err != nil {
		require.Equal(t, domain.CodeInvalidToken, domain.CodeOf(err), "%v", err)
	}
	return err == nil
}

// grantLive reports whether the grant still exists.
func (h *harness) grantLive(t *testing.T, grantID string) bool {
	t.Helper()
	_, err := h.store.GetGrant(t.Context(), grantID, h.clock.Now())
	if err != nil {
		require.ErrorIs(t, err, domain.ErrNotFound)
	}
	return err == nil
}

// stored counts the grants, codes and refresh tokens in the store: the
// records a sweep far in the future removes (clients and keys never
// expire). It moves the clock.
func (h *harness) stored(t *testing.T) int {
	t.Helper()
	h.clock.Advance(1000 * time.Hour)
	n, err := h.app.SweepExpired.Handle(t.Context())
	require.NoError(t, err)
	return n
}

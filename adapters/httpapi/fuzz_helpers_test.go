package httpapi_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/assertion"
	"github.com/oidcproxy/oidcproxy/adapters/httpapi"
	"github.com/oidcproxy/oidcproxy/adapters/memstore"
	"github.com/oidcproxy/oidcproxy/adapters/seal"
	"github.com/oidcproxy/oidcproxy/adapters/tokens"
	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/domain/usecase"
	"github.com/oidcproxy/oidcproxy/ports"
)

// The fuzz targets drive the real handlers, use cases, memory store and
// token issuer; only the upstream IdP is a stand-in, because none of the
// fuzzed endpoints talks to it (the fixture's callback step, which mints
// codes for /token, only needs an identity back).
const (
	fuzzIssuer   = "https://as.example.test"
	fuzzRedirect = "http://127.0.0.1:53682/callback"
	// fuzzNativeRedirect is the public client's second redirect URI, with
	// a private-use scheme (RFC 8252 7.1).
	fuzzNativeRedirect = "com.example.app:/oauth/callback"
	fuzzWebRedirect    = "https://client.example.test/cb"
)

// fuzzRandom draws from crypto/rand, as the production source does.
type fuzzRandom struct{}

func (fuzzRandom) Token() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

type fuzzClock struct{}

func (fuzzClock) Now() time.Time { return time.Now() }

// fuzzIdP stands in for the upstream IdP: any upstream code yields the same
// verified identity.
type fuzzIdP struct{}

func (fuzzIdP) Name() string { return "fuzz" }

func (fuzzIdP) AuthCodeURL(req ports.AuthCodeRequest) string {
	return "https://idp.example.test/authorize?" + url.Values{"state": {req.State}}.Encode()
}

func (fuzzIdP) Exchange(context.Context, ports.ExchangeRequest) (domain.Identity, domain.UpstreamTokens, error) {
	return domain.Identity{Subject: "user-1", Issuer: "https://idp.example.test", Email: "user@example.test", EmailVerified: true},
		domain.UpstreamTokens{AccessToken: "upstream-at", TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)}, nil
}

// fixture is one authorization server with a public and a confidential
// client already registered.
type fixture struct {
	app     ports.Application
	handler http.Handler
	// srv is the handler as built, and store the memory store under it
	// (for the admin listener's tests).
	srv   *httpapi.Server
	store *memstore.Store
	// Public is a native client (none), Confidential a web client
	// (client_secret_basic) with Secret.
	Public, Confidential, Secret string
}

// newFixture builds it; opts adjust the HTTP API's options (a gateway, a
// body timeout) before it is built.
func newFixture(t testing.TB, opts ...func(*httpapi.Options)) *fixture {
	t.Helper()
	ctx := context.Background()
	store := memstore.New()
	key := make([]byte, seal.KeySize)
	_, _ = rand.Read(key)
	sealer, err := seal.New(key)
	require.NoError(t, err)
	issuer, err := tokens.Open(ctx, store, sealer, fuzzClock{})
	require.NoError(t, err)
	logger := slog.New(slog.DiscardHandler)
	settings := usecase.Settings{
		Issuer:          fuzzIssuer,
		Resource:        fuzzIssuer + "/mcp",
		SupportedScopes: []string{"openid", "profile", "email", "offline_access"},
		RequiredScopes:  []string{"openid"},
		AccessTokenTTL:  time.Hour,
		RefreshTokenTTL: 24 * time.Hour,
		Consent:         domain.ConsentAlways,
	}
	// private_key_jwt on, so hostile client assertions are fuzzed too.
	app, err := usecase.NewApplication(store, fuzzIdP{}, issuer, sealer, fuzzClock{}, fuzzRandom{}, nil, nil, logger, settings,
		usecase.WithClientAssertions(assertion.Verifier{}, nil))
	require.NoError(t, err)
	cookieKey := make([]byte, 32)
	_, _ = rand.Read(cookieKey)
	options := httpapi.Options{
		Issuer:          fuzzIssuer,
		BaseURL:         fuzzIssuer,
		CallbackPath:    "/auth/callback",
		Resource:        settings.Resource,
		MCPPath:         "/mcp",
		ScopesSupported: settings.SupportedScopes,
		CookieKey:       cookieKey,
		Consent:         domain.ConsentAlways,
	}
	for _, o := range opts {
		o(&options)
	}
	srv, err := httpapi.New(app, issuer, logger, options)
	require.NoError(t, err)
	f := &fixture{app: app, handler: srv, srv: srv, store: store}
	pub, err := app.RegisterClient.Handle(ctx, ports.RegisterClientCommand{
		ClientName:      "fuzz public",
		ApplicationType: "native",
		RedirectURIs:    []string{fuzzRedirect, fuzzNativeRedirect},
		GrantTypes:      []string{domain.GrantAuthorizationCode, domain.GrantRefreshToken},
	})
	require.NoError(t, err)
	conf, err := app.RegisterClient.Handle(ctx, ports.RegisterClientCommand{
		ClientName:              "fuzz confidential",
		ApplicationType:         "web",
		RedirectURIs:            []string{fuzzWebRedirect},
		GrantTypes:              []string{domain.GrantAuthorizationCode, domain.GrantRefreshToken},
		TokenEndpointAuthMethod: string(domain.AuthClientSecretBasic),
	})
	require.NoError(t, err)
	f.Public, f.Confidential, f.Secret = pub.Client.ID, conf.Client.ID, conf.ClientSecret
	return f
}

// recycler hands out a fixture and replaces it with a fresh one every n
// calls: a fuzzer fills the memory store with clients and transactions at
// thousands a second, and a store that only grows slows every later run.
type recycler struct {
	n, calls int
	fx       *fixture
}

func (r *recycler) get(t testing.TB) *fixture {
	t.Helper()
	if r.fx == nil || r.calls%r.n == 0 {
		r.fx = newFixture(t)
	}
	r.calls++
	return r.fx
}

// serve runs one request through the whole handler (router, middleware,
// panic recovery) and returns the recorded answer.
func (f *fixture) serve(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	f.handler.ServeHTTP(w, r)
	return w
}

// issued is an authorization code as the client receives it, with what the
// token request must repeat.
type issued struct {
	Code, Verifier, RedirectURI, ClientID string
}

// mintCode runs an authorization through the use cases (authorize, approve,
// callback) and returns a live code for the client.
func (f *fixture) mintCode(t testing.TB, confidential bool) issued {
	t.Helper()
	ctx := context.Background()
	out := issued{Verifier: fuzzRandom{}.Token(), RedirectURI: fuzzRedirect, ClientID: f.Public}
	if confidential {
		out.RedirectURI, out.ClientID = fuzzWebRedirect, f.Confidential
	}
	sum := sha256.Sum256([]byte(out.Verifier))
	start, err := f.app.StartAuthorization.Handle(ctx, ports.StartAuthorizationCommand{
		ClientID: out.ClientID, RedirectURI: out.RedirectURI, ResponseType: "code", State: "s",
		Scope: "openid offline_access", CodeChallenge: base64.RawURLEncoding.EncodeToString(sum[:]),
		CodeChallengeMethod: "S256",
	})
	require.NoError(t, err)
	view, err := f.app.Consent.Show(ctx, start.TransactionID)
	require.NoError(t, err)
	decided, err := f.app.Consent.Decide(ctx, ports.ConsentDecisionCommand{
		TransactionID: start.TransactionID, CSRFToken: view.CSRFToken, Approve: true,
	})
	require.NoError(t, err)
	up, err := url.Parse(decided.Upstream.URL)
	require.NoError(t, err)
	cb, err := f.app.CompleteCallback.Handle(ctx, ports.CompleteCallbackCommand{
		State: up.Query().Get("state"), Code: "upstream-code", BindingSecret: decided.Upstream.BindingSecret,
	})
	require.NoError(t, err)
	out.Code = cb.Code
	return out
}

// mintRefreshToken redeems a fresh code and returns the refresh token.
func (f *fixture) mintRefreshToken(t testing.TB, confidential bool) string {
	t.Helper()
	c := f.mintCode(t, confidential)
	auth := ports.ClientAuth{ClientID: c.ClientID, Method: domain.AuthNone}
	if confidential {
		auth = ports.ClientAuth{ClientID: c.ClientID, Secret: f.Secret, Method: domain.AuthClientSecretBasic}
	}
	res, err := f.app.ExchangeToken.Handle(context.Background(), ports.ExchangeTokenCommand{
		Client: auth, Code: c.Code, RedirectURI: c.RedirectURI, CodeVerifier: c.Verifier,
	})
	require.NoError(t, err)
	require.NotEmpty(t, res.RefreshToken)
	return res.RefreshToken
}

// oauthErrorCodes are the codes an endpoint may answer a client's mistake
// with (RFC 6749 5.2, RFC 7591 3.2.2, RFC 8707 2).
var oauthErrorCodes = map[string]bool{
	"invalid_request": true, "invalid_client": true, "invalid_grant": true, "unauthorized_client": true,
	"unsupported_grant_type": true, "invalid_scope": true, "invalid_target": true,
	"invalid_redirect_uri": true, "invalid_client_metadata": true,
}

// requireJSONError checks an API error answer: JSON, not cacheable, with an
// error code the RFCs define for client mistakes.
func requireJSONError(t testing.TB, w *httptest.ResponseRecorder, allowed ...string) {
	t.Helper()
	require.Equal(t, "application/json", w.Header().Get("Content-Type"), w.Body.String())
	require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	var doc map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &doc), w.Body.String())
	code, _ := doc["error"].(string)
	if len(allowed) > 0 {
		require.Contains(t, allowed, code, w.Body.String())
	} else {
		require.True(t, oauthErrorCodes[code], "unexpected error %q: %s", code, w.Body.String())
	}
	if desc, ok := doc["error_description"]; ok {
		s, isString := desc.(string)
		require.True(t, isString, "error_description is a string")
		// RFC 6749 5.2 allows printable ASCII only: client input echoed
		// in a description must not smuggle in anything else. (Its ban on
		// '"' and '\\' is not checked: several fixed descriptions quote
		// values, which clients display without harm.)
		for _, r := range s {
			require.True(t, r >= 0x20 && r <= 0x7e, "error_description %q has %q", s, r)
		}
	}
}

// substitute replaces the fuzzer's placeholders with live values, so that
// inputs reach past "unknown client" into the deeper checks.
func substitute(s string, vals map[string]string) string {
	if !strings.Contains(s, "{") {
		return s
	}
	for k, v := range vals {
		s = strings.ReplaceAll(s, "{"+k+"}", v)
	}
	return s
}

// The fuzz targets are only as deep as their fixture: its placeholders
// must lead to the success paths, or the fuzzer only ever explores
// "unknown client".
func TestTheFuzzFixtureReachesTheSuccessPathOfEveryFuzzedEndpoint(t *testing.T) {
	fx := newFixture(t)

	r := httptest.NewRequest(http.MethodPost, "/register", strings.NewReader(`{"redirect_uris":["http://127.0.0.1:1/cb"]}`))
	r.Header.Set("Content-Type", "application/json")
	require.Equal(t, http.StatusCreated, fx.serve(r).Code)

	for _, confidential := range []bool{false, true} {
		c := fx.mintCode(t, confidential)
		form := url.Values{"grant_type": {"authorization_code"}, "code": {c.Code}, "code_verifier": {c.Verifier}, "redirect_uri": {c.RedirectURI}}
		if !confidential {
			form.Set("client_id", fx.Public)
		}
		r = httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if confidential {
			r.SetBasicAuth(fx.Confidential, fx.Secret)
		}
		w := fx.serve(r)
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		require.NotEmpty(t, fx.mintRefreshToken(t, confidential))
	}

	r = httptest.NewRequest(http.MethodGet, "/authorize", nil)
	r.URL.RawQuery = url.Values{
		"response_type": {"code"}, "client_id": {fx.Public}, "redirect_uri": {fuzzRedirect}, "state": {"s"},
		"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"},
	}.Encode()
	w := fx.serve(r)
	require.Equal(t, http.StatusFound, w.Code, w.Body.String())
	require.True(t, strings.HasPrefix(w.Header().Get("Location"), "/consent?txn="), w.Header().Get("Location"))
}

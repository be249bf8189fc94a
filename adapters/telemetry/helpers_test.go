package telemetry_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/oidcproxy/oidcproxy/adapters/memstore"
	"github.com/oidcproxy/oidcproxy/adapters/telemetry"
	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// secret marks every secret-bearing value the tests plant (codes,
// verifiers, tokens, client secrets, states, subjects, emails, upstream
// error text). No span may contain it.
const secret = "PLANTED-7c1e9d"

const clientID = "client-1"

// fixture is a telemetry instance with an in-memory span exporter and a
// manual metric reader, a decorated memstore, a loopback upstream IdP, and
// a loopback API server whose mux router carries the server middleware.
type fixture struct {
	tel    *telemetry.Telemetry
	spans  *tracetest.InMemoryExporter
	reader *sdkmetric.ManualReader
	raw    *memstore.Store
	store  ports.Store
	idp    *fakeIdP
	api    *httptest.Server
	client *http.Client // the test's own client toward api, uninstrumented
}

func newFixture(t *testing.T, mutate ...func(*telemetry.Options)) *fixture {
	t.Helper()
	setEnv(t, nil)
	f := &fixture{spans: tracetest.NewInMemoryExporter(), reader: sdkmetric.NewManualReader(), raw: memstore.New()}
	opts := telemetry.Options{
		Provider:     "testidp",
		SpanExporter: f.spans,
		MetricReader: f.reader,
	}
	for _, m := range mutate {
		m(&opts)
	}
	tel, cleanup, err := telemetry.Open(t.Context(), opts)
	require.NoError(t, err)
	t.Cleanup(cleanup)
	f.tel = tel
	f.store = tel.Store(f.raw)
	f.idp = newFakeIdP(t)

	upstream := tel.HTTPClient(&http.Client{Timeout: 5 * time.Second})
	app := tel.Application(ports.Application{
		StartAuthorization: startAuthorizationHandler{store: f.store},
		ExchangeToken:      exchangeHandler{store: f.store, client: upstream, idp: f.idp.URL},
		RefreshToken:       refreshHandler{store: f.store},
		Revoke:             revokeHandler{client: upstream, idp: f.idp.URL, closed: closedURL(t)},
	})
	f.api = httptest.NewServer(newRouter(tel, app))
	t.Cleanup(f.api.Close)
	f.client = f.api.Client()
	require.NoError(t, f.raw.CreateClient(t.Context(), domain.Client{ID: clientID, CreatedAt: time.Now()}))
	return f
}

// setEnv makes m the OTEL_* environment of the test, which is what
// telemetry reads: every other OTEL_* variable of the process is blanked
// (empty reads as unset), so the developer's settings never leak in. The
// environment is restored when the test ends.
func setEnv(tb testing.TB, m map[string]string) {
	tb.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "OTEL_") {
			tb.Setenv(k, "")
		}
	}
	for k, v := range m {
		tb.Setenv(k, v)
	}
}

// seedCode stores a grant and an authorization code in the raw store and
// returns the raw code. The grant carries a planted subject and email.
func (f *fixture) seedCode(t *testing.T, name string) string {
	t.Helper()
	now := time.Now()
	raw := secret + "-code-" + name
	g := domain.Grant{
		ID: "grant-" + name, ClientID: clientID, Subject: secret + "-subject",
		Identity:  domain.Identity{Subject: secret + "-subject", Email: secret + "@example.com"},
		CreatedAt: now, ExpiresAt: now.Add(time.Hour),
	}
	code := domain.AuthorizationCode{
		Hash: domain.HashToken(raw), ClientID: clientID, RedirectURI: "http://127.0.0.1/cb",
		GrantID: g.ID, IssuedAt: now, ExpiresAt: now.Add(domain.CodeTTL),
	}
	require.NoError(t, f.raw.CreateGrant(t.Context(), g, code))
	return raw
}

// post sends a form to the API with a planted client secret in the Basic
// credentials and a planted state in the query, and returns the status.
func (f *fixture) post(t *testing.T, path string, form url.Values, header http.Header) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, f.api.URL+path+"?state="+secret+"-state", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret+"-client-secret")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := f.client.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	return resp.StatusCode
}

func (f *fixture) get(t *testing.T, path string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, f.api.URL+path, nil)
	require.NoError(t, err)
	resp, err := f.client.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	return resp.StatusCode
}

// exchange posts an authorization_code token request.
func (f *fixture) exchange(t *testing.T, code, redirectURI string) int {
	t.Helper()
	return f.post(t, "/token", url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI},
		"code_verifier": {secret + "-verifier"},
	}, nil)
}

// refresh posts a refresh_token token request.
func (f *fixture) refresh(t *testing.T, token string) int {
	t.Helper()
	return f.post(t, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}}, nil)
}

// scrape fetches the Prometheus text from the metrics handler over a real
// loopback server.
func (f *fixture) scrape(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(f.tel.MetricsHandler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(body)
}

// spanNamed returns the only exported span with the name.
func (f *fixture) spanNamed(t *testing.T, name string) tracetest.SpanStub {
	t.Helper()
	var found []tracetest.SpanStub
	for _, s := range f.spans.GetSpans() {
		if s.Name == name {
			found = append(found, s)
		}
	}
	require.Len(t, found, 1, "spans named %q among %v", name, spanNames(f.spans.GetSpans()))
	return found[0]
}

func spanNames(spans tracetest.SpanStubs) []string {
	names := make([]string, 0, len(spans))
	for _, s := range spans {
		names = append(names, s.Name)
	}
	return names
}

func attr(s tracetest.SpanStub, key string) (attribute.Value, bool) {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

// counterValue sums the data points of an Int64 sum whose attributes
// include every pair in want.
func (f *fixture) counterValue(t *testing.T, name string, want ...attribute.KeyValue) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, f.reader.Collect(t.Context(), &rm))
	var total int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			require.True(t, ok, "%s is a %T", name, m.Data)
			for _, dp := range sum.DataPoints {
				if hasAll(dp.Attributes, want) {
					total += dp.Value
				}
			}
		}
	}
	return total
}

// histogramCount counts the measurements of a float histogram whose
// attributes include every pair in want.
func (f *fixture) histogramCount(t *testing.T, name string, want ...attribute.KeyValue) uint64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, f.reader.Collect(t.Context(), &rm))
	var total uint64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			h, ok := m.Data.(metricdata.Histogram[float64])
			require.True(t, ok, "%s is a %T", name, m.Data)
			for _, dp := range h.DataPoints {
				if hasAll(dp.Attributes, want) {
					total += dp.Count
				}
			}
		}
	}
	return total
}

func hasAll(set attribute.Set, want []attribute.KeyValue) bool {
	for _, kv := range want {
		v, ok := set.Value(kv.Key)
		if !ok || v != kv.Value {
			return false
		}
	}
	return true
}

// promSum adds up the Prometheus text's samples of series whose labels
// include every one of labels (each `name="value"`).
func promSum(text, series string, labels ...string) float64 {
	var sum float64
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, series+"{")
		if !ok {
			continue
		}
		set, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		have := map[string]bool{}
		for _, l := range strings.Split(set, ",") {
			have[l] = true
		}
		matched := true
		for _, l := range labels {
			matched = matched && have[l]
		}
		if v, err := strconv.ParseFloat(value, 64); matched && err == nil {
			sum += v
		}
	}
	return sum
}

// fakeIdP is a loopback stand-in for the upstream IdP's endpoints: it
// answers the token and revocation endpoints, and 502 under /down/. It
// records the traceparent header of every call.
type fakeIdP struct {
	*httptest.Server
	mu           sync.Mutex
	traceparents []string
	baggage      []string
}

func newFakeIdP(t *testing.T) *fakeIdP {
	t.Helper()
	idp := &fakeIdP{}
	mx := http.NewServeMux()
	record := func(r *http.Request) {
		idp.mu.Lock()
		idp.traceparents = append(idp.traceparents, r.Header.Get("Traceparent"))
		idp.baggage = append(idp.baggage, r.Header.Values("Baggage")...)
		idp.mu.Unlock()
	}
	mx.HandleFunc("POST /oauth/token", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"upstream-`+secret+`","token_type":"Bearer"}`)
	})
	mx.HandleFunc("GET /oauth/revoke", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		w.WriteHeader(http.StatusOK)
	})
	mx.HandleFunc("/down/", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		http.Error(w, "upstream trouble: "+secret, http.StatusBadGateway)
	})
	idp.Server = httptest.NewServer(mx)
	t.Cleanup(idp.Close)
	return idp
}

func (idp *fakeIdP) seenTraceparents() []string {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	return append([]string(nil), idp.traceparents...)
}

func (idp *fakeIdP) seenBaggage() []string {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	return append([]string(nil), idp.baggage...)
}

// closedURL is a loopback address nothing listens on: a call there fails
// with a connection error whose text quotes the URL.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return "http://" + addr
}

// The hand-written use cases below are just enough behaviour to drive the
// decorators through the real memstore and the instrumented upstream
// client; the real use cases run with telemetry on in the end-to-end
// tests of test/e2e, where the composition root wires this package.

// Redirect URIs that steer exchangeHandler into failures.
const (
	redirectServerError  = "http://127.0.0.1/boom"
	redirectUpstreamDown = "http://127.0.0.1/down"
)

type exchangeHandler struct {
	store  ports.Store
	client *http.Client
	idp    string
}

func (h exchangeHandler) Handle(ctx context.Context, cmd ports.ExchangeTokenCommand) (ports.TokenResult, error) {
	if cmd.RedirectURI == redirectServerError {
		// A private cause quoting a secret: it must not reach a span.
		return ports.TokenResult{}, domain.ErrServerError(fmt.Errorf("database exploded near %s", cmd.Code))
	}
	now := time.Now()
	// A replay is refused without revoking the grant, so that the tests
	// can go on to refresh after replaying.
	keepOnReplay := func(c domain.AuthorizationCode) error {
		if c.Redeemed() {
			return errors.New("replayed")
		}
		return nil
	}
	_, _, err := h.store.RedeemCode(ctx, domain.HashToken(cmd.Code), now, domain.CodeUseFuncs{CheckFunc: keepOnReplay, IssueFunc: func(c domain.AuthorizationCode, g domain.Grant) (*domain.RefreshToken, error) {
		return &domain.RefreshToken{
			Hash: domain.HashToken("rt-" + cmd.Code), GrantID: g.ID, ClientID: c.ClientID,
			IssuedAt: now, ExpiresAt: now.Add(time.Hour),
		}, nil
	}})

	switch {
	case errors.Is(err, domain.ErrAlreadyConsumed):
		return ports.TokenResult{}, domain.ErrInvalidGrant("authorization code was already used")
	case errors.Is(err, domain.ErrNotFound):
		return ports.TokenResult{}, domain.ErrInvalidGrant("authorization code is invalid")
	case err != nil:
		return ports.TokenResult{}, domain.ErrServerError(err)
	}
	endpoint := h.idp + "/oauth/token"
	if cmd.RedirectURI == redirectUpstreamDown {
		endpoint = h.idp + "/down/token"
	}
	form := url.Values{"code": {cmd.Code}, "code_verifier": {cmd.CodeVerifier}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return ports.TokenResult{}, domain.ErrServerError(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("upstream-client", secret+"-upstream-secret")
	resp, err := h.client.Do(req)
	if err != nil {
		return ports.TokenResult{}, domain.ErrTemporarilyUnavailable("identity provider unavailable", err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		return ports.TokenResult{}, domain.ErrTemporarilyUnavailable("identity provider unavailable", fmt.Errorf("status %d", resp.StatusCode))
	}
	return ports.TokenResult{AccessToken: "at-" + cmd.Code, TokenType: "Bearer", ExpiresIn: 3600, RefreshToken: "rt-" + cmd.Code}, nil
}

type refreshHandler struct{ store ports.Store }

func (h refreshHandler) Handle(ctx context.Context, cmd ports.RefreshTokenCommand) (ports.TokenResult, error) {
	now := time.Now()
	next, _, err := h.store.RotateRefreshToken(ctx, domain.HashToken(cmd.RefreshToken), now, domain.RefreshUse{ClientID: cmd.Client.ClientID}, domain.RotateFunc(func(old domain.RefreshToken, g *domain.Grant) (domain.RefreshToken, error) {
		return domain.RefreshToken{
			Hash: domain.HashToken(cmd.RefreshToken + "-next"), GrantID: g.ID, ClientID: old.ClientID,
			IssuedAt: now, ExpiresAt: now.Add(time.Hour),
		}, nil
	}))

	switch {
	case errors.Is(err, domain.ErrAlreadyConsumed):
		return ports.TokenResult{}, domain.ErrInvalidGrant("refresh token was already used; the grant has been revoked")
	case errors.Is(err, domain.ErrNotFound):
		return ports.TokenResult{}, domain.ErrInvalidGrant("refresh token is invalid")
	case err != nil:
		return ports.TokenResult{}, domain.ErrServerError(err)
	}
	return ports.TokenResult{AccessToken: "at-" + next.Hash, TokenType: "Bearer", RefreshToken: cmd.RefreshToken + "-next"}, nil
}

type startAuthorizationHandler struct{ store ports.Store }

func (h startAuthorizationHandler) Handle(ctx context.Context, cmd ports.StartAuthorizationCommand) (ports.StartAuthorizationResult, error) {
	if _, err := h.store.GetClient(ctx, cmd.ClientID); err != nil {
		if errors.Is(err, domain.ErrNotFound) {
			return ports.StartAuthorizationResult{}, &domain.Error{Code: domain.CodeInvalidClient, Description: "unknown client", NoRedirect: true}
		}
		return ports.StartAuthorizationResult{}, domain.ErrServerError(err)
	}
	return ports.StartAuthorizationResult{TransactionID: secret + "-transaction"}, nil
}

// revokeHandler revokes upstream through a query parameter, as Google's
// revocation endpoint allows, so the token sits in the upstream URL.
type revokeHandler struct {
	client *http.Client
	idp    string
	closed string // a loopback URL nothing listens on
}

func (h revokeHandler) Handle(ctx context.Context, cmd ports.RevokeCommand) error {
	base := h.idp
	if cmd.TokenTypeHint == "unreachable" {
		base = h.closed
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/oauth/revoke?token="+url.QueryEscape(cmd.Token), nil)
	if err != nil {
		return domain.ErrServerError(err)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return domain.ErrTemporarilyUnavailable("identity provider unavailable", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// newRouter mounts the hand-written use cases the way adapters/httpapi
// does: a gorilla/mux router with the middleware installed by Use.
func newRouter(tel *telemetry.Telemetry, app ports.Application) *mux.Router {
	r := mux.NewRouter()
	r.Use(tel.ServerMiddleware())
	r.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			writeError(w, domain.ErrInvalidRequest("bad form"))
			return
		}
		id, pass, _ := r.BasicAuth()
		auth := ports.ClientAuth{ClientID: id, Secret: pass, Method: domain.AuthClientSecretBasic}
		var err error
		switch r.PostForm.Get("grant_type") {
		case domain.GrantAuthorizationCode:
			_, err = app.ExchangeToken.Handle(r.Context(), ports.ExchangeTokenCommand{
				Client: auth, Code: r.PostForm.Get("code"), RedirectURI: r.PostForm.Get("redirect_uri"),
				CodeVerifier: r.PostForm.Get("code_verifier"),
			})
		case domain.GrantRefreshToken:
			_, err = app.RefreshToken.Handle(r.Context(), ports.RefreshTokenCommand{Client: auth, RefreshToken: r.PostForm.Get("refresh_token")})
		default:
			err = domain.ErrUnsupportedGrantType("unsupported grant type")
		}
		if err != nil {
			writeError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"token_type":"Bearer"}`)
	}).Methods(http.MethodPost)
	r.HandleFunc("/revoke", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			writeError(w, domain.ErrInvalidRequest("bad form"))
			return
		}
		id, pass, _ := r.BasicAuth()
		err := app.Revoke.Handle(r.Context(), ports.RevokeCommand{
			Client: ports.ClientAuth{ClientID: id, Secret: pass}, Token: r.PostForm.Get("token"),
			TokenTypeHint: r.PostForm.Get("token_type_hint"),
		})
		if err != nil {
			writeError(w, err)
		}
	}).Methods(http.MethodPost)
	r.HandleFunc("/authorize", func(w http.ResponseWriter, r *http.Request) {
		_, err := app.StartAuthorization.Handle(r.Context(), ports.StartAuthorizationCommand{
			ClientID: r.URL.Query().Get("client_id"), State: r.URL.Query().Get("state"),
		})
		if err != nil {
			writeError(w, err)
			return
		}
		w.WriteHeader(http.StatusFound)
	}).Methods(http.MethodGet)
	ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }
	r.HandleFunc("/healthz", ok).Methods(http.MethodGet)
	r.HandleFunc("/readyz", ok).Methods(http.MethodGet)
	r.Handle("/metrics", tel.MetricsHandler()).Methods(http.MethodGet)
	return r
}

// writeError maps an OAuth error onto a status the way adapters/httpapi's
// table does.
func writeError(w http.ResponseWriter, err error) {
	status := http.StatusBadRequest
	switch domain.CodeOf(err) {
	case domain.CodeInvalidClient:
		status = http.StatusUnauthorized
	case domain.CodeServerError:
		status = http.StatusInternalServerError
	case domain.CodeTemporarilyUnavailable:
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, `{"error":%q}`, domain.CodeOf(err))
}

package bench_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oidcproxy/oidcproxy"
	"github.com/oidcproxy/oidcproxy/adapters/boltstore"
	"github.com/oidcproxy/oidcproxy/adapters/config"
	"github.com/oidcproxy/oidcproxy/adapters/telemetry"
	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
	"github.com/oidcproxy/oidcproxy/test/idp"
)

// Load shape of every benchmark, as issue 2 sets it.
const (
	// concurrentClients is how many clients talk to the proxy at once.
	concurrentClients = 50
	// clientRedirectURI is the seeded client's loopback redirect URI, as a
	// native MCP client registers it.
	clientRedirectURI = "http://127.0.0.1:53682/callback"
	// seedWorkers write the seed records concurrently, so that the store's
	// group commit fills its batches instead of waiting out its delay.
	seedWorkers = 64
)

// grantScopes are the scopes of every seeded grant and code.
var grantScopes = []string{"openid", "profile", "email"}

// proxy is one oidcproxy App on a loopback listener, built by the
// benchmark injector on a bbolt file the harness owns.
type proxy struct {
	BaseURL  string
	Resource string
	// TokenURL is BaseURL + "/token".
	TokenURL string
	// TokenURLs are the token endpoints of every instance: TokenURL alone
	// for a proxy on a bbolt file, one per instance sharing a PostgreSQL
	// database (see newPostgresProxy), which clients alternate between.
	TokenURLs []string
	// Client is the seeded public client.
	Client domain.Client
	// IdP is the upstream. The App fetches its discovery document at
	// start-up; only the full flow reaches it again.
	IdP *idp.Faulty
	// TelemetryEnv, when set before start, is what the App's telemetry
	// reads as its OTEL_* environment; nil is production without OTEL_*
	// variables.
	TelemetryEnv map[string]string

	tb   testing.TB
	ln   net.Listener
	cfg  config.Config
	path string
	// dbURL, when set, is the PostgreSQL database the store is instead of
	// the file at path, and lns the listeners of the instances after the
	// first (whose listener is ln).
	dbURL string
	lns   []net.Listener
}

// newProxy prepares a proxy: a listener, an upstream IdP and a
// configuration. Nothing serves until start.
func newProxy(tb testing.TB) *proxy {
	tb.Helper()
	return newProxyEnv(tb, nil)
}

// newProxyEnv is newProxy with extra OIDC_PROXY_* variables in the
// configuration (OIDC_PROXY_MCP_UPSTREAM turns the gateway on).
func newProxyEnv(tb testing.TB, extra map[string]string) *proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	tb.Cleanup(func() { _ = ln.Close() })
	base := "http://" + ln.Addr().String()
	up := idp.NewFaulty(tb, idp.FaultyOptions{})
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	path := filepath.Join(tb.TempDir(), "oidcproxy.db")
	env := map[string]string{
		"OIDC_PROXY_BASE_URL":        base,
		"OIDC_PROXY_CONFIG_URL":      up.ConfigURL,
		"OIDC_PROXY_CLIENT_ID":       up.ClientID,
		"OIDC_PROXY_CLIENT_SECRET":   up.ClientSecret,
		"OIDC_PROXY_STORE_PATH":      path,
		"OIDC_PROXY_ENCRYPTION_KEY":  base64.StdEncoding.EncodeToString(key),
		"OIDC_PROXY_LOG_LEVEL":       "error",
		"OIDC_PROXY_TIMEOUT_SECONDS": "10",
	}
	// The benchmarks send one client's load from one address and one
	// subject, far past the default abuse limits. The limits stay on, at
	// their highest settings, so that their checks are part of what is
	// measured while nothing is refused; and the footprint benchmark
	// registers more clients than MAX_CLIENTS allows by default.
	for _, limit := range []string{"REGISTER", "CIMD", "AUTHORIZE", "TOKEN", "REVOKE", "INTROSPECT", "GATEWAY"} {
		env["OIDC_PROXY_RATE_LIMIT_"+limit] = "1000000"
		env["OIDC_PROXY_RATE_LIMIT_"+limit+"_BURST"] = "1000000"
	}
	env["OIDC_PROXY_MAX_CLIENTS"] = "0"
	maps.Copy(env, extra)
	cfg, err := config.Load(nil, func(k string) string { return env[k] }, oidcproxy.ProviderSections())
	if err != nil {
		tb.Fatalf("config: %v", err)
	}
	if err := cfg.Validate(config.ValidateOptions{RequireUpstream: true, Provider: oidcproxy.ValidateProvider}); err != nil {
		tb.Fatalf("config: %v", err)
	}
	resource, err := domain.CanonicalResource(cfg.Resource())
	if err != nil {
		tb.Fatalf("resource: %v", err)
	}
	now := time.Now().UTC()
	return &proxy{
		BaseURL:  base,
		Resource: resource,
		TokenURL: base + "/token",
		Client: domain.Client{
			ID:                      "bench-" + randomToken(),
			Name:                    "Benchmark MCP Client",
			RedirectURIs:            []string{clientRedirectURI},
			ApplicationType:         domain.ApplicationNative,
			TokenEndpointAuthMethod: domain.AuthNone,
			GrantTypes:              []string{domain.GrantAuthorizationCode, domain.GrantRefreshToken},
			ResponseTypes:           []string{domain.ResponseTypeCode},
			CreatedAt:               now,
		},
		TokenURLs: []string{base + "/token"},
		IdP:       up,
		tb:        tb,
		ln:        ln,
		cfg:       cfg,
		path:      path,
	}
}

// seed writes records straight into the store file before the App opens
// it. It uses a NoSync store: the seed is set-up, not what is measured,
// and the file is synced by Close before the measured store reopens it.
func (p *proxy) seed(fn func(ctx context.Context, s ports.Store) error) {
	p.tb.Helper()
	if p.dbURL != "" {
		p.seedDatabase(fn)
		return
	}
	s, err := boltstore.Open(boltstore.Options{Path: p.path, NoSync: true})
	if err != nil {
		p.tb.Fatalf("seed: %v", err)
	}
	err = fn(context.Background(), s)
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		p.tb.Fatalf("seed: %v", err)
	}
}

// start opens the store file with opts (Path is filled in), builds the App
// on it and serves it until the benchmark's cleanup. On PostgreSQL it
// starts every instance instead (opts does not apply).
func (p *proxy) start(opts boltstore.Options) {
	p.tb.Helper()
	if p.dbURL != "" {
		p.startInstances()
		return
	}
	opts.Path = p.path
	store, err := boltstore.Open(opts)
	if err != nil {
		p.tb.Fatalf("open store: %v", err)
	}
	p.serve(p.ln, store, store.Close)
}

// startOn builds the App on store, which the caller opened, and serves it
// on the proxy's own listener until the benchmark's cleanup, which then
// closes the store.
func (p *proxy) startOn(store oidcproxy.RawStore, closeStore func() error) {
	p.serve(p.ln, store, closeStore)
}

// serve builds an App on store and serves it on ln until the benchmark's
// cleanup, which then calls closeStore.
func (p *proxy) serve(ln net.Listener, store oidcproxy.RawStore, closeStore func() error) {
	p.tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	// With TelemetryEnv nil, telemetry runs as in production without
	// OTEL_* variables: spans and metrics are recorded, nothing is exported
	// (and nothing leaves the machine). BenchmarkTelemetryCost sets it. The
	// exporters read the process environment, so TelemetryEnv is set there
	// until the test ends, except OTEL_SDK_DISABLED, which becomes this
	// App's own switch: an App without telemetry runs beside one that
	// exports.
	tel := telemetry.Options{Provider: p.cfg.Provider}
	for k, v := range p.TelemetryEnv {
		if k == "OTEL_SDK_DISABLED" {
			tel.Disabled = v == "true"
			continue
		}
		p.tb.Setenv(k, v)
	}
	app, cleanup, err := oidcproxy.InitializeAppWithStore(ctx, p.cfg, oidcproxy.SystemClock{}, io.Discard, tel, store)
	if err != nil {
		cancel()
		_ = closeStore()
		p.tb.Fatalf("build app: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Serve(ctx, ln, nil) }()
	p.tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			p.tb.Errorf("serve: %v", err)
		}
		cleanup()
		if err := closeStore(); err != nil {
			p.tb.Errorf("close store: %v", err)
		}
	})
}

// credential is what a client holds for one grant: an authorization code
// with its PKCE verifier, or a refresh token.
type credential struct {
	Code, Verifier, RefreshToken string
}

// newCredentials draws n credentials: an authorization code and its PKCE
// verifier each, and, with refresh, the refresh token the code's
// redemption stores.
func newCredentials(n int, refresh bool) []credential {
	creds := make([]credential, n)
	for i := range creds {
		creds[i] = credential{Code: randomToken(), Verifier: randomToken()}
		if refresh {
			creds[i].RefreshToken = randomToken()
		}
	}
	return creds
}

// seedGrants stores the client and one grant per credential, each with one
// unredeemed authorization code bound to the client, its redirect URI, the
// proxy's resource and the S256 challenge of the credential's verifier.
// When the credential has a refresh token, its code is then redeemed
// through ports.Store.RedeemCode, the atomic step /token uses, storing that
// refresh token as the grant's live one.
func (p *proxy) seedGrants(creds []credential) {
	p.tb.Helper()
	p.seed(func(ctx context.Context, s ports.Store) error {
		if err := s.CreateClient(ctx, p.Client); err != nil {
			return fmt.Errorf("create client: %w", err)
		}
		return forEachParallel(len(creds), seedWorkers, func(i int) error {
			return p.seedGrant(ctx, s, creds[i])
		})
	})
}

func (p *proxy) seedGrant(ctx context.Context, s ports.Store, cred credential) error {
	now := time.Now().UTC()
	g := domain.Grant{
		ID:       domain.NewGrantID(now, randomToken()), // as the callback makes them
		ClientID: p.Client.ID,
		Subject:  idp.DefaultSubject,
		Identity: domain.Identity{
			Subject: idp.DefaultSubject, Email: idp.DefaultEmail, EmailVerified: true, Name: idp.DefaultName,
		},
		Scopes:   grantScopes,
		Resource: p.Resource,
		// The exchange never opens the sealed upstream tokens, so any bytes
		// of a realistic size do; a live upstream expiry keeps the refresh
		// grant from calling the IdP.
		SealedUpstream:     bytes.Repeat([]byte{0xA5}, 512),
		UpstreamExpiry:     now.Add(time.Hour),
		HasUpstreamRefresh: true,
		CreatedAt:          now,
		ExpiresAt:          now.Add(p.cfg.RefreshTokenTTL),
	}
	code := domain.AuthorizationCode{
		Hash:          domain.HashToken(cred.Code),
		ClientID:      p.Client.ID,
		RedirectURI:   clientRedirectURI,
		CodeChallenge: s256(cred.Verifier),
		GrantID:       g.ID,
		Scopes:        grantScopes,
		Resource:      p.Resource,
		IssuedAt:      now,
		// Longer than domain.CodeTTL: a long benchmark run must not see
		// its last codes expire.
		ExpiresAt: now.Add(time.Hour),
	}
	if err := s.CreateGrant(ctx, g, code); err != nil {
		return fmt.Errorf("create grant: %w", err)
	}
	if cred.RefreshToken == "" {
		return nil
	}
	_, _, err := s.RedeemCode(ctx, code.Hash, now, domain.CodeUseFuncs{CheckFunc: func(domain.AuthorizationCode) error { return nil }, IssueFunc: func(c domain.AuthorizationCode, g domain.Grant) (*domain.RefreshToken, error) {
		return &domain.RefreshToken{
			Hash:      domain.HashToken(cred.RefreshToken),
			GrantID:   g.ID,
			ClientID:  g.ClientID,
			Scopes:    c.Scopes,
			IssuedAt:  now,
			ExpiresAt: g.ExpiresAt,
		}, nil
	}})

	if err != nil {
		return fmt.Errorf("redeem code: %w", err)
	}
	return nil
}

// forEachParallel calls fn(i) for every i < n on workers goroutines and
// returns the first error.
func forEachParallel(n, workers int, fn func(i int) error) error {
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// newTransport is the one connection pool the benchmark clients share:
// keep-alive, and enough idle connections per host that none of the 50
// clients ever dials again. The total is not bounded: the sides of one
// benchmark share a client, and a bound below their connections (three
// sides of two PostgreSQL instances hold 300) closed one side's while the
// others ran, so that its next slice began by dialling again.
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
}

// tokenResponse is the part of a /token answer the benchmarks judge.
type tokenResponse struct {
	Status int
	// Error is the OAuth error code of a non-200 answer.
	Error string
	// Issued reports a 200 whose body carries an access token.
	Issued bool
}

// postToken sends one form-encoded token request and reads the answer.
func postToken(ctx context.Context, c *http.Client, tokenURL, body string) (tokenResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(body))
	if err != nil {
		return tokenResponse{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		return tokenResponse{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return tokenResponse{}, err
	}
	res := tokenResponse{Status: resp.StatusCode}
	if resp.StatusCode == http.StatusOK {
		// A substring check, not a decode: the client shares the two cores
		// with the server, and what it spends is not the server's speed.
		res.Issued = bytes.Contains(data, []byte(`"access_token":"ey`))
		return res, nil
	}
	var doc struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return res, fmt.Errorf("HTTP %d with a body that is not JSON: %.200q", resp.StatusCode, data)
	}
	res.Error = doc.Error
	return res, nil
}

// codeExchangeBody is the form an MCP client posts to redeem a code.
func codeExchangeBody(clientID, code, verifier, resource string) string {
	return url.Values{
		"grant_type":    {domain.GrantAuthorizationCode},
		"client_id":     {clientID},
		"code":          {code},
		"redirect_uri":  {clientRedirectURI},
		"code_verifier": {verifier},
		"resource":      {resource},
	}.Encode()
}

// refreshBody is the form an MCP client posts to refresh.
func refreshBody(clientID, refreshToken, resource string) string {
	return url.Values{
		"grant_type":    {domain.GrantRefreshToken},
		"client_id":     {clientID},
		"refresh_token": {refreshToken},
		"resource":      {resource},
	}.Encode()
}

// failures collects what went wrong on the client goroutines, where
// b.Fatal may not be called; check reports it on the benchmark goroutine.
type failures struct {
	n     atomic.Int64
	mu    sync.Mutex
	first error
}

func (f *failures) add(err error) {
	if f.n.Add(1) == 1 {
		f.mu.Lock()
		f.first = err
		f.mu.Unlock()
	}
}

func (f *failures) check(tb testing.TB) {
	tb.Helper()
	if n := f.n.Load(); n > 0 {
		f.mu.Lock()
		defer f.mu.Unlock()
		tb.Fatalf("%d failed requests; first: %v", n, f.first)
	}
}

// latencies merges the per-goroutine latency samples.
type latencies struct {
	mu  sync.Mutex
	all []time.Duration
}

func (l *latencies) merge(part []time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, part...)
	l.mu.Unlock()
}

// quantile returns the q-quantile (nearest rank) in milliseconds.
func (l *latencies) quantile(q float64) float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.all) == 0 {
		return 0
	}
	slices.Sort(l.all)
	i := int(q*float64(len(l.all))+0.5) - 1
	i = max(0, min(i, len(l.all)-1))
	return float64(l.all[i]) / float64(time.Millisecond)
}

// setClients makes b.RunParallel run about concurrentClients goroutines.
func setClients(b *testing.B) {
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((concurrentClients + procs - 1) / procs)
}

// profileEnv names a directory: when set, each benchmark run writes a CPU
// profile of its timed part alone (no seeding, no start-up) there, named
// after the benchmark. go test's -cpuprofile covers the whole process, in
// which seeding b.N grants weighs as much as the requests do.
const profileEnv = "OIDCPROXY_BENCH_CPUPROFILE"

// profileTimed starts a CPU profile of what follows when profileEnv is set
// and returns the function that stops it; call both around the timed part.
func profileTimed(b *testing.B) (stop func()) {
	dir := os.Getenv(profileEnv)
	if dir == "" {
		return func() {}
	}
	name := strings.NewReplacer("/", "_", " ", "_").Replace(b.Name()) + ".cpu"
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		b.Fatalf("cpu profile: %v", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		b.Fatalf("cpu profile (is -cpuprofile set too?): %v", err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Errorf("cpu profile: %v", err)
		}
	}
}

// randomToken is 256 random bits, base64url: the shape of every secret the
// proxy hands out, and a valid PKCE verifier.
func randomToken() string { return oidcproxy.CryptoRandom{}.Token() }

// s256 is the PKCE S256 challenge of verifier (RFC 7636 4.2).
func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// errNotIssued reports a 200 without an access token.
var errNotIssued = errors.New("HTTP 200 without an access token")

package e2e_test

import (
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/oidcproxy/oidcproxy"
	"github.com/oidcproxy/oidcproxy/adapters/config"
	"github.com/oidcproxy/oidcproxy/adapters/httpapi"
	"github.com/oidcproxy/oidcproxy/adapters/telemetry"
	"github.com/oidcproxy/oidcproxy/test/idp"
	"github.com/oidcproxy/oidcproxy/test/pgtest"
	"github.com/oidcproxy/oidcproxy/test/proxytest"
)

// front is what a load balancer is to the instances of a cluster: one
// address (BASE_URL's) in front of all of them. A test either pins it to
// one instance (use) before each step, to put each step on an instance of
// its choosing, or lets it alternate (roundRobin).
type front struct {
	targets []*httputil.ReverseProxy
	// pinned is the instance every request goes to; -1 alternates.
	pinned atomic.Int64
	next   atomic.Int64
}

func newFront(t *testing.T, ln net.Listener, instances []string) *front {
	t.Helper()
	f := &front{}
	for _, raw := range instances {
		u, err := url.Parse(raw)
		require.NoError(t, err)
		rp := httputil.NewSingleHostReverseProxy(u)
		// Keep the Host the client sent, as a load balancer does: the
		// instances see BASE_URL's host, not their own address.
		director := rp.Director
		rp.Director = func(r *http.Request) {
			host := r.Host
			director(r)
			r.Host = host
		}
		f.targets = append(f.targets, rp)
	}
	srv := &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return f
}

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i := f.pinned.Load()
	if i < 0 {
		i = (f.next.Add(1) - 1) % int64(len(f.targets))
	}
	f.targets[i].ServeHTTP(w, r)
}

// use sends every following request to instance i.
func (f *front) use(i int) { f.pinned.Store(int64(i)) }

// roundRobin sends the requests to the instances in turn.
func (f *front) roundRobin() { f.pinned.Store(-1) }

// cluster is several real Apps, built by the test injector, sharing one
// PostgreSQL database (a database of its own, so that advisory locks and
// notifications are the cluster's alone), one ENCRYPTION_KEY and one
// BASE_URL: the front's. Its embedded proxy drives flows through the
// front, so every helper of the harness works on the cluster as on one
// instance.
type cluster struct {
	*proxy
	Front *front
	// Apps are the instances; Direct[i] is Apps[i]'s own address, for
	// requests that must reach one instance whatever the front does.
	Apps   []*oidcproxy.App
	Direct []string
	// Stops stop one instance each.
	Stops       []func()
	DatabaseURL string
	OP          *idp.OP
}

// startCluster starts n instances behind a front, in front of a real
// OpenID provider.
func startCluster(t *testing.T, n int, opts ...proxyOption) *cluster {
	t.Helper()
	frontLn := listen(t)
	base := "http://" + frontLn.Addr().String()
	op := idp.StartOP(t, idp.Client{ID: upstreamClientID, Secret: upstreamSecret, RedirectURIs: []string{base + "/auth/callback"}})
	env := baseEnv(t, base, op.ConfigURL)
	delete(env, "OIDC_PROXY_STORE_PATH")
	db := pgtest.Database(t)
	env["OIDC_PROXY_DATABASE_URL"] = db
	for _, o := range opts {
		o(env)
	}
	c := &cluster{
		proxy:       &proxy{t: t, BaseURL: base, Env: env, Clock: &testClock{}, Logs: &proxytest.LogBuffer{}, Upstream: op},
		DatabaseURL: db,
		OP:          op,
	}
	for range n {
		ln := listen(t)
		app, stop := proxytest.Serve(t, ln, env, c.Clock, c.Logs, telemetry.Options{
			SpanExporter: tracetest.NewInMemoryExporter(), MetricReader: sdkmetric.NewManualReader(),
		}, oidcproxy.CIMDRootCAs{})
		c.Apps = append(c.Apps, app)
		c.Direct = append(c.Direct, "http://"+ln.Addr().String())
		c.Stops = append(c.Stops, stop)
	}
	c.stop = func() {
		for _, stop := range c.Stops {
			stop()
		}
	}
	c.Front = newFront(t, frontLn, c.Direct)
	c.Front.use(0)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("instance logs:\n%s", c.Logs.String())
		}
	})
	return c
}

// gatewayStatus is the status of one tools/list through the gateway of
// whichever instance the front sends it to.
func (c *cluster) gatewayStatus(t *testing.T, token string) int {
	t.Helper()
	resp, _ := bearerPost(t, c.proxy, token, nil, nil)
	return resp.StatusCode
}

// within polls cond every 10 ms until it holds or limit passes, and
// returns how long it took; ok is false if it never held.
func within(limit time.Duration, cond func() bool) (took time.Duration, ok bool) {
	start := time.Now()
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Since(start) > limit {
			return time.Since(start), false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Every step of a sign-in on another instance than the step before, as a
// load balancer without session affinity spreads them: registration,
// authorization, the consent page and the decision, the callback, the
// code exchange, a refresh and a revocation; and the revocation made on
// one instance reaches the gateway of another within a second.
func TestEveryStepOfAFlowMayLandOnAnotherInstance(t *testing.T) {
	be := startBackend(t)
	c := startCluster(t, 3, withEnv("MCP_UPSTREAM", be.URL))
	a, b, third := 0, 1, 2

	c.Front.use(a)
	client := c.register(t, nil)
	f := newFlow(t, client)

	c.Front.use(b)
	res := f.Browser.get(t, c.authorizeURL(client, f.State, f.Verifier))
	require.Equal(t, http.StatusFound, res.Status, res.Body)
	require.Equal(t, "/consent", res.Location.Path)
	c.Front.use(a)
	consent := f.Browser.get(t, res.Location.String())
	require.Equal(t, http.StatusOK, consent.Status, consent.Body)
	c.Front.use(third)
	up := c.decide(t, f, consent, "approve")
	require.Equal(t, http.StatusSeeOther, up.Status, "the CSRF token and the transaction of instance A, decided on C: %s", up.Body)
	cb, err := c.OP.Login(t.Context(), f.Browser.Client, up.Location.String())
	require.NoError(t, err)
	c.Front.use(b)
	final := f.Browser.get(t, cb.String())
	require.Equal(t, http.StatusFound, final.Status, "the binding cookie set on C, checked on B: %s", final.Body)
	q := final.Location.Query()
	require.Equal(t, f.State, q.Get("state"))
	require.Equal(t, c.BaseURL, q.Get("iss"), "every instance is one issuer")

	c.Front.use(a)
	tok, err := client.OAuth.Exchange(t.Context(), q.Get("code"), withVerifier(f.Verifier))
	require.NoError(t, err, "the code minted on B, redeemed on A")
	c.Front.use(b)
	next, err := c.refresh(t, client, tok.RefreshToken)
	require.NoError(t, err, "the refresh token issued on A, rotated on B")
	require.Equal(t, http.StatusOK, c.gatewayStatus(t, next.AccessToken), "B's gateway takes the token")
	c.Front.use(third)
	require.Equal(t, http.StatusOK, c.gatewayStatus(t, tok.AccessToken), "and C's takes A's")

	c.Front.use(a)
	status, _, _ := c.postFormJSON(t, "/revoke", url.Values{"token": {next.RefreshToken}, "client_id": {client.ID}})
	require.Equal(t, http.StatusOK, status)
	for _, i := range []int{b, third} {
		c.Front.use(i)
		took, ok := within(time.Second, func() bool { return c.gatewayStatus(t, next.AccessToken) == http.StatusUnauthorized })
		require.True(t, ok, "instance %d's gateway still takes the token revoked on A after %s", i, took)
		t.Logf("revocation on A refused at instance %d's gateway after %s", i, took)
	}
}

// One code sent to two instances at the same moment: exactly one of them
// issues tokens, the other sees a replay, and the replay revokes what the
// first issued.
func TestACodeRedeemedOnTwoInstancesAtOnceIssuesTokensOnce(t *testing.T) {
	be := startBackend(t)
	c := startCluster(t, 2, withEnv("MCP_UPSTREAM", be.URL))
	client := c.register(t, nil)
	c.Front.roundRobin()
	for range 5 {
		f := newFlow(t, client)
		code := c.authorize(t, f).Query().Get("code")
		form := exchangeForm(client, code, f.Verifier)
		type answer struct {
			status int
			doc    map[string]any
		}
		answers := make([]answer, 2)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range answers {
			wg.Go(func() {
				direct := &proxy{t: t, BaseURL: c.Direct[i]}
				<-start
				status, _, doc := direct.postToken(t, form)
				answers[i] = answer{status, doc}
			})
		}
		close(start)
		wg.Wait()

		var won []map[string]any
		for _, a := range answers {
			switch a.status {
			case http.StatusOK:
				won = append(won, a.doc)
			case http.StatusBadRequest:
				require.Equal(t, "invalid_grant", a.doc["error"])
			default:
				t.Fatalf("a redemption answered %d %v", a.status, a.doc)
			}
		}
		require.Len(t, won, 1, "exactly one instance issues tokens for the code")
		// The other request was a replay of a redeemed code with the right
		// verifier: the grant is revoked, everywhere.
		_, err := c.refresh(t, client, won[0]["refresh_token"].(string))
		require.Equal(t, "invalid_grant", oauthErrorCode(err))
		for i := range c.Direct {
			c.Front.use(i)
			require.Equal(t, http.StatusUnauthorized, c.gatewayStatus(t, won[0]["access_token"].(string)))
		}
		c.Front.roundRobin()
	}
}

// A refresh token rotated on A and presented again on B is reuse: B
// revokes the grant, A refuses the successor, and both gateways refuse its
// access token within a second.
func TestRefreshTokenReuseOnAnotherInstanceRevokesTheGrant(t *testing.T) {
	be := startBackend(t)
	c := startCluster(t, 2, withEnv("MCP_UPSTREAM", be.URL), withEnv("REFRESH_REUSE_GRACE", "0"))
	client := c.register(t, nil)
	tok, _ := c.login(t, client)

	c.Front.use(0)
	next, err := c.refresh(t, client, tok.RefreshToken)
	require.NoError(t, err)
	c.Front.use(1)
	require.Equal(t, http.StatusOK, c.gatewayStatus(t, next.AccessToken))
	_, err = c.refresh(t, client, tok.RefreshToken)
	require.Equal(t, "invalid_grant", oauthErrorCode(err), "B recognises the token A rotated")

	c.Front.use(0)
	_, err = c.refresh(t, client, next.RefreshToken)
	require.Equal(t, "invalid_grant", oauthErrorCode(err), "and the reuse on B revoked the grant A had rotated")
	for i := range c.Direct {
		c.Front.use(i)
		took, ok := within(time.Second, func() bool { return c.gatewayStatus(t, next.AccessToken) == http.StatusUnauthorized })
		require.True(t, ok, "instance %d's gateway still takes the token after %s", i, took)
	}
}

// rotateOn rotates the signing key through instance i's admin endpoint, as
// `oidcproxy keys rotate` asks a running server, and returns the new kid.
func (c *cluster) rotateOn(t *testing.T, i int) string {
	t.Helper()
	admin := httptest.NewServer(c.Apps[i].AdminHandler())
	defer admin.Close()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, admin.URL+"/keys/rotate", nil)
	require.NoError(t, err)
	req.Header.Set(httpapi.AdminRequestHeader, "1")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	doc := decodeBody(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode, doc)
	kid, _ := doc["kid"].(string)
	require.NotEmpty(t, kid, doc)
	return kid
}

// jwksKids lists the key ids an instance publishes.
func jwksKids(t *testing.T, base string) []string {
	t.Helper()
	_, _, doc, _ := getJSON(t, base+"/jwks.json")
	var kids []string
	for _, k := range doc["keys"].([]any) {
		kids = append(kids, k.(map[string]any)["kid"].(string))
	}
	return kids
}

// keyPropagation bounds how long a key rotated on one instance may take to
// be published, used and accepted by the others. They hear of it through
// the database's notification, in milliseconds; the periodic reload (a
// minute) is only the fallback while the notification connection is down,
// so a bound of seconds tells the two apart.
const keyPropagation = 3 * time.Second

// published polls instance i's JWKS (every millisecond, so that the
// delays the tests log mean something) until it lists kid, and returns how
// long that took; the test fails past keyPropagation.
func (c *cluster) published(t *testing.T, i int, kid string) time.Duration {
	t.Helper()
	start := time.Now()
	for !slices.Contains(jwksKids(t, c.Direct[i]), kid) {
		took := time.Since(start)
		require.Less(t, took, keyPropagation, "instance %d does not publish the key %s %v after its rotation elsewhere", i, kid, took)
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

// tokenKid reads the key id from a JWT's header (the proxy checks the
// signature; the test reads which key made it).
func tokenKid(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	require.Len(t, parts, 3)
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	require.NoError(t, err)
	var h struct {
		Kid string `json:"kid"`
	}
	require.NoError(t, json.Unmarshal(raw, &h))
	return h.Kid
}

// A key rotated on A is published by B, signs B's next tokens, and
// verifies on B, within seconds and with no reload asked of B: the
// rotation's writes to the key table notify every instance through the
// database (migration 4's trigger), and each reloads its key ring on
// that notification. The other way round too, and on every one of a
// series of rotations, whose delays the test logs.
func TestAKeyRotatedOnOneInstanceVerifiesOnTheOthers(t *testing.T) {
	be := startBackend(t)
	c := startCluster(t, 2, withEnv("MCP_UPSTREAM", be.URL))
	client := c.register(t, nil)
	c.Front.use(0)
	before, _ := c.login(t, client)

	kid := c.rotateOn(t, 0)
	require.Contains(t, jwksKids(t, c.Direct[0]), kid)
	after, _ := c.login(t, client)
	require.Equal(t, kid, tokenKid(t, after.AccessToken), "A signs with the key it rotated to")

	took := c.published(t, 1, kid)
	t.Logf("a key rotated on A was published by B %v later", took)
	c.Front.use(1)
	require.Equal(t, http.StatusOK, c.gatewayStatus(t, after.AccessToken), "B verifies a token signed with the key rotated on A")
	require.Equal(t, http.StatusOK, c.gatewayStatus(t, before.AccessToken), "and still one the retired key signed")
	fromB, _ := c.login(t, client)
	require.Equal(t, kid, tokenKid(t, fromB.AccessToken), "B signs with the key rotated on A")
	require.ElementsMatch(t, jwksKids(t, c.Direct[0]), jwksKids(t, c.Direct[1]), "both publish the same key set")
	require.Len(t, jwksKids(t, c.Direct[1]), 2)

	// The other way round: B's rotation, A's verification and signing.
	kid2 := c.rotateOn(t, 1)
	c.Front.use(1)
	latest, _ := c.login(t, client)
	took = c.published(t, 0, kid2)
	t.Logf("a key rotated on B was published by A %v later", took)
	c.Front.use(0)
	require.Equal(t, http.StatusOK, c.gatewayStatus(t, latest.AccessToken))
	fromA, _ := c.login(t, client)
	require.Equal(t, kid2, tokenKid(t, fromA.AccessToken), "A signs with the key rotated on B")

	// `oidcproxy keys rotate` on a host that runs no instance rotates on
	// the database directly: both instances hear of it.
	cfg, err := config.Load(nil, func(k string) string { return c.Env[k] }, oidcproxy.ProviderSections())
	require.NoError(t, err)
	ring, closeRing, err := oidcproxy.InitializeKeys(t.Context(), cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	offline, err := ring.Rotate(t.Context(), oidcproxy.MaxTokenTTL(cfg))
	closeRing()
	require.NoError(t, err)
	for i := range c.Direct {
		took := c.published(t, i, offline.ID)
		t.Logf("a key rotated on the database by the command was published by instance %d %v later", i, took)
	}
	c.Front.use(1)
	offlineToken, _ := c.login(t, client)
	require.Equal(t, offline.ID, tokenKid(t, offlineToken.AccessToken))

	// A series of rotations, alternating sides: each reaches the other
	// instance within the bound.
	const rotations = 20
	delays := make([]time.Duration, 0, rotations)
	for i := range rotations {
		from, to := i%2, (i+1)%2
		delays = append(delays, c.published(t, to, c.rotateOn(t, from)))
	}
	slices.Sort(delays)
	t.Logf("%d rotations reached the other instance in: min %v, median %v, max %v (all: %v)",
		rotations, delays[0], delays[rotations/2], delays[rotations-1], delays)
}

package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/gateway"
	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

const (
	testResource    = "https://proxy.example/mcp"
	testMetadataURL = "https://proxy.example/.well-known/oauth-protected-resource/mcp"
	testUpstreamAT  = "upstream-access-token-of-alice"

	// Bearer tokens the fixedVerifier knows.
	tokenAlice       = "alice.token.sig"
	tokenUnverified  = "bob.token.sig"
	tokenExpired     = "expired.token.sig"
	tokenNoScope     = "noscope.token.sig"
	tokenStoreDown   = "storedown.token.sig"
	tokenUnavailable = "unavailable.token.sig"
	tokenQuoted      = "quoted.token.sig"
	tokenForeignSeal = "foreignseal.token.sig" // its upstream tokens cannot be opened
	tokenBadSubject  = "badsubject.token.sig"
	tokenPlainError  = "plainerror.token.sig"
	tokenMachine     = "machine.token.sig"    // a machine client's (client_credentials)
	tokenEnterprise  = "enterprise.token.sig" // a person's, with no upstream login behind it
)

// fixedVerifier is a hand-written ports.VerifyAccessToken that answers from
// a table keyed by token. The gateway only reacts to the verdict; the real
// use case (signature, iss, aud, exp, scopes, revocation, opening the
// upstream tokens) is exercised through the gateway by the end-to-end tests
// in test/e2e.
type fixedVerifier struct {
	results map[string]verdict

	mu    sync.Mutex
	calls []ports.VerifyAccessTokenCommand
}

// verdict is the answer for one token; upstreamErr replaces it when the
// command asks WithUpstream.
type verdict struct {
	access      ports.VerifiedAccess
	err         error
	upstreamErr error
	// noUpstream: the grant has no upstream token, so WithUpstream
	// yields none (as the use case answers for such grants).
	noUpstream bool
}

func (v *fixedVerifier) Handle(_ context.Context, cmd ports.VerifyAccessTokenCommand) (ports.VerifiedAccess, error) {
	v.mu.Lock()
	v.calls = append(v.calls, cmd)
	v.mu.Unlock()
	r, ok := v.results[cmd.Token]
	switch {
	case !ok:
		return ports.VerifiedAccess{}, domain.ErrInvalidToken("the access token is not valid")
	case r.err != nil:
		return ports.VerifiedAccess{}, r.err
	case cmd.WithUpstream && r.upstreamErr != nil:
		return ports.VerifiedAccess{}, r.upstreamErr
	case cmd.WithUpstream && !r.noUpstream:
		r.access.UpstreamAccessToken = testUpstreamAT
	}
	return r.access, nil
}

func (v *fixedVerifier) Calls() []ports.VerifyAccessTokenCommand {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]ports.VerifyAccessTokenCommand(nil), v.calls...)
}

// fixture is a gateway in front of a backend, both on loopback.
type fixture struct {
	gw       *gateway.Gateway
	verifier *fixedVerifier
	logs     *syncBuffer
	front    *httptest.Server
	client   *http.Client
	upstream *url.URL
}

func grantFor(id, subject, email string, verified bool) domain.Grant {
	return domain.Grant{
		ID: id, Subject: subject,
		Identity: domain.Identity{Subject: subject, Email: email, EmailVerified: verified},
	}
}

func newVerifier() *fixedVerifier {
	alice := grantFor("grant-alice", "alice", "alice@example.com", true)
	bob := grantFor("grant-bob", "bob", "bob@example.com", false)
	carol := grantFor("grant-carol", "carol", "", false)
	badSubject := grantFor("grant-dave", "dave\r\nX-Admin: 1", "", false)
	return &fixedVerifier{results: map[string]verdict{
		tokenAlice:      {access: ports.VerifiedAccess{Token: domain.AccessToken{Subject: "alice", GrantID: alice.ID}, Grant: alice}},
		tokenUnverified: {access: ports.VerifiedAccess{Token: domain.AccessToken{Subject: "bob", GrantID: bob.ID}, Grant: bob}},
		tokenForeignSeal: {
			access:      ports.VerifiedAccess{Token: domain.AccessToken{Subject: "carol", GrantID: carol.ID}, Grant: carol},
			upstreamErr: domain.ErrServerError(errorString("verify access token: open upstream tokens: seal: sealed value failed authentication")),
		},
		tokenBadSubject: {access: ports.VerifiedAccess{Token: domain.AccessToken{Subject: badSubject.Subject}, Grant: badSubject}},
		tokenMachine: {access: ports.VerifiedAccess{
			Token: domain.AccessToken{Subject: "ci-1", ClientID: "ci-1", Machine: true, GrantID: "grant-ci"},
			Grant: domain.Grant{ID: "grant-ci", ClientID: "ci-1", Subject: "ci-1", Machine: true},
		}, noUpstream: true},
		tokenEnterprise: {access: ports.VerifiedAccess{
			Token: domain.AccessToken{Subject: "erin", GrantID: "grant-erin"}, Grant: grantFor("grant-erin", "erin", "erin@example.com", true),
		}, noUpstream: true},
		tokenPlainError:  {err: errLikeBolt},
		tokenExpired:     {err: domain.ErrInvalidToken("the access token has expired")},
		tokenNoScope:     {err: domain.ErrInsufficientScope("the access token lacks a required scope")},
		tokenStoreDown:   {err: domain.ErrServerError(errLikeBolt)},
		tokenUnavailable: {err: domain.ErrTemporarilyUnavailable("the token store is unavailable", errLikeBolt)},
		tokenQuoted:      {err: domain.ErrInvalidToken("say \"hi\" \\ then\r\nbye")},
	}}
}

var errLikeBolt = errorString("boltstore: get grant: timeout")

type errorString string

func (e errorString) Error() string { return string(e) }

// defaultOptions protect a backend at backendURL, mounted at /mcp.
func defaultOptions(t testing.TB, backendURL string) gateway.Options {
	t.Helper()
	u, err := url.Parse(backendURL)
	require.NoError(t, err)
	return gateway.Options{
		Upstream:            u,
		MountPath:           "/mcp",
		Resource:            testResource,
		ResourceMetadataURL: testMetadataURL,
		RequiredScopes:      []string{"mcp:tools", "profile"},
		AllowedOrigins:      []string{"https://app.example", "http://localhost:6274"},
	}
}

// newFixture starts backend, then a gateway in front of it with opts
// (adjusted by edit) on its own loopback server.
func newFixture(t testing.TB, backend http.Handler, edit func(*gateway.Options)) *fixture {
	t.Helper()
	be := httptest.NewServer(backend)
	t.Cleanup(be.Close)
	return newFixtureFor(t, be.URL+"/mcp", edit)
}

func newFixtureFor(t testing.TB, upstream string, edit func(*gateway.Options)) *fixture {
	t.Helper()
	f := &fixture{verifier: newVerifier(), logs: &syncBuffer{}}
	opts := defaultOptions(t, upstream)
	f.upstream = opts.Upstream
	if edit != nil {
		edit(&opts)
	}
	logger := slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	gw, err := gateway.New(f.verifier, logger, opts)
	require.NoError(t, err)
	f.gw = gw
	f.front = httptest.NewServer(gw)
	// No compression: the tests check that the gateway adds no
	// Accept-Encoding of its own.
	f.client = &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 10 * time.Second}
	t.Cleanup(func() {
		f.client.CloseIdleConnections()
		f.front.Close()
		gw.Close()
	})
	return f
}

// do sends a request to the gateway with the given bearer token ("" for
// none) and extra headers, and returns the response with its body read.
func (f *fixture) do(t testing.TB, method, path, token string, body []byte, header http.Header) (*http.Response, []byte) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, f.front.URL+path, nilIfEmpty(rd))
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := f.client.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(res.Body)
	require.NoError(t, err)
	return res, buf.Bytes()
}

func nilIfEmpty(r *bytes.Reader) interface {
	Read([]byte) (int, error)
} {
	if r == nil {
		return http.NoBody
	}
	return r
}

// echo is a backend that answers with what it received.
type echoed struct {
	Method     string      `json:"method"`
	RequestURI string      `json:"request_uri"`
	Path       string      `json:"path"`
	RawPath    string      `json:"raw_path"`
	Host       string      `json:"host"`
	Header     http.Header `json:"header"`
	Body       string      `json:"body"`
}

func echoBackend() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body bytes.Buffer
		_, _ = body.ReadFrom(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Mcp-Session-Id", "session-from-backend")
		_ = json.NewEncoder(w).Encode(echoed{
			Method: r.Method, RequestURI: r.RequestURI, Path: r.URL.Path, RawPath: r.URL.RawPath,
			Host: r.Host, Header: r.Header, Body: body.String(),
		})
	})
}

func decodeEcho(t testing.TB, body []byte) echoed {
	t.Helper()
	var e echoed
	require.NoError(t, json.Unmarshal(body, &e), string(body))
	return e
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// jsonRPCError is the body the gateway sends for transport-level failures.
func jsonRPCError(code int, message string) string {
	m, _ := json.Marshal(message)
	return `{"jsonrpc":"2.0","error":{"code":` + itoa(code) + `,"message":` + string(m) + `},"id":null}`
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func lines(s string) []string { return strings.Split(strings.TrimSpace(s), "\n") }

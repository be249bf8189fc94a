package gateway_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/gateway"
)

func TestTheBackendSeesTheIdentityAndNeverTheClientsCredentialsOrSpoofedHeaders(t *testing.T) {
	f := newFixture(t, echoBackend(), nil)
	header := http.Header{
		"Cookie":               {"__Host-consent=secret"},
		"X-Forwarded-User":     {"mallory"},
		"X_forwarded_user":     {"mallory"}, // read as X-Forwarded-User by CGI-style servers
		"X-Forwarded-Email":    {"mallory@example.com"},
		"X_Forwarded_Email":    {"mallory@example.com"},
		"X-Forwarded-For":      {"10.6.6.6"},
		"X-Forwarded-Host":     {"evil.example"},
		"Forwarded":            {"for=10.6.6.6"},
		"Mcp-Session-Id":       {"session-1"},
		"Mcp-Protocol-Version": {"2025-11-25"},
		"Last-Event-Id":        {"42"},
		"Accept":               {"application/json, text/event-stream"},
		"Content-Type":         {"application/json"},
		"User-Agent":           {"mcp-test-client"},
		"Upgrade":              {"websocket"},
		"Connection":           {"Upgrade"},
	}
	res, body := f.do(t, http.MethodPost, "/mcp", tokenAlice, []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`), header)
	require.Equal(t, http.StatusOK, res.StatusCode, string(body))
	require.Equal(t, "session-from-backend", res.Header.Get("Mcp-Session-Id"), "response headers pass through")

	got := decodeEcho(t, body)
	require.Equal(t, `{"jsonrpc":"2.0","id":1,"method":"ping"}`, got.Body)
	require.Equal(t, f.upstream.Host, got.Host, "the backend sees its own host")
	h := got.Header
	require.Equal(t, []string{"alice"}, h["X-Forwarded-User"])
	require.Equal(t, []string{"alice@example.com"}, h["X-Forwarded-Email"])
	require.Equal(t, []string{"127.0.0.1"}, h["X-Forwarded-For"], "a client-sent X-Forwarded-For is replaced")
	require.Equal(t, []string{strings.TrimPrefix(f.front.URL, "http://")}, h["X-Forwarded-Host"])
	require.Equal(t, []string{"http"}, h["X-Forwarded-Proto"])
	require.Equal(t, []string{"session-1"}, h["Mcp-Session-Id"])
	require.Equal(t, []string{"2025-11-25"}, h["Mcp-Protocol-Version"])
	require.Equal(t, []string{"42"}, h["Last-Event-Id"])
	require.Equal(t, []string{"application/json, text/event-stream"}, h["Accept"])
	require.Equal(t, []string{"mcp-test-client"}, h["User-Agent"])
	for _, absent := range []string{"Authorization", "Cookie", "X_forwarded_user", "X_Forwarded_Email", "Forwarded", "Upgrade", "Connection", "Accept-Encoding", "Content-Encoding"} {
		require.NotContains(t, h, absent)
	}
	require.NotContains(t, string(body), tokenAlice)
	require.NotContains(t, string(body), "mallory")
}

func TestAnUnverifiedEmailIsNotForwardedAndItsHeaderCannotBeSpoofed(t *testing.T) {
	f := newFixture(t, echoBackend(), nil)
	res, body := f.do(t, http.MethodPost, "/mcp", tokenUnverified, []byte(`{}`),
		http.Header{"X-Forwarded-Email": {"ceo@example.com"}})
	require.Equal(t, http.StatusOK, res.StatusCode)
	h := decodeEcho(t, body).Header
	require.Equal(t, []string{"bob"}, h["X-Forwarded-User"])
	require.NotContains(t, h, "X-Forwarded-Email")
}

func TestIdentityHeaderNamesAreConfigurable(t *testing.T) {
	f := newFixture(t, echoBackend(), func(o *gateway.Options) {
		o.UserHeader = "x-auth-request-user"
		o.EmailHeader = "X-Auth-Request-Email"
	})
	res, body := f.do(t, http.MethodPost, "/mcp", tokenAlice, []byte(`{}`),
		http.Header{"X-Auth-Request-User": {"mallory"}})
	require.Equal(t, http.StatusOK, res.StatusCode)
	h := decodeEcho(t, body).Header
	require.Equal(t, []string{"alice"}, h["X-Auth-Request-User"])
	require.Equal(t, []string{"alice@example.com"}, h["X-Auth-Request-Email"])
	require.NotContains(t, h, "X-Forwarded-User")
}

func TestTheUpstreamTokenIsForwardedOnlyWhenEnabled(t *testing.T) {
	t.Run("enabled", func(t *testing.T) {
		f := newFixture(t, echoBackend(), func(o *gateway.Options) { o.UpstreamTokenHeader = "X-Upstream-Token" })
		res, body := f.do(t, http.MethodPost, "/mcp", tokenAlice, []byte(`{}`),
			http.Header{"X-Upstream-Token": {"spoofed"}, "X_upstream_token": {"spoofed"}})
		require.Equal(t, http.StatusOK, res.StatusCode)
		h := decodeEcho(t, body).Header
		require.Equal(t, []string{testUpstreamAT}, h["X-Upstream-Token"])
		require.NotContains(t, h, "X_upstream_token")
		require.True(t, f.verifier.Calls()[0].WithUpstream)
	})
	t.Run("enabled, but the upstream tokens cannot be opened", func(t *testing.T) {
		var hits atomic.Int64
		f := newFixture(t, countingBackend(&hits), func(o *gateway.Options) { o.UpstreamTokenHeader = "X-Upstream-Token" })
		res, body := f.do(t, http.MethodPost, "/mcp", tokenForeignSeal, []byte(`{}`), nil)
		require.Equal(t, http.StatusInternalServerError, res.StatusCode)
		require.Equal(t, `{"error":"server_error","error_description":"internal error"}`, string(body))
		require.Zero(t, hits.Load())
		require.Contains(t, f.logs.String(), "sealed value failed authentication")
	})
	t.Run("disabled", func(t *testing.T) {
		f := newFixture(t, echoBackend(), nil)
		res, body := f.do(t, http.MethodPost, "/mcp", tokenAlice, []byte(`{}`), nil)
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.NotContains(t, string(body), testUpstreamAT)
		// Nothing is decrypted for a gateway that does not forward it.
		require.False(t, f.verifier.Calls()[0].WithUpstream)
	})
}

func TestRequestPathsMapOntoTheUpstreamPath(t *testing.T) {
	tests := []struct {
		name     string
		mount    string // MountPath; "" derives it from the resource (/mcp)
		upstream string // path and query of the upstream URL
		request  string
		want     string // the backend's RequestURI; "" when refused
		status   int
	}{
		{name: "the mount point itself", upstream: "/mcp", request: "/mcp", want: "/mcp"},
		{name: "the mount point with a slash", upstream: "/mcp", request: "/mcp/", want: "/mcp/"},
		{name: "a sub-path with a query", upstream: "/mcp", request: "/mcp/sse?session=1&x=%20", want: "/mcp/sse?session=1&x=%20"},
		{name: "onto another upstream path", upstream: "/api/v1/", request: "/mcp/tools", want: "/api/v1/tools"},
		{name: "onto the upstream root", upstream: "", request: "/mcp", want: "/"},
		{name: "a sub-path onto the upstream root", upstream: "", request: "/mcp/x", want: "/x"},
		{name: "an escaped slash stays escaped", upstream: "/mcp", request: "/mcp/a%2Fb", want: "/mcp/a%2Fb"},
		{name: "the upstream query comes first", upstream: "/mcp?tenant=a", request: "/mcp?x=1", want: "/mcp?tenant=a&x=1"},
		{name: "mounted at the root", mount: "/", upstream: "/backend", request: "/anything", want: "/backend/anything"},
		{name: "an explicit deeper mount", mount: "/gw/mcp/", upstream: "/mcp", request: "/gw/mcp/x", want: "/mcp/x"},
		{name: "a sibling of the mount point", upstream: "/mcp", request: "/mcpx", status: http.StatusNotFound},
		{name: "outside the mount point", upstream: "/mcp", request: "/admin", status: http.StatusNotFound},
		{name: "a dot-dot segment", upstream: "/mcp", request: "/mcp/../admin", status: http.StatusBadRequest},
		{name: "an escaped dot-dot segment", upstream: "/mcp", request: "/mcp/%2e%2e/admin", status: http.StatusBadRequest},
		{name: "a dot-dot segment after a backslash", upstream: "/mcp", request: "/mcp/x%5C..%5Cadmin", status: http.StatusBadRequest},
	}
	be := httptest.NewServer(echoBackend())
	t.Cleanup(be.Close)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixtureFor(t, be.URL+tt.upstream, func(o *gateway.Options) { o.MountPath = tt.mount })
			res, body := f.do(t, http.MethodGet, tt.request, tokenAlice, nil, nil)
			if tt.status != 0 {
				require.Equal(t, tt.status, res.StatusCode, string(body))
				require.Contains(t, string(body), `"jsonrpc":"2.0"`)
				return
			}
			require.Equal(t, http.StatusOK, res.StatusCode, string(body))
			require.Equal(t, tt.want, decodeEcho(t, body).RequestURI)
		})
	}
}

func TestAnUnreachableBackendGivesA502JSONRPCErrorWithoutItsAddress(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close()) // nothing listens here any more

	f := newFixtureFor(t, "http://"+addr+"/mcp", nil)
	res, body := f.do(t, http.MethodPost, "/mcp", tokenAlice, []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`), nil)
	require.Equal(t, http.StatusBadGateway, res.StatusCode)
	require.Equal(t, "application/json", res.Header.Get("Content-Type"))
	require.Equal(t, jsonRPCError(-32603, "Bad gateway: the MCP server is unavailable"), string(body))
	require.NotContains(t, string(body), addr)
	require.Contains(t, f.logs.String(), "level=ERROR")
	require.Contains(t, f.logs.String(), addr, "the operator learns which backend failed")
}

func TestBodiesOverTheLimitAreRefusedWith413(t *testing.T) {
	var hits atomic.Int64
	f := newFixture(t, countingBackend(&hits), func(o *gateway.Options) { o.MaxBodyBytes = 1024 })
	tooLarge := jsonRPCError(-32600, "Request body too large")

	t.Run("a body at the limit passes", func(t *testing.T) {
		res, body := f.do(t, http.MethodPost, "/mcp", tokenAlice, []byte(strings.Repeat("a", 1024)), nil)
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Len(t, decodeEcho(t, body).Body, 1024)
	})
	t.Run("a declared length over the limit never reaches the backend", func(t *testing.T) {
		before := hits.Load()
		res, body := f.do(t, http.MethodPost, "/mcp", tokenAlice, []byte(strings.Repeat("a", 1025)), nil)
		require.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode)
		require.Equal(t, tooLarge, string(body))
		require.Equal(t, before, hits.Load())
	})
	t.Run("a chunked body is cut at the limit", func(t *testing.T) {
		pr, pw := io.Pipe()
		go func() {
			for range 8 {
				if _, err := pw.Write([]byte(strings.Repeat("b", 512))); err != nil {
					return
				}
			}
			_ = pw.Close()
		}()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, f.front.URL+"/mcp", pr)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tokenAlice)
		res, err := f.client.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode)
		require.Equal(t, tooLarge, string(body))
	})
}

// sseBackend writes one event, waits for proceed, writes a second event and
// then holds the stream open until the client leaves, reporting that on
// cancelled.
type sseBackend struct {
	proceed   chan struct{}
	cancelled chan struct{}
}

func newSSEBackend() *sseBackend {
	return &sseBackend{proceed: make(chan struct{}), cancelled: make(chan struct{}, 1)}
}

func (b *sseBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_, _ = io.WriteString(w, "id: 1\nevent: message\ndata: {\"n\":1}\n\n")
	_ = rc.Flush()
	select {
	case <-b.proceed:
	case <-r.Context().Done():
		b.cancelled <- struct{}{}
		return
	}
	_, _ = io.WriteString(w, "id: 2\nevent: message\ndata: {\"n\":2}\n\n")
	_ = rc.Flush()
	<-r.Context().Done()
	b.cancelled <- struct{}{}
}

// readEvent reads one SSE event (up to the blank line).
func readEvent(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	var ev strings.Builder
	for {
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		if line == "\n" {
			return ev.String()
		}
		ev.WriteString(line)
	}
}

func openStream(t *testing.T, ctx context.Context, f *fixture) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.front.URL+"/mcp", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tokenAlice)
	req.Header.Set("Accept", "text/event-stream")
	res, err := f.client.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
	return res
}

func TestServerSentEventsArriveOneByOne(t *testing.T) {
	be := newSSEBackend()
	f := newFixture(t, be, nil)
	f.client.Timeout = 0 // the stream's context bounds it
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()

	res := openStream(t, ctx, f)
	defer res.Body.Close()
	r := bufio.NewReader(res.Body)
	// The backend writes the second event only after this read: a gateway
	// that buffered would make it time out.
	require.Equal(t, "id: 1\nevent: message\ndata: {\"n\":1}\n", readEvent(t, r))
	close(be.proceed)
	require.Equal(t, "id: 2\nevent: message\ndata: {\"n\":2}\n", readEvent(t, r))
}

func TestAClientLeavingMidStreamCancelsTheBackendRequestWithoutLeaks(t *testing.T) {
	be := newSSEBackend()
	f := newFixture(t, be, nil)
	f.client.Timeout = 0

	// Settle the servers' own goroutines before counting.
	f.client.CloseIdleConnections()
	f.gw.Close()
	before := runtime.NumGoroutine()

	ctx, cancel := context.WithCancel(t.Context())
	res := openStream(t, ctx, f)
	r := bufio.NewReader(res.Body)
	require.Equal(t, "id: 1\nevent: message\ndata: {\"n\":1}\n", readEvent(t, r))
	cancel() // the client goes away in the middle of the stream
	_ = res.Body.Close()

	select {
	case <-be.cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the backend's request context was not cancelled")
	}
	// A plain loop rather than require.Eventually, which polls from a
	// goroutine of its own.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		f.client.CloseIdleConnections()
		f.gw.Close()
		time.Sleep(20 * time.Millisecond)
	}
	require.LessOrEqual(t, runtime.NumGoroutine(), before, "goroutines left:\n%s", stacks())
	require.NotContains(t, f.logs.String(), "level=ERROR", "a client leaving is not a failure")
}

func TestBackendStatusHeadersAndDeleteRequestsPassThrough(t *testing.T) {
	be := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, http.MethodDelete, r.Method)
		require.Equal(t, "session-9", r.Header.Get("Mcp-Session-Id"))
		w.Header().Set("X-Backend", "yes")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","error":{"code":-32001,"message":"Session not found"},"id":null}`)
	})
	f := newFixture(t, be, nil)
	res, body := f.do(t, http.MethodDelete, "/mcp", tokenAlice, nil, http.Header{"Mcp-Session-Id": {"session-9"}})
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	require.Equal(t, "yes", res.Header.Get("X-Backend"))
	require.Equal(t, `{"jsonrpc":"2.0","error":{"code":-32001,"message":"Session not found"},"id":null}`, string(body))
}

func TestTheMountPathDefaultsToThePathOfTheResource(t *testing.T) {
	be := httptest.NewServer(echoBackend())
	t.Cleanup(be.Close)
	f := newFixtureFor(t, be.URL+"/backend", func(o *gateway.Options) {
		o.MountPath = ""
		o.Resource = "https://proxy.example/tools/mcp"
	})
	res, body := f.do(t, http.MethodGet, "/tools/mcp/x", tokenAlice, nil, nil)
	require.Equal(t, http.StatusOK, res.StatusCode, string(body))
	require.Equal(t, "/backend/x", decodeEcho(t, body).RequestURI)
	u, _ := url.Parse(f.front.URL + "/mcp")
	res, _ = f.do(t, http.MethodGet, u.Path, tokenAlice, nil, nil)
	require.Equal(t, http.StatusNotFound, res.StatusCode)
}

func stacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

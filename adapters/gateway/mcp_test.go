package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"
)

// seenRequest is what the MCP backend received, as recorded by its HTTP
// middleware.
type seenRequest struct {
	method, session, user, email, authorization, host string
}

// recorder wraps the backend and keeps what every request carried.
type recorder struct {
	next http.Handler
	mu   sync.Mutex
	seen []seenRequest
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec.mu.Lock()
	rec.seen = append(rec.seen, seenRequest{
		method: r.Method, session: r.Header.Get("Mcp-Session-Id"), user: r.Header.Get("X-Forwarded-User"),
		email: r.Header.Get("X-Forwarded-Email"), authorization: r.Header.Get("Authorization"), host: r.Host,
	})
	rec.mu.Unlock()
	rec.next.ServeHTTP(w, r)
}

func (rec *recorder) Seen() []seenRequest {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]seenRequest(nil), rec.seen...)
}

type whoamiOut struct {
	User  string `json:"user"`
	Email string `json:"email,omitempty"`
}

// newMCPBackend is a real MCP server (official Go SDK) with a whoami tool
// that reports the identity headers the gateway added and sends a progress
// notification first, so that the answer streams as SSE.
func newMCPBackend() http.Handler {
	server := mcp.NewServer(&mcp.Implementation{Name: "backend", Version: "v1.0.0"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "whoami", Description: "who is calling"},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, whoamiOut, error) {
			if token := req.Params.GetProgressToken(); token != nil {
				_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: token, Progress: 1, Message: "looking"})
			}
			h := req.Extra.Header
			return nil, whoamiOut{User: h.Get("X-Forwarded-User"), Email: h.Get("X-Forwarded-Email")}, nil
		})
	// Default options: the SDK's DNS-rebinding protection is on, so the
	// backend refuses a foreign Host header on loopback.
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)
}

// bearerTransport is how an MCP client that has its token talks to the
// gateway: under the gateway's public host name, with the bearer header.
type bearerTransport struct {
	token string
	host  string
	next  http.RoundTripper
}

func (b *bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	r.Host = b.host
	return b.next.RoundTrip(r)
}

func TestAnMCPSessionRunsThroughTheGateway(t *testing.T) {
	rec := &recorder{next: newMCPBackend()}
	be := httptest.NewServer(rec)
	t.Cleanup(be.Close)
	f := newFixtureFor(t, be.URL+"/mcp", nil)

	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	httpClient := &http.Client{Transport: &bearerTransport{token: tokenAlice, host: "proxy.example", next: transport}}
	progress := make(chan string, 1)
	client := mcp.NewClient(&mcp.Implementation{Name: "client", Version: "v1.0.0"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			progress <- req.Params.Message
		},
	})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint: f.front.URL + "/mcp", HTTPClient: httpClient, MaxRetries: -1,
	}, nil)
	require.NoError(t, err, "initialize through the gateway")
	require.NotEmpty(t, cs.ID(), "the backend's Mcp-Session-Id reached the client")

	tools, err := cs.ListTools(ctx, nil)
	require.NoError(t, err)
	require.Len(t, tools.Tools, 1)
	require.Equal(t, "whoami", tools.Tools[0].Name)

	params := &mcp.CallToolParams{Name: "whoami"}
	params.SetProgressToken("p1")
	res, err := cs.CallTool(ctx, params)
	require.NoError(t, err)
	require.False(t, res.IsError)
	require.Equal(t, map[string]any{"user": "alice", "email": "alice@example.com"}, res.StructuredContent)
	select {
	case msg := <-progress:
		require.Equal(t, "looking", msg, "a notification streamed before the result")
	case <-ctx.Done():
		t.Fatal("the progress notification did not arrive")
	}
	sessionID := cs.ID()
	require.NoError(t, cs.Close())

	seen := rec.Seen()
	require.NotEmpty(t, seen)
	require.Empty(t, seen[0].session, "initialize has no session yet")
	methods := map[string]bool{}
	sessions := map[string]int{}
	for i, s := range seen {
		methods[s.method] = true
		sessions[s.session]++
		require.Empty(t, s.authorization, "request %d: the backend never sees the bearer token", i)
		require.Equal(t, "alice", s.user, "request %d", i)
		require.Equal(t, "alice@example.com", s.email, "request %d", i)
		require.Equal(t, be.Listener.Addr().String(), s.host, "request %d", i)
	}
	delete(sessions, "") // the SDK's requests before the session exists
	require.Len(t, sessions, 1, "%+v", seen)
	require.GreaterOrEqual(t, sessions[sessionID], 4, "initialized, tools/list, tools/call, DELETE carry the session: %+v", seen)
	require.True(t, methods[http.MethodGet], "the standalone SSE stream is opened through the gateway")
	require.True(t, methods[http.MethodDelete], "closing the session ends it at the backend")
}

package gateway_test

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/gateway"
)

// keepAliveBackend is a real net/http server on loopback that closes idle
// keep-alive connections after idle, as Node.js (5 s), uvicorn (5 s) and
// gunicorn (2 s) do. It counts the requests and connections it served.
type keepAliveBackend struct {
	URL      string
	requests atomic.Int64
	conns    atomic.Int64
	mu       sync.Mutex
	bodies   []string
}

func startKeepAliveBackend(t *testing.T, idle time.Duration) *keepAliveBackend {
	t.Helper()
	b := &keepAliveBackend{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{
		IdleTimeout:       idle,
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			b.requests.Add(1)
			b.mu.Lock()
			b.bodies = append(b.bodies, string(body))
			b.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				b.conns.Add(1)
			}
		},
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	b.URL = "http://" + ln.Addr().String() + "/mcp"
	return b
}

func (b *keepAliveBackend) received() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.bodies...)
}

const toolsList = `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`

// A request sent just as the backend closes the idle connection it travels
// on fails, and a POST cannot be sent again once bytes of it went out. The
// gateway therefore gives up idle connections before the backend does: here
// the backend closes them after 200 ms and the gateway after 100 ms (the
// same relation as the 4 s default against Node's 5 s), and requests come
// exactly as the backend's timer fires, which without that rule gave
// several 502s in every 50 requests.
func TestIdleBackendConnectionsNeverProduceA502(t *testing.T) {
	const backendIdle = 200 * time.Millisecond
	be := startKeepAliveBackend(t, backendIdle)
	f := newFixtureFor(t, be.URL, func(o *gateway.Options) { o.BackendIdleTimeout = backendIdle / 2 })

	const iterations = 50
	var failures []string
	for i := range iterations {
		res, body := f.do(t, http.MethodPost, "/mcp", tokenAlice, []byte(toolsList), nil)
		if res.StatusCode != http.StatusOK {
			failures = append(failures, res.Status+" "+string(body))
		}
		// The backend's idle timer starts when it has written its answer,
		// a little before the client has read it: sleeping the idle time
		// plus 0 to 1.9 ms sends the next request across the moment the
		// backend closes the connection.
		time.Sleep(backendIdle + time.Duration(i%20)*100*time.Microsecond)
	}
	require.Empty(t, failures, "requests answered with an error (of %d):\n%s", iterations, f.logs.String())
	require.Equal(t, int64(iterations), be.requests.Load(), "every request reached the backend exactly once")

	t.Run("connections are still reused within the idle time", func(t *testing.T) {
		before := be.conns.Load()
		for range 5 {
			res, _ := f.do(t, http.MethodPost, "/mcp", tokenAlice, []byte(toolsList), nil)
			require.Equal(t, http.StatusOK, res.StatusCode)
			time.Sleep(backendIdle / 10)
		}
		require.Equal(t, before+1, be.conns.Load())
	})
}

// deadOnReuse wraps a real connection to the backend. Once armed, it fails
// the next write without sending a byte and closes the connection, which
// is what the transport meets when it picks a pooled connection whose
// closing by the backend it noticed a moment too late. A real backend
// cannot produce that moment on demand (TestIdleBackendConnectionsNeverProduceA502
// meets it by chance), hence this fault injection around a real socket.
type deadOnReuse struct {
	net.Conn
	armed *atomic.Bool
}

func (c *deadOnReuse) Write(p []byte) (int, error) {
	if c.armed.CompareAndSwap(true, false) {
		_ = c.Conn.Close()
		return 0, net.ErrClosed
	}
	return c.Conn.Write(p)
}

func TestARequestOnAConnectionThatDiedBeforeAnyByteWasSentIsSentAgain(t *testing.T) {
	be := startKeepAliveBackend(t, time.Minute)
	f := newFixtureFor(t, be.URL, nil)
	var armed atomic.Bool
	var dials atomic.Int64
	gateway.WrapBackendConns(f.gw, func(c net.Conn) net.Conn {
		dials.Add(1)
		return &deadOnReuse{Conn: c, armed: &armed}
	})

	res, _ := f.do(t, http.MethodPost, "/mcp", tokenAlice, []byte(toolsList), nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, int64(1), dials.Load())

	// A JSON-RPC message, bodies at and past the size sent in one write
	// with the headers, and a large one.
	bodies := []string{toolsList, strings.Repeat("x", 2<<10), strings.Repeat("y", 3<<10), strings.Repeat("z", 100<<10)}
	for _, body := range bodies {
		armed.Store(true)
		res, out := f.do(t, http.MethodPost, "/mcp", tokenAlice, []byte(body), nil)
		require.Equal(t, http.StatusOK, res.StatusCode, "%d bytes: %s", len(body), out)
		require.False(t, armed.Load(), "the pooled connection was reused and failed")
	}
	require.Equal(t, int64(1+len(bodies)), dials.Load(), "each failed request was sent again on a new connection")
	require.Equal(t, append([]string{toolsList}, bodies...), be.received(), "each request reached the backend once, whole")
}

// countingWrites counts the writes on a real connection to the backend.
type countingWrites struct {
	net.Conn
	writes *atomic.Int64
}

func (c *countingWrites) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// A small request leaves in one write, headers and body together: there is
// no moment at which the headers are out and the body is not, when a dying
// connection would fail a request that can no longer be retried.
func TestASmallRequestLeavesInOneWrite(t *testing.T) {
	be := startKeepAliveBackend(t, time.Minute)
	f := newFixtureFor(t, be.URL, nil)
	var writes atomic.Int64
	gateway.WrapBackendConns(f.gw, func(c net.Conn) net.Conn { return &countingWrites{Conn: c, writes: &writes} })
	for range 3 {
		before := writes.Load()
		res, _ := f.do(t, http.MethodPost, "/mcp", tokenAlice, []byte(toolsList), nil)
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Equal(t, before+1, writes.Load())
	}
}

// A request the backend may have received is never sent twice: a POST is
// not idempotent, and the gateway claims no idempotency for it.
func TestARequestTheBackendMayHaveReceivedIsNeverSentTwice(t *testing.T) {
	var requests atomic.Int64
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		if requests.Add(1) == 1 {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
			return
		}
		// Read the second request on the kept-alive connection, then drop
		// the connection without an answer, as a crashing backend would.
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	})
	f := newFixture(t, backend, nil)
	res, _ := f.do(t, http.MethodPost, "/mcp", tokenAlice, []byte(toolsList), nil)
	require.Equal(t, http.StatusOK, res.StatusCode)

	res, body := f.do(t, http.MethodPost, "/mcp", tokenAlice, []byte(toolsList), nil)
	require.Equal(t, http.StatusBadGateway, res.StatusCode, string(body))
	require.Equal(t, int64(2), requests.Load(), "the backend saw the failed request once")
}

package gateway_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/gateway"
)

// slowClient opens a real TCP connection to the gateway, sends the headers
// of a POST declaring a 100-byte body, then the body at one byte per
// second, as a client holding connections open on purpose would. It
// returns the connection and a reader over what the gateway answers.
func slowClient(t *testing.T, f *fixture, token string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.front.URL, "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	head := "POST /mcp HTTP/1.1\r\nHost: proxy.example\r\nContent-Type: application/json\r\nContent-Length: 100\r\n"
	if token != "" {
		head += "Authorization: Bearer " + token + "\r\n"
	}
	_, err = io.WriteString(conn, head+"\r\n")
	require.NoError(t, err)
	go func() {
		for range 100 {
			if _, err := conn.Write([]byte("x")); err != nil {
				return
			}
			time.Sleep(time.Second)
		}
	}()
	return conn, bufio.NewReader(conn)
}

// closedWithin reports whether the gateway closes conn within d: an EOF,
// or a reset when it closed with bytes of the client's unread.
func closedWithin(conn net.Conn, r *bufio.Reader, d time.Duration) bool {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, r)
	return !errors.Is(err, os.ErrDeadlineExceeded)
}

func TestABodySentAtOneBytePerSecondIsCutAtTheBodyTimeout(t *testing.T) {
	const timeout = 1500 * time.Millisecond
	var hits atomic.Int64
	f := newFixture(t, countingBackend(&hits), func(o *gateway.Options) { o.BodyTimeout = timeout })

	start := time.Now()
	conn, r := slowClient(t, f, tokenAlice)
	_ = conn.SetReadDeadline(time.Now().Add(timeout + 3*time.Second))
	res, err := http.ReadResponse(r, nil)
	require.NoError(t, err, "the gateway answered before the client gave up")
	elapsed := time.Since(start)
	body, _ := io.ReadAll(res.Body)
	require.Equal(t, http.StatusRequestTimeout, res.StatusCode)
	require.Equal(t, jsonRPCError(-32600, "Request timeout: the request body did not arrive in time"), string(body))
	require.True(t, res.Close, "the connection is not kept for another request")
	require.GreaterOrEqual(t, elapsed, timeout-100*time.Millisecond)
	require.Less(t, elapsed, timeout+time.Second)
	require.True(t, closedWithin(conn, r, time.Second), "the gateway closed the connection")
	require.Zero(t, hits.Load(), "nothing reached the backend")
	require.Contains(t, f.logs.String(), "request body not received in time")
}

// A request refused before its body is read (here: no token) must not let
// the server wait for the rest of the body without end.
func TestARefusedRequestWithASlowBodyIsClosedAtTheBodyTimeout(t *testing.T) {
	const timeout = 1500 * time.Millisecond
	f := newFixture(t, echoBackend(), func(o *gateway.Options) { o.BodyTimeout = timeout })

	start := time.Now()
	conn, r := slowClient(t, f, "")
	_ = conn.SetReadDeadline(time.Now().Add(timeout + 3*time.Second))
	res, err := http.ReadResponse(r, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	_, _ = io.Copy(io.Discard, res.Body)
	require.True(t, closedWithin(conn, r, timeout+time.Second), "the connection was still open after the body timeout")
	require.Less(t, time.Since(start), timeout+2*time.Second)
}

// The deadline covers the body only: a response that streams for longer
// than BodyTimeout, after a POST with a body or on a GET, is not cut.
func TestStreamsOutlastTheBodyTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	slowEvents := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		for i := range 4 {
			_, _ = fmt.Fprintf(w, "id: %d\ndata: {\"n\":%d}\n\n", i, i)
			_ = rc.Flush()
			select {
			case <-time.After(timeout):
			case <-r.Context().Done():
				return
			}
		}
	})
	f := newFixture(t, slowEvents, func(o *gateway.Options) { o.BodyTimeout = timeout })
	f.client.Timeout = 0
	for _, tt := range []struct {
		method string
		body   io.Reader
	}{
		{http.MethodPost, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"countdown"}}`)},
		{http.MethodGet, nil},
	} {
		t.Run(tt.method, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, tt.method, f.front.URL+"/mcp", tt.body)
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+tokenAlice)
			req.Header.Set("Accept", "text/event-stream")
			start := time.Now()
			res, err := f.client.Do(req)
			require.NoError(t, err)
			defer res.Body.Close()
			require.Equal(t, http.StatusOK, res.StatusCode)
			r := bufio.NewReader(res.Body)
			for i := range 4 {
				require.Equal(t, fmt.Sprintf("id: %d\ndata: {\"n\":%d}\n", i, i), readEvent(t, r))
			}
			_, err = io.Copy(io.Discard, r)
			require.NoError(t, err, "the stream ended normally")
			require.Greater(t, time.Since(start), 3*timeout, "the stream outlived the body timeout")
		})
	}
}

// A middleware that wraps the ResponseWriter without Unwrap hides the
// connection: requests are still served, and the operator is told once.
func TestWithoutReadDeadlinesTheGatewaySaysSoOnceAndServes(t *testing.T) {
	f := newFixture(t, echoBackend(), nil)
	hiding := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.gw.ServeHTTP(struct{ http.ResponseWriter }{w}, r)
	}))
	t.Cleanup(hiding.Close)
	for range 2 {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, hiding.URL+"/mcp", strings.NewReader(toolsList))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tokenAlice)
		res, err := f.client.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(res.Body)
		_ = res.Body.Close()
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Equal(t, toolsList, decodeEcho(t, body).Body)
	}
	require.Equal(t, 1, strings.Count(f.logs.String(), "request bodies have no read deadline"))
}

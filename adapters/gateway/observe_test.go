package gateway_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/gateway"
)

func TestTheGatewayInjectsOurTraceContextInsteadOfTheClients(t *testing.T) {
	f := newFixture(t, echoBackend(), func(o *gateway.Options) {
		o.InjectTrace = func(_ context.Context, h http.Header) {
			h.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
		}
	})
	res, body := f.do(t, http.MethodPost, "/mcp", tokenAlice, []byte(`{}`), http.Header{
		"Traceparent": {"00-11111111111111111111111111111111-2222222222222222-01"},
		"Tracestate":  {"client=forged"},
	})
	require.Equal(t, http.StatusOK, res.StatusCode)
	got := decodeEcho(t, body)
	require.Equal(t, []string{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}, got.Header["Traceparent"])
	require.Empty(t, got.Header["Tracestate"])
}

func TestTheGatewayReportsBytesAndStreams(t *testing.T) {
	var in, out, opened, closed atomic.Int64
	sse := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = w.Write([]byte("data: one\n\n"))
			return
		}
		echoBackend().ServeHTTP(w, r)
	})
	f := newFixture(t, sse, func(o *gateway.Options) {
		o.Observe = gateway.Observer{
			BytesIn:      func(_ context.Context, n int64) { in.Add(n) },
			BytesOut:     func(_ context.Context, n int64) { out.Add(n) },
			StreamOpened: func(context.Context) { opened.Add(1) },
			StreamClosed: func(context.Context) { closed.Add(1) },
		}
	})
	res, body := f.do(t, http.MethodPost, "/mcp", tokenAlice, []byte(`{"jsonrpc":"2.0"}`), nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Eventually(t, func() bool { return out.Load() == int64(len(body)) }, 2*time.Second, 10*time.Millisecond)
	require.Equal(t, int64(len(`{"jsonrpc":"2.0"}`)), in.Load())
	require.Zero(t, opened.Load(), "a JSON answer is not a stream")

	res, _ = f.do(t, http.MethodGet, "/mcp", tokenAlice, nil, http.Header{"Accept": {"text/event-stream"}})
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, int64(1), opened.Load())
	require.Eventually(t, func() bool { return closed.Load() == 1 }, 2*time.Second, 10*time.Millisecond)
}

func TestEventStreamDetection(t *testing.T) {
	for ct, want := range map[string]bool{
		"text/event-stream":                true,
		"Text/Event-Stream; charset=utf-8": true,
		"text/event-stream ;x=y":           true,
		"text/event-streamx":               false,
		"application/json":                 false,
		"":                                 false,
	} {
		require.Equal(t, want, gateway.IsEventStream(ct), ct)
	}
}

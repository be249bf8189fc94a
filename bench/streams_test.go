package bench_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
)

// idleStreamCount is how many idle SSE streams BenchmarkGatewayIdleStreams
// holds open at once (issue 3 asks for 1,000).
const idleStreamCount = 1000

// idleStreamEvent is the one event an idle stream carries before it goes
// quiet: a progress notification.
const idleStreamEvent = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":\"p1\",\"progress\":1}}\n\n"

// newIdleSSEBackend answers every request with an SSE stream that sends
// one event and then stays open until the client leaves.
func newIdleSSEBackend(tb testing.TB) *httptest.Server {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, idleStreamEvent)
		_ = http.NewResponseController(w).Flush()
		<-r.Context().Done()
	}))
	tb.Cleanup(srv.Close)
	return srv
}

// liveMemory is the heap and stack memory in use after two collections.
func liveMemory() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// holdIdleStreams opens idleStreamCount GET streams to url (token i%len
// on stream i, none when tokens is empty), reads each one's first event,
// and returns the memory and goroutines the open streams hold, per
// stream. All streams are closed before it returns.
func holdIdleStreams(b *testing.B, url string, tokens []string) (bytesPerStream, goroutinesPerStream float64) {
	b.Helper()
	transport := newTransport()
	transport.MaxIdleConnsPerHost = idleStreamCount
	client := &http.Client{Transport: transport}
	ctx, cancel := context.WithCancel(b.Context())
	bodies := make([]io.ReadCloser, 0, idleStreamCount)
	defer func() {
		for _, body := range bodies {
			_ = body.Close()
		}
		cancel()
		transport.CloseIdleConnections()
	}()
	before, g0 := liveMemory(), runtime.NumGoroutine()
	for i := range idleStreamCount {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			b.Fatal(err)
		}
		req.Header["Accept"] = []string{"text/event-stream"}
		if len(tokens) > 0 {
			req.Header["Authorization"] = []string{"Bearer " + tokens[i%len(tokens)]}
		}
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		bodies = append(bodies, res.Body)
		if res.StatusCode != http.StatusOK {
			b.Fatalf("stream %d: HTTP %d", i, res.StatusCode)
		}
		first := make([]byte, len(idleStreamEvent))
		if _, err := io.ReadFull(res.Body, first); err != nil {
			b.Fatalf("stream %d: %v", i, err)
		}
	}
	after, g1 := liveMemory(), runtime.NumGoroutine()
	return float64(after-before) / idleStreamCount, float64(g1-g0) / idleStreamCount
}

// BenchmarkGatewayIdleStreams measures issue 3's memory bound through the
// real App: 1,000 idle SSE streams held open directly to a backend and
// then through the App's gateway (bearer check, telemetry, identity
// headers). Client, App and backend share the process, so the gateway's
// own memory per stream is the difference (target ≤ 64 KiB).
//
//	go test -run '^$' -bench GatewayIdleStreams -benchtime 1x -count 3 ./bench
func BenchmarkGatewayIdleStreams(b *testing.B) {
	backend := newIdleSSEBackend(b)
	p, tokens := newGatewayProxy(b, backend.URL, nil)
	var direct, gw, directG, gwG float64
	b.ResetTimer()
	for range b.N {
		d, dg := holdIdleStreams(b, backend.URL+"/mcp", nil)
		g, gg := holdIdleStreams(b, p.MCPURL(), tokens)
		direct, gw, directG, gwG = direct+d, gw+g, directG+dg, gwG+gg
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(direct/n/1024, "direct-KiB/stream")
	b.ReportMetric(gw/n/1024, "gw-total-KiB/stream")
	own := (gw - direct) / n / 1024
	b.ReportMetric(own, "gw-own-KiB/stream")
	b.ReportMetric((gwG-directG)/n, "gw-own-goroutines/stream")
	logVerdict(b, "gateway memory per idle stream (KiB)", own, 64, false)
}

package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oidcproxy/oidcproxy/adapters/gateway"
	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// The benchmarks run a baseline and the gateway side by side in one process
// on loopback and report the ratio. Run them with
//
//	go test -run '^$' -bench . -benchtime 1x -count 3 ./adapters/gateway/
//
// and take the median of the three runs of each metric.

const (
	benchClients = 50 // concurrent keep-alive clients
	// Each iteration interleaves benchSlices short measurements of each
	// side, alternating which goes first, so that load from other
	// processes on the machine hits both sides alike.
	benchSlices   = 8
	benchSlice    = 250 * time.Millisecond
	benchToken    = "bench.token.sig"
	sseStreams    = 4
	sseEvents     = 60_000 // per stream and measurement
	idleStreams   = 1000
	benchBodySize = 1024
)

// instantVerifier accepts every token at no cost, so that the benchmarks
// measure the gateway's proxy path and not signature verification (the
// token adapter caches verified signatures; see the lead's benchmarks).
type instantVerifier struct{ access ports.VerifiedAccess }

func (v instantVerifier) Handle(context.Context, ports.VerifyAccessTokenCommand) (ports.VerifiedAccess, error) {
	return v.access, nil
}

func newInstantVerifier() instantVerifier {
	return instantVerifier{access: ports.VerifiedAccess{
		Token: domain.AccessToken{Subject: "alice", GrantID: "grant-1"},
		Grant: domain.Grant{ID: "grant-1", Subject: "alice",
			Identity: domain.Identity{Subject: "alice", Email: "alice@example.com", EmailVerified: true}},
	}}
}

// toolsCall is a ~1 KiB tools/call request.
func toolsCall() []byte {
	head := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"search","arguments":{"query":"`
	tail := `"}}}`
	return []byte(head + strings.Repeat("x", benchBodySize-len(head)-len(tail)) + tail)
}

// toolResult is a ~1 KiB tools/call result.
func toolResult() []byte {
	head := `{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"`
	tail := `"}]}}`
	return []byte(head + strings.Repeat("y", benchBodySize-len(head)-len(tail)) + tail)
}

// benchSetup is one backend reached directly, through a bare ReverseProxy
// and through the gateway.
type benchSetup struct {
	backend, bare, gw *httptest.Server
	g                 *gateway.Gateway
}

func newBenchSetup(b *testing.B, backend http.Handler) *benchSetup {
	b.Helper()
	s := &benchSetup{backend: httptest.NewServer(backend)}
	b.Cleanup(s.backend.Close)
	upstream, err := url.Parse(s.backend.URL + "/mcp")
	if err != nil {
		b.Fatal(err)
	}
	bare, bareTransport := gateway.NewBareProxy(upstream)
	s.bare = httptest.NewServer(bare)
	b.Cleanup(func() { s.bare.Close(); bareTransport.CloseIdleConnections() })

	g, err := gateway.New(newInstantVerifier(), slog.New(slog.DiscardHandler), gateway.Options{
		Upstream: upstream, MountPath: "/mcp", Resource: testResource, ResourceMetadataURL: testMetadataURL,
		RequiredScopes: []string{"mcp:tools"}, AllowedOrigins: []string{"https://app.example"},
	})
	if err != nil {
		b.Fatal(err)
	}
	s.g = g
	s.gw = httptest.NewServer(g)
	b.Cleanup(func() { s.gw.Close(); g.Close() })
	return s
}

func newBenchClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: conns,
		DisableCompression:  true,
	}}
}

// loadResult is one measurement of one side.
type loadResult struct {
	requests  int
	elapsed   time.Duration
	latencies []time.Duration
}

// postLoad runs benchClients keep-alive clients posting body to url for d.
func postLoad(client *http.Client, url string, body []byte, d time.Duration) (loadResult, error) {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		res      loadResult
		firstErr error
	)
	start := time.Now()
	deadline := start.Add(d)
	for range benchClients {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 1<<14)
			for time.Now().Before(deadline) {
				req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
				if err != nil {
					firstErr = err
					return
				}
				req.Header["Content-Type"] = []string{"application/json"}
				req.Header["Accept"] = []string{"application/json, text/event-stream"}
				req.Header["Authorization"] = []string{"Bearer " + benchToken}
				req.Header["Mcp-Session-Id"] = []string{"bench-session"}
				req.Header["Mcp-Protocol-Version"] = []string{"2025-11-25"}
				t0 := time.Now()
				r, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, r.Body)
					_ = r.Body.Close()
					if err == nil && r.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", r.StatusCode)
					}
				}
				if err != nil {
					mu.Lock()
					firstErr = errors.Join(firstErr, err)
					mu.Unlock()
					return
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			res.latencies = append(res.latencies, lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.requests = len(res.latencies)
	return res, firstErr
}

func (r loadResult) rps() float64 { return float64(r.requests) / r.elapsed.Seconds() }

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

// merge combines the measurements of one side.
func merge(rs []loadResult) (rps float64, p50, p99 time.Duration) {
	var n int
	var elapsed time.Duration
	var all []time.Duration
	for _, r := range rs {
		n += r.requests
		elapsed += r.elapsed
		all = append(all, r.latencies...)
	}
	slices.Sort(all)
	return float64(n) / elapsed.Seconds(), percentile(all, 0.50), percentile(all, 0.99)
}

// BenchmarkGatewayVsBareProxy compares a tools/call-sized POST through the
// gateway (valid bearer, instant verifier) with the same POST through a
// bare ReverseProxy with the same transport and buffer pool, interleaved
// (see benchSlices).
func BenchmarkGatewayVsBareProxy(b *testing.B) {
	result := toolResult()
	s := newBenchSetup(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header()["Content-Type"] = []string{"application/json"}
		w.Header()["Content-Length"] = []string{strconv.Itoa(len(result))}
		_, _ = w.Write(result)
	}))
	body := toolsCall()
	client := newBenchClient(benchClients)
	b.Cleanup(client.CloseIdleConnections)
	bareURL, gwURL := s.bare.URL+"/mcp", s.gw.URL+"/mcp"

	// Warm up both paths (connections, pools, code).
	for _, u := range []string{bareURL, gwURL} {
		if _, err := postLoad(client, u, body, 200*time.Millisecond); err != nil {
			b.Fatal(err)
		}
	}
	var bare, gw []loadResult
	run := func(u string, into *[]loadResult) {
		r, err := postLoad(client, u, body, benchSlice)
		if err != nil {
			b.Fatal(err)
		}
		*into = append(*into, r)
	}
	b.ResetTimer()
	for range b.N {
		for i := range benchSlices {
			if i%2 == 0 {
				run(bareURL, &bare)
				run(gwURL, &gw)
			} else {
				run(gwURL, &gw)
				run(bareURL, &bare)
			}
		}
	}
	b.StopTimer()
	bareRPS, bareP50, bareP99 := merge(bare)
	gwRPS, gwP50, gwP99 := merge(gw)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(bareRPS, "bare-req/s")
	b.ReportMetric(gwRPS, "gw-req/s")
	b.ReportMetric(gwRPS/bareRPS, "gw/bare-req/s")
	b.ReportMetric(float64(bareP50.Microseconds()), "bare-p50-µs")
	b.ReportMetric(float64(gwP50.Microseconds()), "gw-p50-µs")
	b.ReportMetric(float64(bareP99.Microseconds()), "bare-p99-µs")
	b.ReportMetric(float64(gwP99.Microseconds()), "gw-p99-µs")
	b.ReportMetric(float64(gwP99)/float64(bareP99), "gw/bare-p99")
}

// sseEvent is a typical small notification.
const sseEvent = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":\"p1\",\"progress\":1}}\n\n"

// sseFirehose writes sseEvents events, flushing each, as an MCP server
// streaming notifications does.
func sseFirehose(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	for range sseEvents {
		if _, err := io.WriteString(w, sseEvent); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// readStream opens one stream and counts its events.
func readStream(ctx context.Context, client *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+benchToken)
	req.Header.Set("Accept", "text/event-stream")
	res, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	n := 0
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			n++
		}
	}
	return n, sc.Err()
}

// sseLoad reads sseStreams concurrent streams to the end and returns the
// events per second.
func sseLoad(ctx context.Context, client *http.Client, url string) (float64, error) {
	var wg sync.WaitGroup
	errs := make([]error, sseStreams)
	counts := make([]int, sseStreams)
	start := time.Now()
	for i := range sseStreams {
		wg.Go(func() { counts[i], errs[i] = readStream(ctx, client, url) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	total := 0
	for i, c := range counts {
		if errs[i] == nil && c != sseEvents {
			errs[i] = fmt.Errorf("stream %d: %d events, want %d", i, c, sseEvents)
		}
		total += c
	}
	return float64(total) / elapsed.Seconds(), errors.Join(errs...)
}

// BenchmarkSSEThroughGatewayVsDirect compares events per second of
// sseStreams concurrent SSE streams read through the gateway and directly
// from the backend, interleaved (see benchSlices).
func BenchmarkSSEThroughGatewayVsDirect(b *testing.B) {
	s := newBenchSetup(b, http.HandlerFunc(sseFirehose))
	client := newBenchClient(sseStreams)
	b.Cleanup(client.CloseIdleConnections)
	directURL, gwURL := s.backend.URL+"/mcp", s.gw.URL+"/mcp"
	var direct, gw []float64
	run := func(u string, into *[]float64) {
		eps, err := sseLoad(b.Context(), client, u)
		if err != nil {
			b.Fatal(err)
		}
		*into = append(*into, eps)
	}
	run(directURL, new([]float64)) // warm-up
	run(gwURL, new([]float64))
	b.ResetTimer()
	for range b.N {
		for i := range benchSlices {
			if i%2 == 0 {
				run(directURL, &direct)
				run(gwURL, &gw)
			} else {
				run(gwURL, &gw)
				run(directURL, &direct)
			}
		}
	}
	b.StopTimer()
	mean := func(xs []float64) float64 {
		var s float64
		for _, x := range xs {
			s += x
		}
		return s / float64(len(xs))
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(mean(direct), "direct-events/s")
	b.ReportMetric(mean(gw), "gw-events/s")
	b.ReportMetric(mean(gw)/mean(direct), "gw/direct")
}

// idleBackend sends one event and then keeps the stream open until the
// client leaves.
func idleBackend(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, sseEvent)
	_ = http.NewResponseController(w).Flush()
	<-r.Context().Done()
}

func inUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// openIdle opens idleStreams streams to url, reads each one's first event
// and returns the memory and goroutines they hold, per stream, and a func
// that closes them.
func openIdle(b *testing.B, url string) (perStream float64, goroutines float64) {
	client := newBenchClient(idleStreams)
	ctx, cancel := context.WithCancel(b.Context())
	defer func() {
		cancel()
		client.CloseIdleConnections()
	}()
	before, g0 := inUse(), runtime.NumGoroutine()
	bodies := make([]io.ReadCloser, 0, idleStreams)
	defer func() {
		for _, body := range bodies {
			_ = body.Close()
		}
	}()
	for range idleStreams {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+benchToken)
		req.Header.Set("Accept", "text/event-stream")
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		bodies = append(bodies, res.Body)
		first := make([]byte, len(sseEvent))
		if _, err := io.ReadFull(res.Body, first); err != nil {
			b.Fatal(err)
		}
	}
	after, g1 := inUse(), runtime.NumGoroutine()
	return float64(after-before) / idleStreams, float64(g1-g0) / idleStreams
}

// BenchmarkIdleStreamMemory opens idleStreams idle SSE streams directly and
// through the gateway and reports (HeapInuse+StackInuse) per stream. Client,
// gateway and backend share the process, so the gateway's own share is the
// difference between the two.
func BenchmarkIdleStreamMemory(b *testing.B) {
	s := newBenchSetup(b, http.HandlerFunc(idleBackend))
	var direct, gw, directG, gwG float64
	b.ResetTimer()
	for range b.N {
		d, dg := openIdle(b, s.backend.URL+"/mcp")
		s.g.Close()
		g, gg := openIdle(b, s.gw.URL+"/mcp")
		s.g.Close()
		direct, gw, directG, gwG = direct+d, gw+g, directG+dg, gwG+gg
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(direct/n/1024, "direct-KiB/stream")
	b.ReportMetric(gw/n/1024, "gw-total-KiB/stream")
	b.ReportMetric((gw-direct)/n/1024, "gw-own-KiB/stream")
	b.ReportMetric((gwG-directG)/n, "gw-own-goroutines/stream")
}

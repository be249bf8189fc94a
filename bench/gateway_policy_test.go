package bench_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/test/policytest"
)

// gatewayPolicyTarget is what per-tool authorization may cost: the gateway
// deciding every request with a policy of 50 rules keeps 0.85 of the bare
// proxy's throughput.
const gatewayPolicyTarget = 0.85

// writeBenchPolicy writes benchPolicy to a file and returns its path.
func writeBenchPolicy(tb testing.TB) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(policytest.BenchPolicy()), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// allocMeter counts the heap allocations of the whole process (clients,
// proxies and backend) over a side's slices; the difference per request
// between two sides is what one proxy allocates more than the other.
type allocMeter struct {
	mu       sync.Mutex
	mallocs  map[string]uint64
	requests map[string]int
}

func (m *allocMeter) wrap(s side) side {
	slice := s.slice
	s.slice = func(ctx context.Context) (sliceResult, error) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		r, err := slice(ctx)
		runtime.ReadMemStats(&after)
		m.mu.Lock()
		m.mallocs[s.name] += after.Mallocs - before.Mallocs
		m.requests[s.name] += r.requests
		m.mu.Unlock()
		return r, err
	}
	return s
}

func (m *allocMeter) perRequest(name string) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.requests[name] == 0 {
		return 0
	}
	return float64(m.mallocs[name]) / float64(m.requests[name])
}

// BenchmarkGatewayPolicy is BenchmarkGateway with the gateway deciding
// every request by a policy of 50 rules (benchPolicy), against the bare
// proxy, with the gateway without a policy as a third side so that the
// policy's own cost shows: three Apps and a bare proxy in front of one
// backend, their slices interleaved.
//
// Metrics, per side (pol = gateway with the policy, gw = without, bare):
// req/s, p99 in milliseconds, process CPU µs per request and heap
// allocations per request (clients and backend included, so only the
// differences between sides mean anything); pol/bare-req/s (target ≥
// 0.85) and pol/gw-req/s. Run it with -benchtime 1x; -v logs the verdict.
func BenchmarkGatewayPolicy(b *testing.B) {
	backend := newMCPBackend(b)
	upstream, err := url.Parse(backend.URL + "/mcp")
	if err != nil {
		b.Fatal(err)
	}
	pol, polTokens := newGatewayProxyEnv(b, backend.URL, nil, map[string]string{"OIDC_PROXY_POLICY_FILE": writeBenchPolicy(b)})
	gw, gwTokens := newGatewayProxy(b, backend.URL, nil)
	transport := newTransport()
	b.Cleanup(transport.CloseIdleConnections)
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	body, want := toolsCallRequest(), int64(len(toolsCallResult()))
	loads := []struct {
		name string
		load mcpLoad
	}{
		{"pol", mcpLoad{client: client, url: pol.MCPURL(), tokens: polTokens, body: body, wantBytes: want}},
		{"gw", mcpLoad{client: client, url: gw.MCPURL(), tokens: gwTokens, body: body, wantBytes: want}},
		{"bare", mcpLoad{client: client, url: newBareProxy(b, upstream), tokens: polTokens, body: body, wantBytes: want}},
	}
	allocs := &allocMeter{mallocs: map[string]uint64{}, requests: map[string]int{}}
	var sides []side
	for _, l := range loads {
		sides = append(sides, allocs.wrap(mcpSide(b, l.name, l.load)))
	}
	st := runSides(b, gatewaySlices, sides, nil)
	b.ReportMetric(0, "ns/op")
	for i, l := range loads {
		b.ReportMetric(st[i].PerSec, l.name+"-req/s")
		b.ReportMetric(st[i].P99, l.name+"-p99-ms")
		if st[i].CPUPerRequest > 0 {
			b.ReportMetric(st[i].CPUPerRequest, l.name+"-cpu-µs/req")
		}
		b.ReportMetric(allocs.perRequest(l.name), l.name+"-allocs/req")
	}
	p, g, r := st[0], st[1], st[2]
	if r.PerSec > 0 && g.PerSec > 0 {
		b.ReportMetric(p.PerSec/r.PerSec, "pol/bare-req/s")
		b.ReportMetric(p.PerSec/g.PerSec, "pol/gw-req/s")
		logVerdict(b, fmt.Sprintf("gateway with a %d-rule policy ÷ bare throughput: %.0f ÷ %.0f req/s", policytest.BenchRules, p.PerSec, r.PerSec),
			p.PerSec/r.PerSec, gatewayPolicyTarget, true)
	}
}

// TestGatewayPolicyBenchHarnessWorks runs BenchmarkGatewayPolicy's
// gateway side once, small: the policy loads, has its 50 rules, lets the
// benchmark's calls through and refuses one it names.
func TestGatewayPolicyBenchHarnessWorks(t *testing.T) {
	require.Equal(t, policytest.BenchRules, strings.Count(policytest.BenchPolicy(), "    - name: "))
	backend := newMCPBackend(t)
	p, tokens := newGatewayProxyEnv(t, backend.URL, nil, map[string]string{"OIDC_PROXY_POLICY_FILE": writeBenchPolicy(t)})
	transport := newTransport()
	t.Cleanup(transport.CloseIdleConnections)
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	load := mcpLoad{client: client, url: p.MCPURL(), tokens: tokens, body: toolsCallRequest(), wantBytes: int64(len(toolsCallResult()))}
	res, err := load.run(t.Context(), 4, 50*time.Millisecond)
	require.NoError(t, err)
	require.Positive(t, res.requests)

	refused := mcpLoad{client: client, url: p.MCPURL(),
		body: []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"tool_0_reset"}}`), wantBytes: -1}
	require.ErrorContains(t, refused.post(t.Context(), tokens[0]), "HTTP 403", "the policy is in force")
}

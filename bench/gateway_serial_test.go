package bench_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"
)

// BenchmarkGatewaySerial is the per-request cost of one tools/call
// through the App's gateway and through the bare proxy, one request at a
// time from one client: without 50 clients queueing on two cores its
// ns/op, and allocs/op, is the steadiest measure of what the gateway adds
// (the difference of the two), which the interleaved BenchmarkGateway
// turns into a throughput ratio.
//
//	go test -run '^$' -bench GatewaySerial -count 5 ./bench
func BenchmarkGatewaySerial(b *testing.B) {
	backend := newMCPBackend(b)
	upstream, err := url.Parse(backend.URL + "/mcp")
	if err != nil {
		b.Fatal(err)
	}
	p, tokens := newGatewayProxy(b, backend.URL, nil)
	transport := newTransport()
	b.Cleanup(transport.CloseIdleConnections)
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	body, want := toolsCallRequest(), int64(len(toolsCallResult()))
	for _, tc := range []struct {
		name string
		load mcpLoad
	}{
		{"gw", mcpLoad{client: client, url: p.MCPURL(), body: body, wantBytes: want}},
		{"bare", mcpLoad{client: client, url: newBareProxy(b, upstream), body: body, wantBytes: want}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := b.Context()
			if err := tc.load.post(ctx, tokens[0]); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := tc.load.post(ctx, tokens[0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

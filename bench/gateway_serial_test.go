package bench_test

import "testing"

// BenchmarkGatewaySerial is the per-request cost of one tools/call
// through the App's gateway and through the bare proxy, one request at a
// time from one client: without 50 clients queueing on two cores its
// ns/op, and allocs/op, is the steadiest measure of what the gateway adds
// (the difference of the two), which the interleaved BenchmarkGateway
// turns into a throughput ratio.
//
//	go test -run '^$' -bench GatewaySerial -count 5 ./bench
func BenchmarkGatewaySerial(b *testing.B) {
	gw, bare := gatewayAndBare(b)
	for _, tc := range []struct {
		name string
		load mcpLoad
	}{{"gw", gw}, {"bare", bare}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx, token := b.Context(), tc.load.tokens[0]
			if err := tc.load.post(ctx, token); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := tc.load.post(ctx, token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

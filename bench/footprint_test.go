package bench_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oidcproxy/oidcproxy/adapters/boltstore"
)

// footprintGrants is how many grants the footprint benchmark holds, as
// issue 2 asks (with 10,000 clients: run it with -benchtime 10000x).
const footprintGrants = 100_000

// BenchmarkFootprint measures what the proxy keeps: with footprintGrants
// grants (each with a redeemed code and a live refresh token) seeded
// before the timer, each iteration registers one client through POST
// /register, 50 at a time. Run it with -benchtime 10000x for the target's
// 10,000 clients. It reports the bbolt file size (file-MB), the live heap
// of the whole test process after a GC (heap-MB: the App, the upstream IdP
// and the harness), and how much that heap grew across the registrations
// (heap-growth-MB), which must stay near zero: records live in the file,
// not in memory.
func BenchmarkFootprint(b *testing.B) {
	p := newProxy(b)
	p.seedGrants(newCredentials(footprintGrants, true))
	p.start(boltstore.Options{})
	transport := newTransport()
	b.Cleanup(transport.CloseIdleConnections)
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	warmUp(b, client, p.BaseURL+"/healthz")
	before := liveHeap()

	ctx := context.Background()
	var (
		fails      failures
		registered atomic.Int64
	)
	setClients(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := p.register(ctx, client); err != nil {
				fails.add(fmt.Errorf("register: %w", err))
				continue
			}
			registered.Add(1)
		}
	})
	b.StopTimer()
	fails.check(b)
	after := liveHeap()
	info, err := os.Stat(p.path)
	if err != nil {
		b.Fatalf("store file: %v", err)
	}
	b.ReportMetric(float64(registered.Load())/b.Elapsed().Seconds(), "registrations/s")
	b.ReportMetric(float64(info.Size())/(1<<20), "file-MB")
	b.ReportMetric(float64(after)/(1<<20), "heap-MB")
	b.ReportMetric(float64(int64(after)-int64(before))/(1<<20), "heap-growth-MB")
}

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

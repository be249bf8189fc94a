package ratelimit_test

import (
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/oidcproxy/oidcproxy/internal/ratelimit"
)

// The benchmarks measure the check as the HTTP middleware runs it: a known
// key, a limit generous enough that every request is admitted (the common
// case), with the real clock. The target is at most 1 µs and no
// allocation per check. Run them with:
//
//	go test -run '^$' -bench . -benchmem ./internal/ratelimit

var generous = ratelimit.Limit{PerMinute: ratelimit.MaxPerMinute, Burst: ratelimit.MaxBurst}

func BenchmarkAllowAddr(b *testing.B) {
	a, err := ratelimit.NewAddrs(generous, ratelimit.Options{})
	if err != nil {
		b.Fatal(err)
	}
	addr := netip.MustParseAddr("192.0.2.10")
	b.ReportAllocs()
	for b.Loop() {
		a.Allow(addr)
	}
}

// BenchmarkAllowAddrMany cycles through 10,000 known addresses, so that
// the maps are large and their entries mostly out of the CPU cache.
func BenchmarkAllowAddrMany(b *testing.B) {
	a, err := ratelimit.NewAddrs(generous, ratelimit.Options{})
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]netip.Addr, 10_000)
	for i := range keys {
		keys[i] = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i >> 8), byte(i), 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
		a.Allow(keys[i])
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		a.Allow(keys[i])
		i = (i + 1) % len(keys)
	}
}

// BenchmarkAllowAddrParallel runs the check on every core, each goroutine
// with its own client address.
func BenchmarkAllowAddrParallel(b *testing.B) {
	a, err := ratelimit.NewAddrs(generous, ratelimit.Options{})
	if err != nil {
		b.Fatal(err)
	}
	var next atomic.Uint32
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		n := next.Add(1)
		addr := netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)})
		for pb.Next() {
			a.Allow(addr)
		}
	})
}

// BenchmarkAllowAddrParallelOneKey is the worst case for contention: every
// core checks the same address.
func BenchmarkAllowAddrParallelOneKey(b *testing.B) {
	a, err := ratelimit.NewAddrs(generous, ratelimit.Options{})
	if err != nil {
		b.Fatal(err)
	}
	addr := netip.MustParseAddr("192.0.2.10")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			a.Allow(addr)
		}
	})
}

// BenchmarkAllowRefused measures a flood being refused.
func BenchmarkAllowRefused(b *testing.B) {
	a, err := ratelimit.NewAddrs(ratelimit.Limit{PerMinute: 1, Burst: 1}, ratelimit.Options{})
	if err != nil {
		b.Fatal(err)
	}
	addr := netip.MustParseAddr("192.0.2.10")
	a.Allow(addr)
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := a.Allow(addr); ok {
			b.Fatal("admitted")
		}
	}
}

func BenchmarkAllowSubject(b *testing.B) {
	k, err := ratelimit.NewKeys(generous, ratelimit.Options{})
	if err != nil {
		b.Fatal(err)
	}
	subject := "google-oauth2|104982311856227645813"
	b.ReportAllocs()
	for b.Loop() {
		k.Allow(subject)
	}
}

func BenchmarkAllowSubjectParallel(b *testing.B) {
	k, err := ratelimit.NewKeys(generous, ratelimit.Options{})
	if err != nil {
		b.Fatal(err)
	}
	var next atomic.Uint32
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		subject := "auth0|user-" + strconv.Itoa(int(next.Add(1)))
		for pb.Next() {
			k.Allow(subject)
		}
	})
}

package bench_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oidcproxy/oidcproxy/adapters/boltstore"
	"github.com/oidcproxy/oidcproxy/domain"
)

// replayKind says which replayed authorization codes a run mixes in.
type replayKind int

const (
	// noReplay: every request redeems a fresh code.
	noReplay replayKind = iota
	// replayStolen: every 4th request re-sends a code that was already
	// redeemed, with a verifier of the sender's own. This is the realistic
	// attack: a code leaks from the redirect (a browser history, a log, a
	// malicious app on the loopback port), but PKCE's verifier never left
	// the legitimate client. The proxy must answer invalid_grant and must
	// not revoke the grant (a code alone must not let anyone kill a user's
	// tokens); the store writes nothing.
	replayStolen
	// replayRetry: every 4th request re-sends an already redeemed code with
	// the right verifier, as a client that retries a token request whose
	// answer it lost does (or an attacker holding the whole client state).
	// The proxy must answer invalid_grant and revoke the grant (RFC 9700
	// 4.2.4): each replay is a store write.
	replayRetry
)

// stolenVerifier is the replaying attacker's own PKCE verifier.
var stolenVerifier = randomToken()

// tokenLoad describes one token-endpoint run: good(i) is the body of the
// i-th good request (each redeems a credential that yields exactly one
// 200); replay(i), when set, the body that replays good request i.
type tokenLoad struct {
	good   func(i int) string
	replay func(i int) string
	// n is how many good requests were seeded.
	n int
}

// tokenStats is what a run measured.
type tokenStats struct {
	GoodPerSec float64
	P50, P99   float64
}

// runTokenLoad drives p's /token with about concurrentClients goroutines
// over keep-alive connections, every 4th request of a goroutine a replay
// when load.replay is set. It fails the benchmark on any transport error,
// any 5xx, any good request that is not a 200 with an access token, any
// replay that is not 400 invalid_grant, and any credential that yielded
// other than exactly one 200. Latencies are those of good requests.
func runTokenLoad(b *testing.B, p *proxy, load tokenLoad) tokenStats {
	b.Helper()
	transport := newTransport()
	b.Cleanup(transport.CloseIdleConnections)
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	ctx := context.Background()
	warmUp(b, client, p.BaseURL+"/healthz")

	issued := make([]atomic.Int32, load.n)
	var (
		next  atomic.Int64
		goods atomic.Int64
		fails failures
		lat   latencies
	)
	setClients(b)
	stopProfile := profileTimed(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		last, count := -1, 0
		for pb.Next() {
			count++
			if load.replay != nil && count%4 == 0 && last >= 0 {
				res, err := postToken(ctx, client, p.TokenURL, load.replay(last))
				switch {
				case err != nil:
					fails.add(fmt.Errorf("replay: %w", err))
				case res.Status != http.StatusBadRequest || res.Error != string(domain.CodeInvalidGrant):
					fails.add(fmt.Errorf("replay answered HTTP %d %q, want 400 invalid_grant", res.Status, res.Error))
				}
				continue
			}
			i := int(next.Add(1) - 1)
			if i >= load.n {
				fails.add(fmt.Errorf("request %d: only %d credentials were seeded", i, load.n))
				continue
			}
			start := time.Now()
			res, err := postToken(ctx, client, p.TokenURL, load.good(i))
			local = append(local, time.Since(start))
			switch {
			case err != nil:
				fails.add(err)
			case res.Status != http.StatusOK:
				fails.add(fmt.Errorf("good request answered HTTP %d %q", res.Status, res.Error))
			case !res.Issued:
				fails.add(errNotIssued)
			default:
				issued[i].Add(1)
				goods.Add(1)
				last = i
			}
		}
		lat.merge(local)
	})
	b.StopTimer()
	stopProfile()
	fails.check(b)
	used := min(int(next.Load()), load.n)
	for i := range used {
		if n := issued[i].Load(); n != 1 {
			b.Fatalf("credential %d yielded %d successful token responses, want exactly 1", i, n)
		}
	}
	stats := tokenStats{
		GoodPerSec: float64(goods.Load()) / b.Elapsed().Seconds(),
		P50:        lat.quantile(0.50),
		P99:        lat.quantile(0.99),
	}
	b.ReportMetric(stats.GoodPerSec, "good/s")
	b.ReportMetric(stats.P50, "p50-ms")
	b.ReportMetric(stats.P99, "p99-ms")
	return stats
}

// warmUp opens the client's keep-alive connections before the timer runs,
// so that no measured request pays for a dial.
func warmUp(b *testing.B, client *http.Client, url string) {
	b.Helper()
	var wg sync.WaitGroup
	var fails failures
	for range concurrentClients {
		wg.Go(func() {
			resp, err := client.Get(url)
			if err != nil {
				fails.add(err)
				return
			}
			_ = resp.Body.Close()
		})
	}
	wg.Wait()
	fails.check(b)
}

// codeExchangeRun seeds b.N codes, serves the App on a store opened with
// opts and redeems them.
func codeExchangeRun(b *testing.B, opts boltstore.Options, replay replayKind) tokenStats {
	p := newProxy(b)
	creds := newCredentials(b.N, false)
	p.seedGrants(creds)
	p.start(opts)
	load := tokenLoad{
		n: len(creds),
		good: func(i int) string {
			return codeExchangeBody(p.Client.ID, creds[i].Code, creds[i].Verifier, p.Resource)
		},
	}
	switch replay {
	case replayStolen:
		load.replay = func(i int) string {
			return codeExchangeBody(p.Client.ID, creds[i].Code, stolenVerifier, p.Resource)
		}
	case replayRetry:
		load.replay = load.good
	}
	return runTokenLoad(b, p, load)
}

// results remembers the last (largest b.N) result of each sub-benchmark,
// so that the parent can compare modes measured in the same run.
type results map[string]tokenStats

func (r results) run(b *testing.B, name string, fn func(b *testing.B) tokenStats) {
	b.Run(name, func(b *testing.B) { r[name] = fn(b) })
}

func (r results) logRatio(b *testing.B, what, num, den string, target float64) {
	n, okN := r[num]
	d, okD := r[den]
	if !okN || !okD || d.GoodPerSec == 0 {
		return
	}
	ratio := n.GoodPerSec / d.GoodPerSec
	verdict := "meets"
	if ratio < target {
		verdict = "MISSES"
	}
	b.Logf("%s: %s ÷ %s = %.0f ÷ %.0f good/s = %.2f (%s the ≥ %.1f target)", what, num, den, n.GoodPerSec, d.GoodPerSec, ratio, verdict, target)
}

// BenchmarkTokenAuthorizationCode measures grant_type=authorization_code
// at /token: the real App on loopback HTTP and a real bbolt file, 50
// concurrent public clients each redeeming codes seeded beforehand.
//
//   - fsync/batch: production settings (default boltstore.Options).
//   - nosync/batch: the same without fsync (tests only), the ceiling
//     group commit should come close to.
//   - fsync/batch-replay25: every 4th request replays a redeemed code
//     with an attacker's verifier (see replayStolen).
//   - fsync/batch-replay25-retry: every 4th request replays a redeemed
//     code with its right verifier, which revokes the grant (replayRetry).
//
// Metrics: good/s (successful exchanges per second), p50-ms and p99-ms
// (latency of the successful exchanges as the client sees it).
func BenchmarkTokenAuthorizationCode(b *testing.B) {
	r := results{}
	r.run(b, "fsync/batch", func(b *testing.B) tokenStats { return codeExchangeRun(b, boltstore.Options{}, noReplay) })
	r.run(b, "nosync/batch", func(b *testing.B) tokenStats {
		return codeExchangeRun(b, boltstore.Options{NoSync: true}, noReplay)
	})
	r.run(b, "fsync/batch-replay25", func(b *testing.B) tokenStats {
		return codeExchangeRun(b, boltstore.Options{}, replayStolen)
	})
	r.run(b, "fsync/batch-replay25-retry", func(b *testing.B) tokenStats {
		return codeExchangeRun(b, boltstore.Options{}, replayRetry)
	})
	r.logRatio(b, "durability cost", "fsync/batch", "nosync/batch", 0.8)
	r.logRatio(b, "stolen-code replays", "fsync/batch-replay25", "fsync/batch", 0.8)
	r.logRatio(b, "client-retry replays", "fsync/batch-replay25-retry", "fsync/batch", 0.8)
}

// refreshRun seeds b.N grants with a live refresh token each, serves the
// App on a store opened with opts and rotates every token once.
func refreshRun(b *testing.B, opts boltstore.Options) tokenStats {
	p := newProxy(b)
	creds := newCredentials(b.N, true)
	p.seedGrants(creds)
	p.start(opts)
	return runTokenLoad(b, p, tokenLoad{
		n: len(creds),
		good: func(i int) string {
			return refreshBody(p.Client.ID, creds[i].RefreshToken, p.Resource)
		},
	})
}

// BenchmarkTokenRefresh measures grant_type=refresh_token at /token with 50
// concurrent clients, each refresh rotating a distinct live token (the
// upstream token is fresh, so the IdP is never called): fsync (production)
// and nosync.
func BenchmarkTokenRefresh(b *testing.B) {
	r := results{}
	r.run(b, "fsync/batch", func(b *testing.B) tokenStats { return refreshRun(b, boltstore.Options{}) })
	r.run(b, "nosync/batch", func(b *testing.B) tokenStats { return refreshRun(b, boltstore.Options{NoSync: true}) })
	r.logRatio(b, "durability cost", "fsync/batch", "nosync/batch", 0.8)
}

// tuneEnv enables BenchmarkBatchTuning, which is long and only useful when
// changing the store's defaults.
const tuneEnv = "OIDCPROXY_BENCH_TUNE"

// BenchmarkBatchTuning runs the fsync authorization_code benchmark over a
// range of boltstore group-commit caps (MaxBatchSize), to choose
// boltstore's default. It runs only when OIDCPROXY_BENCH_TUNE=1.
func BenchmarkBatchTuning(b *testing.B) {
	if os.Getenv(tuneEnv) != "1" {
		b.Skipf("set %s=1 to run the batch tuning grid", tuneEnv)
	}
	for _, size := range []int{16, 32, 64, 128, 256} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			codeExchangeRun(b, boltstore.Options{MaxBatchSize: size}, noReplay)
		})
	}
}

package pgstore_test

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/pgstore"
	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/test/pgtest"
)

// benchClients is how many goroutines redeem or rotate at once, as fifty
// concurrent clients of the token endpoint would.
const benchClients = 50

// The benchmarks run against a database of their own with the server's
// durability settings (every commit waits for the WAL flush), with the
// production defaults of Options. They report the rate beside ns/op;
// compare it with bench/pgbench/redeem.sql in the same minute, on the same
// machine, for the database's own ceiling:
//
//	go test -run '^$' -bench 'RedeemCode|RotateRefreshToken' -benchtime 5000x ./adapters/pgstore

// BenchmarkRedeemCode redeems codes as the token endpoint does, with a
// domain.CodeRedemption: one statement each (sqlClaimCode).
func BenchmarkRedeemCode(b *testing.B) {
	s := benchStore(b)
	hashes := make([]string, b.N)
	seed(b, b.N, func(i int) error {
		g, code := benchGrant(fmt.Sprintf("g%d", i))
		hashes[i] = code.Hash
		return s.CreateGrant(b.Context(), g, code)
	})
	var next atomic.Int64
	run(b, func() error {
		hash := hashes[next.Add(1)-1]
		_, _, err := s.RedeemCode(b.Context(), hash, benchNow, benchRedemption("rt-"+hash))
		return err
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "redemptions/s")
}

// BenchmarkRotateRefreshToken rotates refresh tokens as the token
// endpoint does, with a plain domain.Rotation: one statement each
// (sqlRotatePlain).
func BenchmarkRotateRefreshToken(b *testing.B) {
	s := benchStore(b)
	hashes := make([]string, b.N)
	seed(b, b.N, func(i int) error {
		g, code := benchGrant(fmt.Sprintf("g%d", i))
		if err := s.CreateGrant(b.Context(), g, code); err != nil {
			return err
		}
		hashes[i] = "rt-" + g.ID
		_, _, err := s.RedeemCode(b.Context(), code.Hash, benchNow, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: func(c domain.AuthorizationCode, g domain.Grant) (*domain.RefreshToken, error) {
			return &domain.RefreshToken{Hash: hashes[i], GrantID: g.ID, ClientID: g.ClientID, Scopes: c.Scopes,
				IssuedAt: benchNow, ExpiresAt: g.ExpiresAt}, nil
		}})

		return err
	})
	var next atomic.Int64
	run(b, func() error {
		hash := hashes[next.Add(1)-1]
		_, _, err := s.RotateRefreshToken(b.Context(), hash, benchNow, domain.RefreshUse{ClientID: "client"}, benchRotation("next-"+hash))
		return err
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rotations/s")
}

var benchNow = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func benchStore(b *testing.B) *pgstore.Store {
	s, err := pgstore.Open(b.Context(), pgstore.Options{URL: pgtest.Database(b)})
	require.NoError(b, err)
	b.Cleanup(s.Close)
	return s
}

// benchGrant is a grant shaped like a real one, with its code.
// benchVerifier is the PKCE verifier of every benchGrant code.
const benchVerifier = "dBjftJeZ4CVP-mJ92K9m4l7DhoVbxNuVH8tX2O2KAnw"

// benchRedemption is the rightful token request for a benchGrant's code,
// storing a refresh token under refreshHash.
func benchRedemption(refreshHash string) domain.CodeRedemption {
	return domain.CodeRedemption{ClientID: "client", RedirectURI: "http://127.0.0.1:5555/callback",
		Verifier: benchVerifier, Resources: []string{"https://mcp.example.com/mcp"},
		RefreshHash: refreshHash, RefreshTTL: 24 * time.Hour, Now: benchNow}
}

func benchGrant(id string) (domain.Grant, domain.AuthorizationCode) {
	g := domain.Grant{
		ID: id, ClientID: "client", Subject: "subject-" + id,
		Identity: domain.Identity{Subject: "subject-" + id, Issuer: "https://idp.example.com", Email: "user@example.com",
			Claims: map[string]any{"groups": []any{"a", "b"}}},
		Scopes: []string{"openid", "email", "offline_access"}, Resource: "https://mcp.example.com/mcp",
		SealedUpstream: make([]byte, 400), UpstreamExpiry: benchNow.Add(time.Hour), HasUpstreamRefresh: true,
		CreatedAt: benchNow, ExpiresAt: benchNow.Add(30 * 24 * time.Hour),
	}
	code := domain.AuthorizationCode{
		Hash: "code-" + id, GrantID: id, ClientID: "client", RedirectURI: "http://127.0.0.1:5555/callback",
		CodeChallenge: domain.S256Challenge(benchVerifier), Scopes: []string{"openid", "email"},
		Resource: "https://mcp.example.com/mcp", IssuedAt: benchNow, ExpiresAt: benchNow.Add(domain.CodeTTL),
	}
	return g, code
}

// seed runs n setup calls on benchClients goroutines, before the timer.
func seed(b *testing.B, n int, fn func(i int) error) {
	b.Helper()
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	for range benchClients {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				if err := fn(i); err != nil {
					failed.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		b.Fatal(err)
	}
	b.ResetTimer()
}

// run calls op b.N times on benchClients goroutines.
func run(b *testing.B, op func() error) {
	b.SetParallelism(max(1, benchClients/runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := op(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkRevocationPropagation measures how long a revocation takes to
// reach another instance's cache: from the call of RevokeGrant on store A
// to the first GetGrant on store B (which held the grant in memory) that
// reports it gone, over b.N trials on two listening stores of one
// database. It reports the quantiles in milliseconds, and the p99 of the
// part after RevokeGrant returned (the notification's own delay; the rest
// is the revocation's durable commit). ns/op covers the set-up of each
// trial too. Run it with a fixed number of trials:
//
//	go test -run '^$' -bench RevocationPropagation -benchtime 1000x ./adapters/pgstore
func BenchmarkRevocationPropagation(b *testing.B) {
	url := pgtest.Database(b)
	a, other := listening(b, url), listening(b, url)
	took := make([]time.Duration, 0, b.N)
	after := make([]time.Duration, 0, b.N) // from RevokeGrant's return: the notification's own delay
	for i := range b.N {
		g, code := benchGrant(fmt.Sprintf("p%d", i))
		require.NoError(b, a.CreateGrant(b.Context(), g, code))
		_, err := other.GetGrant(b.Context(), g.ID, benchNow)
		require.NoError(b, err)
		start := time.Now()
		require.NoError(b, a.RevokeGrant(b.Context(), g.ID))
		committed := time.Now()
		for {
			_, err := other.GetGrant(b.Context(), g.ID, benchNow)
			if errors.Is(err, domain.ErrNotFound) {
				break
			}
			require.NoError(b, err)
			if time.Since(start) > 10*time.Second {
				b.Fatalf("trial %d: the revocation did not arrive", i)
			}
			time.Sleep(100 * time.Microsecond) // polling, without starving the listener of CPU
		}
		took = append(took, time.Since(start))
		after = append(after, time.Since(committed))
	}
	q := func(ds []time.Duration, p float64) float64 {
		slices.Sort(ds)
		return float64(ds[min(len(ds)-1, int(p*float64(len(ds))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(q(took, 0.50), "p50-ms")
	b.ReportMetric(q(took, 0.99), "p99-ms")
	b.ReportMetric(q(took, 1), "max-ms")
	b.ReportMetric(q(after, 0.99), "after-commit-p99-ms")
	b.ReportMetric(q(after, 1), "after-commit-max-ms")
}

package boltstore_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/boltstore"
	"github.com/oidcproxy/oidcproxy/domain"
)

// benchClients is how many goroutines hit the store at once, about what a
// busy single instance sees at /token.
const benchClients = 50

// benchModes compares group commit with a commit per write (a batch cap
// of one) at equal durability (fsync on), and shows what fsync costs
// (nosync, never for production).
var benchModes = []struct {
	name     string
	noSync   bool
	maxBatch int
}{
	{"sync/batch", false, 0},
	{"sync/update", false, 1},
	{"nosync/batch", true, 0},
}

// BenchmarkRedeemCode: ~50 goroutines each redeem distinct pre-created
// codes, each redemption storing a refresh token, as /token does.
func BenchmarkRedeemCode(b *testing.B) {
	for _, mode := range benchModes {
		b.Run(mode.name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "bench.db")
			seedGrants(b, path, b.N, false)
			s := openStore(b, boltstore.Options{Path: path, NoSync: mode.noSync, MaxBatchSize: mode.maxBatch})
			runParallel(b, func(i int) error {
				_, _, err := s.RedeemCode(b.Context(), codeHash(i), base, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: func(c domain.AuthorizationCode, g domain.Grant) (*domain.RefreshToken, error) {
					rt := benchToken(tokenHash(i), g.ID)
					return &rt, nil
				}})

				return err
			})
		})
	}
}

// BenchmarkRotateRefreshToken: ~50 goroutines each rotate distinct
// pre-issued refresh tokens, as the refresh_token grant does.
func BenchmarkRotateRefreshToken(b *testing.B) {
	for _, mode := range benchModes {
		b.Run(mode.name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "bench.db")
			seedGrants(b, path, b.N, true)
			s := openStore(b, boltstore.Options{Path: path, NoSync: mode.noSync, MaxBatchSize: mode.maxBatch})
			runParallel(b, func(i int) error {
				_, _, err := s.RotateRefreshToken(b.Context(), tokenHash(i), base, domain.RefreshUse{ClientID: domain.HashToken("client")}, domain.RotateFunc(func(old domain.RefreshToken, g *domain.Grant) (domain.RefreshToken, error) {
					return benchToken("next-"+old.Hash, g.ID), nil
				}))

				return err
			})
		})
	}
}

// runParallel runs op once per iteration on benchClients goroutines, each
// iteration on its own record, and reports throughput.
func runParallel(b *testing.B, op func(i int) error) {
	b.Helper()
	b.SetParallelism(max(1, (benchClients+runtime.GOMAXPROCS(0)-1)/runtime.GOMAXPROCS(0)))
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := op(int(next.Add(1) - 1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// seedGrants fills a new file with n grants (each with a code, and a
// refresh token when withTokens), without fsync to keep setup short, and
// closes it.
func seedGrants(b testing.TB, path string, n int, withTokens bool) {
	b.Helper()
	s, err := boltstore.Open(boltstore.Options{Path: path, NoSync: true})
	require.NoError(b, err)
	defer func() { require.NoError(b, s.Close()) }()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, benchClients)
	for range benchClients {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				g := benchGrant(fmt.Sprintf("grant-%d", i))
				if err := s.CreateGrant(b.Context(), g, benchCode(codeHash(i), g.ID)); err != nil {
					errs <- err
					return
				}
				if !withTokens {
					continue
				}
				_, _, err := s.RedeemCode(b.Context(), codeHash(i), base, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: func(_ domain.AuthorizationCode, g domain.Grant) (*domain.RefreshToken, error) {
					rt := benchToken(tokenHash(i), g.ID)
					return &rt, nil
				}})

				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	require.NoError(b, <-errs)
}

// Record sizes close to production: 43-byte hashes, a sealed upstream token
// set of ~1.5 KiB (access, refresh and ID token under AES-GCM), a few claims.

func codeHash(i int) string  { return domain.HashToken(fmt.Sprintf("code-%d", i)) }
func tokenHash(i int) string { return domain.HashToken(fmt.Sprintf("refresh-%d", i)) }

var sealed = make([]byte, 1536)

func benchGrant(id string) domain.Grant {
	return domain.Grant{
		ID:       id,
		ClientID: domain.HashToken("client"),
		Subject:  "auth0|5f7c8ec7c33c6c004bbafe82",
		Identity: domain.Identity{
			Subject: "auth0|5f7c8ec7c33c6c004bbafe82", Issuer: "https://tenant.eu.auth0.com/",
			Email: "someone@example.com", EmailVerified: true, Name: "Some One",
			Claims: map[string]any{"groups": []any{"engineering", "oncall"}, "locale": "en"},
		},
		Scopes:             []string{"openid", "email", "profile", "offline_access"},
		Resource:           "https://mcp.example.com/mcp",
		SealedUpstream:     sealed,
		UpstreamExpiry:     base.Add(time.Hour),
		HasUpstreamRefresh: true,
		CreatedAt:          base,
		ExpiresAt:          base.Add(30 * 24 * time.Hour),
	}
}

func benchCode(hash, grantID string) domain.AuthorizationCode {
	return domain.AuthorizationCode{
		Hash: hash, ClientID: domain.HashToken("client"), RedirectURI: "http://127.0.0.1:33418/callback",
		CodeChallenge: domain.HashToken("verifier"), GrantID: grantID,
		Scopes: []string{"openid", "email", "profile", "offline_access"}, Resource: "https://mcp.example.com/mcp",
		IssuedAt: base, ExpiresAt: base.Add(domain.CodeTTL),
	}
}

func benchToken(hash, grantID string) domain.RefreshToken {
	return domain.RefreshToken{
		Hash: hash, GrantID: grantID, ClientID: domain.HashToken("client"),
		Scopes:   []string{"openid", "email", "profile", "offline_access"},
		IssuedAt: base, ExpiresAt: base.Add(30 * 24 * time.Hour),
	}
}

// TestFootprint measures the file size and the Go heap of a store holding
// 10,000 clients and 100,000 grants, each with a code. It takes a while,
// so it runs only with OIDCPROXY_FOOTPRINT=1:
//
//	OIDCPROXY_FOOTPRINT=1 go test -run TestFootprint -v ./adapters/boltstore
func TestFootprint(t *testing.T) {
	if os.Getenv("OIDCPROXY_FOOTPRINT") != "1" {
		t.Skip("set OIDCPROXY_FOOTPRINT=1 to measure the store's footprint")
	}
	const clients, grants = 10_000, 100_000
	path := filepath.Join(t.TempDir(), "footprint.db")
	start := time.Now()
	seedGrants(t, path, grants, false)
	s := openStore(t, boltstore.Options{Path: path})
	for i := range clients {
		c := domain.Client{
			ID: domain.HashToken(fmt.Sprintf("client-%d", i)), SecretHash: []byte(domain.HashToken("secret")),
			Name: fmt.Sprintf("MCP client %d", i), RedirectURIs: []string{"http://127.0.0.1/callback", "http://localhost/callback"},
			ApplicationType: domain.ApplicationNative, TokenEndpointAuthMethod: domain.AuthNone,
			GrantTypes:    []string{domain.GrantAuthorizationCode, domain.GrantRefreshToken},
			ResponseTypes: []string{domain.ResponseTypeCode}, Scope: "openid email profile offline_access",
			SoftwareID: "mcp-client", SoftwareVersion: "1.0.0", CreatedAt: base,
		}
		require.NoError(t, s.CreateClient(t.Context(), c))
	}
	elapsed := time.Since(start)
	_, err := s.GetGrant(t.Context(), "grant-99999", base)
	require.NoError(t, err)

	info, err := os.Stat(path)
	require.NoError(t, err)
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	t.Logf("%d clients + %d grants with codes written in %s", clients, grants, elapsed.Round(time.Millisecond))
	t.Logf("file size: %.1f MiB (%.0f bytes per grant incl. code and index entries)",
		float64(info.Size())/(1<<20), float64(info.Size())/float64(grants))
	t.Logf("Go heap in use after GC with the store open: %.1f MiB (HeapAlloc %.1f MiB); bbolt maps the file, it is not heap",
		float64(m.HeapInuse)/(1<<20), float64(m.HeapAlloc)/(1<<20))
}

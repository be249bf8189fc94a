package bench_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/oidcproxy/oidcproxy/adapters/boltstore"
	"github.com/oidcproxy/oidcproxy/domain"
)

// TestBenchHarnessWorks runs every part of the benchmarks once, small, so
// that a change which breaks the harness (the seed, the request forms, the
// answer checks, the browser flow) fails in normal test runs instead of in
// the next benchmark session.
func TestBenchHarnessWorks(t *testing.T) {
	const exchanges = 20
	// Strict rotation, so that the second use of a refresh token below is
	// reuse and not a retry within REFRESH_REUSE_GRACE.
	p := newProxyEnv(t, map[string]string{"OIDC_PROXY_REFRESH_REUSE_GRACE": "0"})
	creds := newCredentials(exchanges, false)
	refresh := newCredentials(2, true)
	p.seedGrants(append(creds, refresh...))
	p.start(boltstore.Options{NoSync: true})
	transport := newTransport()
	t.Cleanup(transport.CloseIdleConnections)
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}

	t.Run("each seeded code is redeemed exactly once by concurrent clients", func(t *testing.T) {
		var wg sync.WaitGroup
		answers := make([]tokenResponse, exchanges)
		errs := make([]error, exchanges)
		for i := range exchanges {
			wg.Go(func() {
				answers[i], errs[i] = postToken(t.Context(), client, p.TokenURL,
					codeExchangeBody(p.Client.ID, creds[i].Code, creds[i].Verifier, p.Resource))
			})
		}
		wg.Wait()
		for i := range exchanges {
			if errs[i] != nil || answers[i].Status != http.StatusOK || !answers[i].Issued {
				t.Fatalf("exchange %d: %+v, %v", i, answers[i], errs[i])
			}
		}
	})

	replays := []struct {
		name     string
		verifier func(i int) string
	}{
		{"a stolen code replayed with the attacker's verifier is refused", func(int) string { return stolenVerifier }},
		{"a redeemed code retried with its verifier is refused", func(i int) string { return creds[i].Verifier }},
	}
	for n, tc := range replays {
		t.Run(tc.name, func(t *testing.T) {
			res, err := postToken(t.Context(), client, p.TokenURL,
				codeExchangeBody(p.Client.ID, creds[n].Code, tc.verifier(n), p.Resource))
			if err != nil || res.Status != http.StatusBadRequest || res.Error != string(domain.CodeInvalidGrant) {
				t.Fatalf("replay answered %+v, %v; want 400 invalid_grant", res, err)
			}
		})
	}

	t.Run("a seeded refresh token rotates once", func(t *testing.T) {
		for _, c := range refresh {
			res, err := postToken(t.Context(), client, p.TokenURL, refreshBody(p.Client.ID, c.RefreshToken, p.Resource))
			if err != nil || res.Status != http.StatusOK || !res.Issued {
				t.Fatalf("refresh: %+v, %v", res, err)
			}
			res, err = postToken(t.Context(), client, p.TokenURL, refreshBody(p.Client.ID, c.RefreshToken, p.Resource))
			if err != nil || res.Status != http.StatusBadRequest || res.Error != string(domain.CodeInvalidGrant) {
				t.Fatalf("reused refresh token answered %+v, %v; want 400 invalid_grant", res, err)
			}
		}
	})

	t.Run("a full flow from registration to token completes", func(t *testing.T) {
		if err := p.fullFlow(t.Context(), transport); err != nil {
			t.Fatal(err)
		}
	})
}

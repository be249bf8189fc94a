package bench_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oidcproxy/oidcproxy/ports"
)

// BenchmarkRevocationPropagationPostgres measures what the operator of two
// instances sees: the time from a POST /revoke answered by instance A to
// the first 401 from instance B's gateway for a token of the revoked
// grant, which B had verified (and cached) just before. Each trial uses a
// grant of its own. It reports the quantiles in milliseconds over b.N
// trials; the issue asks for the p99 over 1,000:
//
//	OIDCPROXY_REQUIRE_POSTGRES=1 go test -run '^$' -bench 'RevocationPropagationPostgres' -benchtime 1000x -v ./bench
//
// B is polled every 200 µs; each poll is a full gateway request, so the
// figures include one request's latency at most.
func BenchmarkRevocationPropagationPostgres(b *testing.B) {
	rt := newRevocationTrials(b, b.N)
	took := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		d, err := rt.trial(b.Context(), i)
		if err != nil {
			b.Fatalf("trial %d: %v", i, err)
		}
		took = append(took, d)
	}
	b.StopTimer()
	slices.Sort(took)
	q := func(p float64) float64 {
		return float64(took[min(len(took)-1, int(p*float64(len(took))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(1), "max-ms")
	b.Logf("revocation on A to 401 on B over %d trials: p50 %.1f ms, p99 %.1f ms, max %.1f ms (the issue's bound: 1 s)",
		len(took), q(0.50), q(0.99), q(1))
}

// revocationTrials is two instances on one database with a backend behind
// their gateways, and one grant per trial: its access token and its
// refresh token, both issued by A.
type revocationTrials struct {
	client                *http.Client
	revokeURL, clientID   string
	gatewayB              string
	access, refreshTokens []string
}

func newRevocationTrials(tb testing.TB, n int) *revocationTrials {
	tb.Helper()
	backend := newMCPBackend(tb)
	p := newPostgresProxy(tb, 2, map[string]string{"OIDC_PROXY_MCP_UPSTREAM": backend.URL + "/mcp"})
	creds := newCredentials(n, false)
	p.seedDatabase(func(ctx context.Context, s ports.Store) error {
		if err := s.CreateClient(ctx, p.Client); err != nil {
			return err
		}
		return forEachParallel(len(creds), seedWorkers, func(i int) error { return p.seedGrant(ctx, s, creds[i]) })
	})
	p.startInstances()
	transport := newTransport()
	tb.Cleanup(transport.CloseIdleConnections)
	rt := &revocationTrials{
		client:    &http.Client{Transport: transport, Timeout: 10 * time.Second},
		revokeURL: strings.TrimSuffix(p.TokenURLs[0], "/token") + "/revoke",
		clientID:  p.Client.ID,
		gatewayB:  strings.TrimSuffix(p.TokenURLs[1], "/token") + p.cfg.MCPPath,
	}
	for i, c := range creds {
		body := codeExchangeBody(p.Client.ID, c.Code, c.Verifier, p.Resource)
		var doc struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
		}
		status, err := rt.post(tb.Context(), p.TokenURLs[0], body, &doc)
		if err != nil || status != http.StatusOK || doc.AccessToken == "" || doc.RefreshToken == "" {
			tb.Fatalf("credential %d: HTTP %d, %v", i, status, err)
		}
		rt.access = append(rt.access, doc.AccessToken)
		rt.refreshTokens = append(rt.refreshTokens, doc.RefreshToken)
	}
	return rt
}

// post sends a form to u and decodes a JSON answer into out (when not nil).
func (rt *revocationTrials) post(ctx context.Context, u, form string, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := rt.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if out != nil && res.StatusCode == http.StatusOK {
		if err := json.NewDecoder(io.LimitReader(res.Body, 64<<10)).Decode(out); err != nil {
			return res.StatusCode, err
		}
	}
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode, nil
}

// gatewayStatus sends a tools/call with token to B's gateway.
func (rt *revocationTrials) gatewayStatus(ctx context.Context, token string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rt.gatewayB, strings.NewReader(string(toolsCallRequest())))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	res, err := rt.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	return res.StatusCode, nil
}

// trial i: B verifies grant i's token (200), A revokes the grant's refresh
// token (RFC 7009: the grant ends), and B is polled until it answers 401.
// It returns the time from A's answer to B's 401.
func (rt *revocationTrials) trial(ctx context.Context, i int) (time.Duration, error) {
	if status, err := rt.gatewayStatus(ctx, rt.access[i]); err != nil || status != http.StatusOK {
		return 0, fmt.Errorf("before the revocation, B answered %d, %v", status, err)
	}
	form := url.Values{"token": {rt.refreshTokens[i]}, "token_type_hint": {"refresh_token"}, "client_id": {rt.clientID}}.Encode()
	if status, err := rt.post(ctx, rt.revokeURL, form, nil); err != nil || status != http.StatusOK {
		return 0, fmt.Errorf("revoke on A answered %d, %v", status, err)
	}
	revoked := time.Now()
	for {
		status, err := rt.gatewayStatus(ctx, rt.access[i])
		switch {
		case err != nil:
			return 0, err
		case status == http.StatusUnauthorized:
			return time.Since(revoked), nil
		case status != http.StatusOK:
			return 0, fmt.Errorf("B answered %d while the revocation travelled", status)
		case time.Since(revoked) > 10*time.Second:
			return 0, fmt.Errorf("B still accepts the token 10 s after the revocation")
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// TestRevocationPropagationBenchHarnessWorks runs a few trials, so that a
// change which breaks the benchmark fails in normal test runs. (The 1 s
// bound itself is asserted by test/e2e's cluster test.)
func TestRevocationPropagationBenchHarnessWorks(t *testing.T) {
	rt := newRevocationTrials(t, 3)
	for i := range 3 {
		d, err := rt.trial(t.Context(), i)
		if err != nil {
			t.Fatalf("trial %d: %v", i, err)
		}
		t.Logf("trial %d: %v from A's answer to B's 401", i, d)
	}
}

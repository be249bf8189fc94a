package gateway_test

import (
	"context"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/gateway"
	"github.com/oidcproxy/oidcproxy/internal/clientip"
	"github.com/oidcproxy/oidcproxy/internal/ratelimit"
)

func TestASubjectBeyondItsLimitGets429AndNeverReachesTheBackend(t *testing.T) {
	var hits atomic.Int64
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		echoBackend().ServeHTTP(w, r)
	})
	limit, err := ratelimit.NewKeys(ratelimit.Limit{PerMinute: 1, Burst: 2}, ratelimit.Options{})
	require.NoError(t, err)
	var mu sync.Mutex
	var refused []string
	f := newFixture(t, backend, func(o *gateway.Options) {
		o.SubjectLimit = limit
		o.LimitRefused = func(_ context.Context, name string) {
			mu.Lock()
			defer mu.Unlock()
			refused = append(refused, name)
		}
	})
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`)
	json := http.Header{"Content-Type": {"application/json"}}
	for range 2 {
		res, _ := f.do(t, http.MethodPost, "/mcp", tokenAlice, body, json)
		require.Equal(t, http.StatusOK, res.StatusCode)
	}

	res, got := f.do(t, http.MethodPost, "/mcp", tokenAlice, body, json)
	require.Equal(t, http.StatusTooManyRequests, res.StatusCode)
	wait, err := strconv.Atoi(res.Header.Get("Retry-After"))
	require.NoError(t, err)
	require.InDelta(t, 60, wait, 1, "one request a minute: once the burst is spent, the next waits a minute")
	require.JSONEq(t, `{"error":"temporarily_unavailable","error_description":"too many requests; retry after the time in the Retry-After header"}`, string(got))
	require.Empty(t, res.Header.Get("WWW-Authenticate"), "the token is fine: no challenge")
	require.EqualValues(t, 2, hits.Load(), "the refused request never reached the backend")

	res, _ = f.do(t, http.MethodPost, "/mcp", tokenUnverified, body, json)
	require.Equal(t, http.StatusOK, res.StatusCode, "another subject has its own budget")

	mu.Lock()
	require.Equal(t, []string{"gateway"}, refused)
	mu.Unlock()
	require.Contains(t, f.logs.String(), "rate limit refused a request")
}

func TestRequestsWithoutAValidTokenAreNotCountedAgainstASubject(t *testing.T) {
	limit, err := ratelimit.NewKeys(ratelimit.Limit{PerMinute: 1, Burst: 1}, ratelimit.Options{})
	require.NoError(t, err)
	f := newFixture(t, echoBackend(), func(o *gateway.Options) { o.SubjectLimit = limit })
	for range 5 {
		res, _ := f.do(t, http.MethodGet, "/mcp", tokenExpired, nil, nil)
		require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	}
	res, _ := f.do(t, http.MethodGet, "/mcp", tokenAlice, nil, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
}

func TestTheAuditOfARefusedTokenNamesTheForwardedClientBehindATrustedProxy(t *testing.T) {
	trusted, err := clientip.ParsePrefixes([]string{"127.0.0.1"})
	require.NoError(t, err)
	f := newFixture(t, echoBackend(), func(o *gateway.Options) {
		o.ClientIP = clientip.New(trusted, clientip.XForwardedFor)
	})
	res, _ := f.do(t, http.MethodGet, "/mcp", tokenExpired, nil, http.Header{"X-Forwarded-For": {"198.51.100.7"}})
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	require.Contains(t, f.logs.String(), "event=bearer_rejected client_ip="+netip.MustParseAddr("198.51.100.7").String())
}

package gateway_test

import (
	"log/slog"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/gateway"
)

func TestAMachineIsNamedInTheClientHeaderAndNeverAsAUser(t *testing.T) {
	f := newFixture(t, echoBackend(), func(o *gateway.Options) { o.UpstreamTokenHeader = "X-Upstream-Token" })
	res, body := f.do(t, http.MethodPost, "/mcp", tokenMachine, []byte(`{}`), http.Header{
		"X-Forwarded-User":   {"alice"},
		"X-Forwarded-Email":  {"alice@example.com"},
		"X-Forwarded-Client": {"someone-else"},
		"X_Forwarded_Client": {"someone-else"},
	})
	require.Equal(t, http.StatusOK, res.StatusCode, string(body))
	h := decodeEcho(t, body).Header
	require.Equal(t, []string{"ci-1"}, h["X-Forwarded-Client"])
	for _, absent := range []string{"X-Forwarded-User", "X-Forwarded-Email", "X_Forwarded_Client", "X-Upstream-Token"} {
		require.NotContains(t, h, absent)
	}
}

func TestAPersonsRequestCarriesNoClientHeader(t *testing.T) {
	f := newFixture(t, echoBackend(), nil)
	res, body := f.do(t, http.MethodPost, "/mcp", tokenAlice, []byte(`{}`), http.Header{"X-Forwarded-Client": {"ci-1"}})
	require.Equal(t, http.StatusOK, res.StatusCode)
	h := decodeEcho(t, body).Header
	require.Equal(t, []string{"alice"}, h["X-Forwarded-User"])
	require.NotContains(t, h, "X-Forwarded-Client", "a person cannot pass for a machine")
}

func TestTheClientHeaderNameIsConfigurableAndMustNotCollide(t *testing.T) {
	f := newFixture(t, echoBackend(), func(o *gateway.Options) { o.ClientHeader = "x-auth-request-client" })
	res, body := f.do(t, http.MethodPost, "/mcp", tokenMachine, []byte(`{}`), nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	h := decodeEcho(t, body).Header
	require.Equal(t, []string{"ci-1"}, h["X-Auth-Request-Client"])
	require.NotContains(t, h, "X-Forwarded-Client")

	opts := defaultOptions(t, "http://127.0.0.1:1/mcp")
	opts.ClientHeader = "X-Forwarded-User"
	_, err := gateway.New(newVerifier(), slog.New(slog.DiscardHandler), opts)
	require.ErrorContains(t, err, "collide")
}

func TestAPersonWithoutAnUpstreamLoginGetsNoUpstreamTokenHeader(t *testing.T) {
	f := newFixture(t, echoBackend(), func(o *gateway.Options) { o.UpstreamTokenHeader = "X-Upstream-Token" })
	res, body := f.do(t, http.MethodPost, "/mcp", tokenEnterprise, []byte(`{}`), http.Header{"X-Upstream-Token": {"spoofed"}})
	require.Equal(t, http.StatusOK, res.StatusCode, string(body))
	h := decodeEcho(t, body).Header
	require.Equal(t, []string{"erin"}, h["X-Forwarded-User"])
	require.NotContains(t, h, "X-Upstream-Token", "no header rather than an empty or spoofed one")
}

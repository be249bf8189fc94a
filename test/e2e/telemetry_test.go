package e2e_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// spansOfTrace returns the spans of one trace, by name.
func spansOfTrace(spans tracetest.SpanStubs, id trace.TraceID) map[string][]tracetest.SpanStub {
	out := map[string][]tracetest.SpanStub{}
	for _, s := range spans {
		if s.SpanContext.TraceID() == id {
			out[s.Name] = append(out[s.Name], s)
		}
	}
	return out
}

func TestAFlowIsTracedEndToEndWithoutSecrets(t *testing.T) {
	p, f := startWithFaulty(t)
	c := p.register(t, nil)
	tok, fl := p.login(t, c)

	spans := p.Spans.GetSpans()
	var callback *tracetest.SpanStub
	for i := range spans {
		if spans[i].Name == "GET /auth/callback" {
			callback = &spans[i]
		}
	}
	require.NotNil(t, callback, "a server span named by the route template")
	tree := spansOfTrace(spans, callback.SpanContext.TraceID())

	usecase := tree["usecase.CompleteCallback"]
	require.Len(t, usecase, 1)
	require.Equal(t, callback.SpanContext.SpanID(), usecase[0].Parent.SpanID(), "use-case span under the server span")
	under := func(name string) {
		t.Helper()
		require.NotEmpty(t, tree[name], "%s in the callback's trace; have %v", name, keys(tree))
		for _, s := range tree[name] {
			require.Equal(t, usecase[0].SpanContext.SpanID(), s.Parent.SpanID(), "%s under the use case", name)
		}
	}
	under("store.ConsumeTransaction")
	under("store.CreateGrant")
	var upstreamToken bool
	for name, ss := range tree {
		if strings.HasPrefix(name, "POST ") && strings.Contains(name, "token") {
			upstreamToken = true
			require.Equal(t, usecase[0].SpanContext.SpanID(), ss[0].Parent.SpanID())
		}
	}
	require.True(t, upstreamToken, "the upstream token call is a client span in the same trace; have %v", keys(tree))

	// No secret in any span: names, attributes, events, status.
	secrets := []string{tok.AccessToken, tok.RefreshToken, fl.Verifier, f.Email}
	secrets = append(secrets, f.Issued()...)
	for _, s := range spans {
		var b strings.Builder
		b.WriteString(s.Name + s.Status.Description)
		for _, a := range s.Attributes {
			b.WriteString(a.Value.Emit())
		}
		for _, e := range s.Events {
			b.WriteString(e.Name)
			for _, a := range e.Attributes {
				b.WriteString(a.Value.Emit())
			}
		}
		for _, secret := range secrets {
			require.NotContains(t, b.String(), secret, "span %s", s.Name)
		}
	}
}

func keys(m map[string][]tracetest.SpanStub) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// metricValue reads one series from the Prometheus text.
func metricValue(t *testing.T, text, series string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + `(?:\{[^}]*\})? ([0-9.e+-]+)$`)
	m := re.FindStringSubmatch(text)
	require.NotNil(t, m, "series %s not found", series)
	v, err := strconv.ParseFloat(m[1], 64)
	require.NoError(t, err)
	return v
}

func TestMetricsCountFlowsTokensAndUpstreamCalls(t *testing.T) {
	// Strict rotation: the second use below is reuse, not a retry.
	p, _ := startWithFaulty(t, withEnv("REFRESH_REUSE_GRACE", "0"))
	c := p.register(t, nil)
	tok, _ := p.login(t, c)
	_, err := p.refresh(t, c, tok.RefreshToken)
	require.NoError(t, err)
	_, err = p.refresh(t, c, tok.RefreshToken) // reuse
	require.Error(t, err)

	rec := httptest.NewRecorder()
	p.App.AdminHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	body, _ := io.ReadAll(rec.Body)
	text := string(body)
	require.Equal(t, 1.0, metricValue(t, text, "oidcproxy_flows_started_total"))
	require.Equal(t, 1.0, metricValue(t, text, "oidcproxy_flows_completed_total"))
	require.Equal(t, 1.0, metricValue(t, text, "oidcproxy_tokens_issued_total"))
	require.Equal(t, 1.0, metricValue(t, text, "oidcproxy_tokens_refreshed_total"))
	require.Equal(t, 1.0, metricValue(t, text, "oidcproxy_refresh_token_reuse_detected_total"))
	// Upstream calls are otelhttp's client series, labelled by endpoint.
	require.Regexp(t, `\nhttp_client_request_duration_seconds_count\{[^}]*oidcproxy_upstream_endpoint="token"[^}]*\} 1\n`, text)
	// Requests are its server series, labelled by route.
	require.Regexp(t, `\nhttp_server_request_duration_seconds_count\{[^}]*http_route="/token"[^}]*\} [1-9]`, text)
	require.NotContains(t, text, c.ID, "no client ids in metric labels")

	// The failed refresh was logged once, with the trace it belongs to.
	var failed string
	for _, line := range strings.Split(p.Logs.String(), "\n") {
		if strings.Contains(line, `"msg":"request failed"`) && strings.Contains(line, `"path":"/token"`) {
			failed = line
		}
	}
	require.NotEmpty(t, failed, p.Logs.String())
	require.Contains(t, failed, `"trace_id":"`)
	require.Contains(t, failed, `"span_id":"`)
}

func TestSecurityRelevantActionsAreAudited(t *testing.T) {
	p, _ := startWithOP(t)
	c := p.register(t, nil)
	tok, _ := p.login(t, c)
	_, err := p.refresh(t, c, tok.RefreshToken) // its response is lost
	require.NoError(t, err)
	retried, err := p.refresh(t, c, tok.RefreshToken) // a retry within the window
	require.NoError(t, err)
	next, err := p.refresh(t, c, retried.RefreshToken)
	require.NoError(t, err)
	_, err = p.refresh(t, c, tok.RefreshToken) // reuse: the successor was used
	require.Error(t, err)
	f := newFlow(t, c)
	p.decide(t, f, p.toConsent(t, f), "deny")
	status, _, _ := p.postFormJSON(t, "/revoke", map[string][]string{"token": {next.RefreshToken}, "client_id": {c.ID}})
	require.Equal(t, http.StatusOK, status)

	events := map[string]string{}
	for _, line := range strings.Split(p.Logs.String(), "\n") {
		if m := regexp.MustCompile(`"audit":true,"event":"([a-z_]+)"`).FindStringSubmatch(line); m != nil {
			events[m[1]] = line
		}
	}
	for _, e := range []string{"client_registered", "consent_approved", "consent_denied", "tokens_issued",
		"refresh_rotated", "refresh_retry", "token_reuse_detected_grant_revoked", "revocation_requested"} {
		require.Contains(t, events, e)
		require.Contains(t, events[e], `"client_ip":"127.0.0.1","remote_addr":"127.0.0.1:`, e)
		require.Contains(t, events[e], `"client_id":"`+c.ID+`"`, e)
	}
	require.Contains(t, events["tokens_issued"], `"subject":"`)
}

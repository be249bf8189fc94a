package telemetry_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/oidcproxy/oidcproxy/adapters/telemetry"
	"github.com/oidcproxy/oidcproxy/domain"
)

func TestMetricsEndpointCountsFlowsTokensReuseUpstreamAndStoreCalls(t *testing.T) {
	f := newFixture(t)
	require.Equal(t, http.StatusFound, f.get(t, "/authorize?client_id="+clientID))
	require.Equal(t, http.StatusUnauthorized, f.get(t, "/authorize?client_id=nobody"))
	code := f.seedCode(t, "metrics")
	require.Equal(t, http.StatusOK, f.exchange(t, code, "http://127.0.0.1/cb"))
	require.Equal(t, http.StatusBadRequest, f.exchange(t, code, "http://127.0.0.1/cb"), "replay")
	require.Equal(t, http.StatusServiceUnavailable, f.exchange(t, f.seedCode(t, "down"), redirectUpstreamDown))
	require.Equal(t, http.StatusOK, f.refresh(t, "rt-"+code))
	require.Equal(t, http.StatusBadRequest, f.refresh(t, "rt-"+code), "reuse revokes the grant")
	require.Equal(t, http.StatusBadRequest, f.refresh(t, "rt-"+code+"-next"), "the successor died with the grant")
	require.Equal(t, http.StatusOK, f.post(t, "/revoke", url.Values{"token": {"x"}}, nil))

	text := f.scrape(t)
	for _, line := range []string{
		`oidcproxy_flows_started_total 1`,
		`oidcproxy_flows_completed_total 1`,
		`oidcproxy_flows_failed_total{oauth_error="invalid_client",oidcproxy_flow_step="authorize"} 1`,
		`oidcproxy_flows_failed_total{oauth_error="invalid_grant",oidcproxy_flow_step="token"} 1`,
		`oidcproxy_flows_failed_total{oauth_error="temporarily_unavailable",oidcproxy_flow_step="token"} 1`,
		`oidcproxy_tokens_issued_total 1`,
		`oidcproxy_tokens_refreshed_total 1`,
		`oidcproxy_tokens_revoked_total 1`,
		`oidcproxy_refresh_token_reuse_detected_total 1`,
		`oidcproxy_authorization_code_replay_detected_total 1`,
		`oidcproxy_store_duration_seconds_count{db_operation_name="RedeemCode",oidcproxy_store_outcome="ok"} 2`,
		`oidcproxy_store_duration_seconds_count{db_operation_name="RedeemCode",oidcproxy_store_outcome="already_consumed"} 1`,
		`oidcproxy_store_duration_seconds_count{db_operation_name="RotateRefreshToken",oidcproxy_store_outcome="not_found"} 1`,
		`oidcproxy_usecase_duration_seconds_count{oidcproxy_usecase="ExchangeToken"} 1`,
		`oidcproxy_usecase_duration_seconds_count{oauth_error="invalid_grant",oidcproxy_usecase="RefreshToken"} 2`,
	} {
		require.Contains(t, text, "\n"+line+"\n")
	}
	// The HTTP series are otelhttp's, with the semantic conventions'
	// labels; these are the ones that say what happened.
	for _, tc := range []struct {
		series string
		labels []string
		want   float64
	}{
		{"http_client_request_duration_seconds_count", []string{`oidcproxy_upstream_endpoint="token"`, `http_response_status_code="200"`}, 1},
		{"http_client_request_duration_seconds_count", []string{`oidcproxy_upstream_endpoint="token"`, `http_response_status_code="502"`}, 1},
		{"http_client_request_duration_seconds_count", []string{`oidcproxy_upstream_endpoint="revoke"`, `http_response_status_code="200"`}, 1},
		{"http_server_request_duration_seconds_count", []string{`http_request_method="POST"`, `http_route="/token"`, `http_response_status_code="200"`}, 2},
		{"http_server_request_duration_seconds_count", []string{`http_request_method="POST"`, `http_route="/token"`, `http_response_status_code="400"`}, 3},
		{"http_server_request_duration_seconds_count", []string{`http_request_method="GET"`, `http_route="/authorize"`, `http_response_status_code="401"`}, 1},
	} {
		require.Equal(t, tc.want, promSum(text, tc.series, tc.labels...), "%s%v", tc.series, tc.labels)
	}
	require.NotContains(t, text, "_body_size_", "otelhttp's body-size histograms are dropped")
	// The server address is the configured one, never the Host header.
	require.Equal(t, 9.0, promSum(text, "http_server_request_duration_seconds_count", `server_address="localhost"`))
	require.Contains(t, text, `target_info{oidcproxy_provider="testidp",service_name="oidcproxy"`)
	require.Contains(t, text, "\ngo_goroutines ")

	// Label values come from fixed sets: no client id, subject or secret.
	for _, forbidden := range []string{clientID, "nobody", secret} {
		require.NotContains(t, text, forbidden)
	}
}

func TestSweeperDeletionsAndStoreFailuresAreCounted(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	for _, id := range []string{"a", "b"} {
		require.NoError(t, f.store.CreateTransaction(t.Context(), domain.Transaction{
			ID: domain.HashToken(id), ClientID: clientID, CreatedAt: now, ExpiresAt: now.Add(time.Minute),
		}))
	}
	n, err := f.store.Sweep(t.Context(), now.Add(2*time.Minute))
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, int64(2), f.counterValue(t, "oidcproxy.store.swept"))

	// A record without a key is refused by the store itself: a store
	// failure, the one outcome that marks a store span Error.
	require.Error(t, f.store.CreateClient(t.Context(), domain.Client{}))
	failed := f.spanNamed(t, "store.CreateClient")
	outcome, _ := attr(failed, "oidcproxy.store.outcome")
	require.Equal(t, "error", outcome.AsString())
	require.Equal(t, "Error", failed.Status.Code.String())

	err = f.store.UpdateTransaction(t.Context(), "nobody", time.Now(), func(*domain.Transaction) error { return nil })
	require.ErrorIs(t, err, domain.ErrNotFound)
	missing := f.spanNamed(t, "store.UpdateTransaction")
	outcome, _ = attr(missing, "oidcproxy.store.outcome")
	require.Equal(t, "not_found", outcome.AsString())
	require.Equal(t, "Unset", missing.Status.Code.String())

	// The hot reads are measured but not traced: they run on every request.
	_, err = f.store.GetClient(t.Context(), "nobody")
	require.ErrorIs(t, err, domain.ErrNotFound)
	require.Equal(t, uint64(1), f.histogramCount(t, "oidcproxy.store.duration",
		attribute.String("db.operation.name", "GetClient"), attribute.String("oidcproxy.store.outcome", "not_found")))
	for _, s := range f.spans.GetSpans() {
		require.NotEqual(t, "store.GetClient", s.Name)
	}

	// Ping serves readiness probes: untraced.
	require.NoError(t, f.store.Ping(t.Context()))
	for _, s := range f.spans.GetSpans() {
		require.NotEqual(t, "store.Ping", s.Name)
	}
}

func TestGatewayMetricsCountBytesAndActiveStreams(t *testing.T) {
	f := newFixture(t)
	gm := f.tel.Gateway()
	ctx := t.Context()
	gm.StreamOpened(ctx)
	gm.StreamOpened(ctx)
	gm.BytesIn(ctx, 100)
	gm.BytesOut(ctx, 2048)
	gm.BytesOut(ctx, 1)
	gm.StreamClosed(ctx)

	require.Equal(t, int64(100), f.counterValue(t, "oidcproxy.gateway.bytes", attribute.String("network.io.direction", "receive")))
	require.Equal(t, int64(2049), f.counterValue(t, "oidcproxy.gateway.bytes", attribute.String("network.io.direction", "transmit")))
	require.Equal(t, int64(1), f.counterValue(t, "oidcproxy.gateway.active_streams"))
	text := f.scrape(t)
	require.Contains(t, text, "\noidcproxy_gateway_active_streams 1\n")
	require.Contains(t, text, "\noidcproxy_gateway_bytes_total{network_io_direction=\"transmit\"} 2049\n")

	// The zero value is a valid no-op, for gateways built without telemetry.
	var none telemetry.GatewayMetrics
	none.StreamOpened(ctx)
	none.BytesIn(ctx, 1)
	none.BytesOut(ctx, 1)
	none.StreamClosed(ctx)
	none.Decided(ctx, "tools/call", "allowed")
	none.Hidden(ctx, "tools/list", 1)
}

func TestGatewayPolicyMetricsHaveBoundedLabels(t *testing.T) {
	f := newFixture(t)
	gm := f.tel.Gateway()
	ctx := t.Context()
	gm.Decided(ctx, "tools/call", "allowed")
	gm.Decided(ctx, "tools/call", "allowed")
	gm.Decided(ctx, "tools/call", "insufficient_scope")
	gm.Decided(ctx, "resources/read", "forbidden")
	gm.Decided(ctx, "notifications/initialized", "allowed")
	gm.Decided(ctx, "notifications/cancelled", "allowed")
	for i := range 50 {
		gm.Decided(ctx, "made/up/"+strings.Repeat("x", i), "forbidden")
	}
	gm.Decided(ctx, "tools/call", "not-an-outcome")
	gm.Hidden(ctx, "tools/list", 3)
	gm.Hidden(ctx, "tools/list", 2)
	gm.Hidden(ctx, "resources/list", 1)
	gm.Hidden(ctx, "made/up", 9)

	text := f.scrape(t)
	for _, line := range []string{
		`oidcproxy_gateway_decisions_total{mcp_method_name="tools/call",oidcproxy_decision="allowed"} 2`,
		`oidcproxy_gateway_decisions_total{mcp_method_name="tools/call",oidcproxy_decision="insufficient_scope"} 1`,
		`oidcproxy_gateway_decisions_total{mcp_method_name="resources/read",oidcproxy_decision="forbidden"} 1`,
		`oidcproxy_gateway_decisions_total{mcp_method_name="notifications/*",oidcproxy_decision="allowed"} 2`,
		`oidcproxy_gateway_decisions_total{mcp_method_name="other",oidcproxy_decision="forbidden"} 50`,
		`oidcproxy_gateway_list_entries_hidden_total{mcp_method_name="tools/list"} 5`,
		`oidcproxy_gateway_list_entries_hidden_total{mcp_method_name="resources/list"} 1`,
		`oidcproxy_gateway_list_entries_hidden_total{mcp_method_name="prompts/list"} 0`,
	} {
		require.Contains(t, text, "\n"+line+"\n")
	}
	require.Equal(t, 5, strings.Count(text, "\noidcproxy_gateway_decisions_total{"), "fifty made-up methods are one series")
	require.NotContains(t, text, "made/up")
}

func TestRateLimitRefusalsAreCountedByABoundedLimitName(t *testing.T) {
	f := newFixture(t)
	refused := f.tel.RateLimitRefused()
	ctx := t.Context()
	refused(ctx, "token")
	refused(ctx, "token")
	refused(ctx, "gateway")
	refused(ctx, "a name from nowhere")
	require.Equal(t, int64(2), f.counterValue(t, "oidcproxy.ratelimit.refused", attribute.String("oidcproxy.ratelimit.limit", "token")))
	require.Equal(t, int64(1), f.counterValue(t, "oidcproxy.ratelimit.refused", attribute.String("oidcproxy.ratelimit.limit", "gateway")))
	require.Equal(t, int64(1), f.counterValue(t, "oidcproxy.ratelimit.refused", attribute.String("oidcproxy.ratelimit.limit", "other")))
	require.Contains(t, f.scrape(t), "\noidcproxy_ratelimit_refused_total{oidcproxy_ratelimit_limit=\"token\"} 2\n")
}

func TestUpstreamMetricLabelsStayBoundedWhateverTheURL(t *testing.T) {
	f := newFixture(t)
	client := f.tel.HTTPClient(nil)
	for i := range 20 {
		resp, err := client.Get(f.idp.URL + "/down/" + strings.Repeat("x", i) + "?token=" + secret)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
	}
	text := f.scrape(t)
	require.Equal(t, 20.0, promSum(text, "http_client_request_duration_seconds_count",
		`oidcproxy_upstream_endpoint="other"`, `http_response_status_code="502"`))
	require.Equal(t, 1, strings.Count(text, "\nhttp_client_request_duration_seconds_count{"), "one series for twenty URLs")
	require.NotContains(t, text, secret)
}

// Exemplars are off unless OTEL_METRICS_EXEMPLAR_FILTER asks for them:
// offering every measurement of a sampled request to a reservoir cost the
// hot paths several percent of their throughput.
func TestExemplarsAreOffUnlessTheStandardVariableAsksForThem(t *testing.T) {
	exemplarsOf := func(t *testing.T, env map[string]string) int {
		reader := sdkmetric.NewManualReader()
		setEnv(t, env)
		tel, cleanup, err := telemetry.Open(t.Context(), telemetry.Options{
			SpanExporter: tracetest.NewInMemoryExporter(), MetricReader: reader,
		})
		require.NoError(t, err)
		t.Cleanup(cleanup)
		h := tel.RouteMiddleware("/mcp")(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/mcp", nil))
		var rm metricdata.ResourceMetrics
		require.NoError(t, reader.Collect(t.Context(), &rm))
		n, found := 0, false
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if hist, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == "http.server.request.duration" {
					found = true
					for _, dp := range hist.DataPoints {
						n += len(dp.Exemplars)
					}
				}
			}
		}
		require.True(t, found, "the request duration was recorded")
		return n
	}
	require.Zero(t, exemplarsOf(t, nil))

	require.Positive(t, exemplarsOf(t, map[string]string{"OTEL_METRICS_EXEMPLAR_FILTER": "always_on"}))
}

func TestTheStoreListenersLossesAndReturnsAreCounted(t *testing.T) {
	f := newFixture(t)
	lm := f.tel.StoreListener()
	require.Equal(t, int64(1), f.counterValue(t, "oidcproxy.store.listener.connected"))
	lm.Disconnected()
	require.Equal(t, int64(0), f.counterValue(t, "oidcproxy.store.listener.connected"))
	lm.Reconnected()
	lm.Disconnected()

	require.Equal(t, int64(2), f.counterValue(t, "oidcproxy.store.listener.events", attribute.String("oidcproxy.store.listener.event", "disconnected")))
	require.Equal(t, int64(1), f.counterValue(t, "oidcproxy.store.listener.events", attribute.String("oidcproxy.store.listener.event", "reconnected")))
	text := f.scrape(t)
	require.Contains(t, text, "\noidcproxy_store_listener_events_total{oidcproxy_store_listener_event=\"disconnected\"} 2\n")
	require.Contains(t, text, "\noidcproxy_store_listener_connected 0\n")

	var none telemetry.StoreListenerMetrics
	none.Disconnected()
	none.Reconnected()
}

package telemetry_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gorilla/mux"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/oidcproxy/oidcproxy/adapters/telemetry"
)

const (
	callerTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpanID  = "00f067aa0ba902b7"
	traceparent   = "00-" + callerTraceID + "-" + callerSpanID + "-01"
)

func TestATokenRequestYieldsOneTraceFromServerSpanToStoreAndUpstreamSpans(t *testing.T) {
	f := newFixture(t)
	code := f.seedCode(t, "nest")

	status := f.post(t, "/token", url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"http://127.0.0.1/cb"},
	}, http.Header{"Traceparent": {traceparent}, "Baggage": {"caller.note=" + secret}})
	require.Equal(t, http.StatusOK, status)

	server := f.spanNamed(t, "POST /token")
	useCase := f.spanNamed(t, "usecase.ExchangeToken")
	redeem := f.spanNamed(t, "store.RedeemCode")
	upstream := f.spanNamed(t, "POST token")

	require.Equal(t, trace.SpanKindServer, server.SpanKind)
	require.Equal(t, trace.SpanKindClient, upstream.SpanKind)
	for _, s := range []tracetest.SpanStub{server, useCase, redeem, upstream} {
		require.Equal(t, callerTraceID, s.SpanContext.TraceID().String(), "%s continues the caller's trace", s.Name)
	}
	require.True(t, server.Parent.IsRemote())
	require.Equal(t, callerSpanID, server.Parent.SpanID().String())
	require.Equal(t, server.SpanContext.SpanID(), useCase.Parent.SpanID(), "the use case runs inside the request")
	require.Equal(t, useCase.SpanContext.SpanID(), redeem.Parent.SpanID(), "the store call runs inside the use case")
	require.Equal(t, useCase.SpanContext.SpanID(), upstream.Parent.SpanID(), "the upstream call runs inside the use case")

	route, _ := attr(server, "http.route")
	require.Equal(t, "/token", route.AsString())
	grant, _ := attr(useCase, "oauth.grant_type")
	require.Equal(t, "authorization_code", grant.AsString())
	client, _ := attr(useCase, "oauth.client_id")
	require.Equal(t, clientID, client.AsString())
	endpoint, _ := attr(upstream, "oidcproxy.upstream.endpoint")
	require.Equal(t, "token", endpoint.AsString())
	provider, _ := attr(upstream, "oidcproxy.provider")
	require.Equal(t, "testidp", provider.AsString())

	// The IdP received our trace context: its spans would join the trace.
	seen := f.idp.seenTraceparents()
	require.Len(t, seen, 1)
	require.Equal(t, "00-"+callerTraceID+"-"+upstream.SpanContext.SpanID().String()+"-01", seen[0])
	// The caller's baggage stays with us: the IdP is a third party.
	require.Empty(t, f.idp.seenBaggage())
	// The gateway's propagator does carry baggage to the MCP backend.
	carrier := http.Header{}
	ctx := f.tel.Propagator().Extract(t.Context(), propagation.HeaderCarrier(http.Header{
		"Traceparent": {traceparent}, "Baggage": {"k=v"},
	}))
	f.tel.Propagator().Inject(ctx, propagation.HeaderCarrier(carrier))
	require.Equal(t, traceparent, carrier.Get("Traceparent"))
	require.Equal(t, "k=v", carrier.Get("Baggage"))
}

func TestHealthAndMetricsRequestsAreNeitherTracedNorCounted(t *testing.T) {
	f := newFixture(t)
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		require.Equal(t, http.StatusOK, f.get(t, path), path)
	}
	require.Empty(t, spanNames(f.spans.GetSpans()))
	require.Zero(t, f.histogramCount(t, "http.server.request.duration"))

	// The same router does trace and count other routes.
	require.Equal(t, http.StatusFound, f.get(t, "/authorize?client_id="+clientID))
	f.spanNamed(t, "GET /authorize")
	require.Equal(t, uint64(1), f.histogramCount(t, "http.server.request.duration",
		attribute.String("http.route", "/authorize"), attribute.Int("http.response.status_code", 302)))
}

func TestNoSpanCarriesACodeTokenSecretStateSubjectOrEmail(t *testing.T) {
	f := newFixture(t)
	code := f.seedCode(t, "scan")
	require.Equal(t, http.StatusOK, f.exchange(t, code, "http://127.0.0.1/cb"))
	require.Equal(t, http.StatusBadRequest, f.exchange(t, code, "http://127.0.0.1/cb"), "replay")
	require.Equal(t, http.StatusInternalServerError, f.exchange(t, secret+"-code-x", redirectServerError))
	require.Equal(t, http.StatusServiceUnavailable, f.exchange(t, f.seedCode(t, "down"), redirectUpstreamDown))
	require.Equal(t, http.StatusOK, f.refresh(t, "rt-"+code))
	require.Equal(t, http.StatusBadRequest, f.refresh(t, "rt-"+code), "reuse")
	require.Equal(t, http.StatusOK, f.post(t, "/revoke", url.Values{"token": {secret + "-token"}}, nil))
	require.Equal(t, http.StatusServiceUnavailable,
		f.post(t, "/revoke", url.Values{"token": {secret + "-token"}, "token_type_hint": {"unreachable"}}, nil))
	require.Equal(t, http.StatusFound, f.get(t, "/authorize?client_id="+clientID+"&state="+secret+"-state"))

	spans := f.spans.GetSpans()
	require.GreaterOrEqual(t, len(spans), 20)
	for _, s := range spans {
		require.NotContains(t, spanText(s), secret, "span %q", s.Name)
	}

	// The scan itself must be able to see a planted value.
	leaky := tracetest.SpanStub{Name: "x", Attributes: []attribute.KeyValue{attribute.StringSlice("k", []string{"a", secret})}}
	require.Contains(t, spanText(leaky), secret)
	leaky = tracetest.SpanStub{Name: "x", Status: sdktrace.Status{Code: codes.Error, Description: secret}}
	require.Contains(t, spanText(leaky), secret)
}

// spanText renders everything a span exports as text: name, attributes,
// events, links, status and resource.
func spanText(s tracetest.SpanStub) string {
	var b strings.Builder
	kvs := func(attrs []attribute.KeyValue) {
		for _, kv := range attrs {
			b.WriteString(string(kv.Key) + "=" + kv.Value.Emit() + "\n")
		}
	}
	b.WriteString(s.Name + "\n" + s.Status.Description + "\n")
	kvs(s.Attributes)
	for _, e := range s.Events {
		b.WriteString(e.Name + "\n")
		kvs(e.Attributes)
	}
	for _, l := range s.Links {
		kvs(l.Attributes)
	}
	if s.Resource != nil {
		kvs(s.Resource.Attributes())
	}
	return b.String()
}

func TestSpanStatusIsErrorOnlyForServerSideFailures(t *testing.T) {
	cases := []struct {
		name          string
		run           func(t *testing.T, f *fixture) int
		status        int
		code          string
		serverError   bool
		upstreamError bool
	}{
		{
			name:   "a replayed code is the client's problem",
			status: http.StatusBadRequest, code: "invalid_grant",
			run: func(t *testing.T, f *fixture) int {
				code := f.seedCode(t, "replay")
				require.Equal(t, http.StatusOK, f.exchange(t, code, "http://127.0.0.1/cb"))
				f.spans.Reset()
				return f.exchange(t, code, "http://127.0.0.1/cb")
			},
		},
		{
			name:   "an internal failure is ours",
			status: http.StatusInternalServerError, code: "server_error", serverError: true,
			run: func(t *testing.T, f *fixture) int {
				return f.exchange(t, secret+"-code-none", redirectServerError)
			},
		},
		{
			name:   "a failing upstream is a dependency's failure",
			status: http.StatusServiceUnavailable, code: "temporarily_unavailable", serverError: true, upstreamError: true,
			run: func(t *testing.T, f *fixture) int {
				return f.exchange(t, f.seedCode(t, "down"), redirectUpstreamDown)
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			require.Equal(t, tc.status, tc.run(t, f))

			server := f.spanNamed(t, "POST /token")
			useCase := f.spanNamed(t, "usecase.ExchangeToken")
			code, ok := attr(useCase, "oauth.error")
			require.True(t, ok)
			require.Equal(t, tc.code, code.AsString())
			want := codes.Unset
			if tc.serverError {
				want = codes.Error
			}
			require.Equal(t, want, server.Status.Code, "server span")
			require.Equal(t, want, useCase.Status.Code, "use-case span")
			for _, s := range f.spans.GetSpans() {
				if strings.HasPrefix(s.Name, "store.") {
					require.Equal(t, codes.Unset, s.Status.Code, "%s answered as designed", s.Name)
				}
			}
			if tc.upstreamError {
				upstream := f.spanNamed(t, "POST token")
				require.Equal(t, codes.Error, upstream.Status.Code)
				errType, _ := attr(upstream, "error.type")
				require.Equal(t, "502", errType.AsString())
			}
		})
	}
}

func TestAnUnreachableUpstreamIsAnErrorSpanWithoutTheURLText(t *testing.T) {
	f := newFixture(t)
	status := f.post(t, "/revoke", url.Values{"token": {secret + "-token"}, "token_type_hint": {"unreachable"}}, nil)
	require.Equal(t, http.StatusServiceUnavailable, status)

	upstream := f.spanNamed(t, "GET revoke")
	require.Equal(t, codes.Error, upstream.Status.Code)
	require.NotContains(t, upstream.Status.Description, "revoke", "the transport's error names the address, not the URL")
	errType, _ := attr(upstream, "error.type")
	require.NotEmpty(t, errType.AsString())
	full, _ := attr(upstream, "url.full")
	require.True(t, strings.HasSuffix(full.AsString(), "/oauth/revoke"), full.AsString())
	// The failure is counted by endpoint and the error's type (never its
	// text).
	require.Equal(t, 1.0, promSum(f.scrape(t), "http_client_request_duration_seconds_count",
		`oidcproxy_upstream_endpoint="revoke"`, `error_type="net.OpError"`))
}

func TestUpstreamSpansAreNamedByEndpoint(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(srv.Close)
	client := f.tel.HTTPClient(nil)
	cases := map[string]string{
		"/.well-known/openid-configuration":             "GET discovery",
		"/tenant/v2.0/.well-known/openid-configuration": "GET discovery",
		"/oauth/token":                                        "GET token",
		"/.well-known/jwks.json":                              "GET jwks",
		"/oauth2/v3/certs":                                    "GET jwks",
		"/common/discovery/v2.0/keys":                         "GET jwks",
		"/realms/x/protocol/openid-connect/revoke":            "GET revoke",
		"/v1/userinfo":                                        "GET userinfo",
		"/something/" + secret + "?access_token=" + secret:    "GET other",
		"/realms/x/protocol/openid-connect/token/introspect/": "GET introspect",
	}
	for path, want := range cases {
		f.spans.Reset()
		resp, err := client.Get(srv.URL + path)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, []string{want}, spanNames(f.spans.GetSpans()), path)
		require.False(t, f.spans.GetSpans()[0].Parent.IsValid(), "no request span: a root span")
	}
}

func TestAPublicEndpointStartsItsOwnTraceAndLinksTheCaller(t *testing.T) {
	f := newFixture(t, func(o *telemetry.Options) { o.PublicEndpoint = true })
	require.Equal(t, http.StatusOK, f.post(t, "/token", url.Values{
		"grant_type": {"authorization_code"}, "code": {f.seedCode(t, "public")}, "redirect_uri": {"http://127.0.0.1/cb"},
	}, http.Header{"Traceparent": {traceparent}}))

	server := f.spanNamed(t, "POST /token")
	require.False(t, server.Parent.IsValid())
	require.NotEqual(t, callerTraceID, server.SpanContext.TraceID().String())
	require.Len(t, server.Links, 1)
	require.Equal(t, callerTraceID, server.Links[0].SpanContext.TraceID().String())
}

func TestTheMiddlewareKeepsFlushingAndRecordsAPanicAsA500(t *testing.T) {
	f := newFixture(t)
	r := mux.NewRouter()
	recovered := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					w.WriteHeader(http.StatusInternalServerError)
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
	r.Use(recovered, f.tel.ServerMiddleware())
	r.HandleFunc("/stream", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte("data: one\n\n"))
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		} else {
			_, _ = w.Write([]byte("no flusher\n"))
		}
		if err := http.NewResponseController(w).Flush(); err != nil {
			_, _ = w.Write([]byte("no controller flush\n"))
		}
	})
	r.HandleFunc("/panic", func(http.ResponseWriter, *http.Request) { panic("bug") })
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)

	resp, err := srv.Client().Get(srv.URL + "/stream")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, "data: one\n\n", string(body))
	f.spanNamed(t, "GET /stream")

	resp, err = srv.Client().Get(srv.URL + "/panic")
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	s := f.spanNamed(t, "GET /panic")
	require.Equal(t, codes.Error, s.Status.Code)
	st, _ := attr(s, "http.response.status_code")
	require.Equal(t, int64(500), st.AsInt64())
}

func TestStoreSpansNestUnderTheCallersSpan(t *testing.T) {
	f := newFixture(t)
	ctx, parent := f.tel.TracerProvider().Tracer("test").Start(t.Context(), "caller")
	_, err := f.tel.Store(f.raw).ListKeys(ctx)
	require.NoError(t, err)
	parent.End()
	get := f.spanNamed(t, "store.ListKeys")
	require.Equal(t, parent.SpanContext().SpanID(), get.Parent.SpanID())
	outcome, _ := attr(get, "oidcproxy.store.outcome")
	require.Equal(t, "ok", outcome.AsString())
}

// RouteMiddleware names and labels the requests of a handler outside the
// router after its fixed route, continues the caller's trace, and records
// the status like ServerMiddleware.
func TestRouteMiddlewareTracesAnUnroutedHandlerUnderItsRoute(t *testing.T) {
	f := newFixture(t)
	h := f.tel.RouteMiddleware("/mcp")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.True(t, trace.SpanContextFromContext(r.Context()).IsValid(), "the handler runs inside the span")
		w.WriteHeader(http.StatusAccepted)
	}))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	req, err := http.NewRequest(http.MethodPost, srv.URL+"/mcp/session", strings.NewReader("{}"))
	require.NoError(t, err)
	req.Header.Set("Traceparent", traceparent)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusAccepted, resp.StatusCode)

	s := f.spanNamed(t, "POST /mcp")
	require.Equal(t, trace.SpanKindServer, s.SpanKind)
	require.Equal(t, callerTraceID, s.SpanContext.TraceID().String())
	route, _ := attr(s, "http.route")
	require.Equal(t, "/mcp", route.AsString())
	st, _ := attr(s, "http.response.status_code")
	require.Equal(t, int64(http.StatusAccepted), st.AsInt64())
}

// Without an exporter the gateway's route starts no span of its own (one
// that is never recorded only costs time), still hands the caller's trace
// context on, and still records the request's duration.
func TestWithoutAnExporterRouteMiddlewareStartsNoSpanButKeepsTheCallersContext(t *testing.T) {
	setEnv(t, nil)
	tel, cleanup, err := telemetry.Open(t.Context(), telemetry.Options{})
	require.NoError(t, err)
	t.Cleanup(cleanup)
	var seen []trace.SpanContext
	h := tel.RouteMiddleware("/mcp")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, trace.SpanContextFromContext(r.Context()))
		w.WriteHeader(http.StatusAccepted)
	}))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	for _, header := range []http.Header{{"Traceparent": {traceparent}}, {}} {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/mcp", strings.NewReader("{}"))
		require.NoError(t, err)
		req.Header = header
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
	}
	require.Len(t, seen, 2)
	require.Equal(t, callerTraceID, seen[0].TraceID().String(), "the caller's trace goes on")
	require.Equal(t, callerSpanID, seen[0].SpanID().String(), "no span of ours in between")
	require.False(t, seen[1].IsValid(), "no trace is started for a caller without one")

	metrics := httptest.NewServer(tel.MetricsHandler())
	t.Cleanup(metrics.Close)
	resp, err := metrics.Client().Get(metrics.URL)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, 2.0, promSum(string(body), "http_server_request_duration_seconds_count",
		`http_request_method="POST"`, `http_response_status_code="202"`, `http_route="/mcp"`))
}

// The gateway's route is instrumented by hand, the router's routes by
// otelhttp: both must produce the same series, the same instrument scope,
// name and attributes, with or without an exporter.
func TestTheGatewaysRouteRecordsTheSeriesOtelhttpRecordsForTheRoutes(t *testing.T) {
	seriesOf := func(t *testing.T, exporter sdktrace.SpanExporter, routed bool) (string, attribute.Set) {
		setEnv(t, nil)
		reader := sdkmetric.NewManualReader()
		tel, cleanup, err := telemetry.Open(t.Context(), telemetry.Options{
			BaseURL: "https://auth.example.com:8443/base", SpanExporter: exporter, MetricReader: reader,
		})
		require.NoError(t, err)
		t.Cleanup(cleanup)
		accepted := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) })
		var h http.Handler = tel.RouteMiddleware("/mcp")(accepted)
		if routed {
			r := mux.NewRouter()
			r.Use(tel.ServerMiddleware())
			r.Handle("/mcp", accepted)
			h = r
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		resp, err := srv.Client().Post(srv.URL+"/mcp", "application/json", strings.NewReader("{}"))
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())

		var rm metricdata.ResourceMetrics
		require.NoError(t, reader.Collect(t.Context(), &rm))
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if m.Name == "http.server.request.duration" {
					points := m.Data.(metricdata.Histogram[float64]).DataPoints
					require.Len(t, points, 1)
					return sm.Scope.Name, points[0].Attributes
				}
			}
		}
		t.Fatal("no http.server.request.duration")
		return "", attribute.Set{}
	}
	enc := attribute.DefaultEncoder()
	libScope, lib := seriesOf(t, nil, true)
	for _, exporter := range []sdktrace.SpanExporter{nil, tracetest.NewInMemoryExporter()} {
		scope, set := seriesOf(t, exporter, false)
		require.Equal(t, libScope, scope)
		require.Equal(t, lib.Encoded(enc), set.Encoded(enc))
	}
	port, _ := lib.Value("server.port")
	require.Equal(t, int64(8443), port.AsInt64(), "the configured port, not the listener's")
}

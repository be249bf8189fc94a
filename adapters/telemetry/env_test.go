package telemetry_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/oidcproxy/oidcproxy/adapters/telemetry"
)

func TestOpenRefusesAMalformedEnvironment(t *testing.T) {
	cases := map[string]map[string]string{
		"unknown exporter":           {"OTEL_TRACES_EXPORTER": "zipkin"},
		"none beside another":        {"OTEL_TRACES_EXPORTER": "none,console"},
		"unknown protocol":           {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "thrift"},
		"a protocol no exporter has": {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"},
		"unknown metrics exporter":   {"OTEL_METRICS_EXPORTER": "statsd"},
		"bad metrics endpoint":       {"OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "collector:4318"},
		"relative endpoint":          {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"},
		"endpoint of another scheme": {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "ftp://collector/v1/traces"},
		"unknown sampler":            {"OTEL_TRACES_SAMPLER": "sometimes"},
		"ratio above one":            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.5"},
		"ratio not a number":         {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "half"},
		"resource pair without =":    {"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,oops"},
		"resource bad escape":        {"OTEL_RESOURCE_ATTRIBUTES": "team=%zz"},
	}
	for name, env := range cases {
		t.Run(name, func(t *testing.T) {
			setEnv(t, env)
			tel, cleanup, err := telemetry.Open(t.Context(), telemetry.Options{})
			require.Error(t, err)
			require.Nil(t, tel)
			require.Nil(t, cleanup)
		})
	}
}

func TestWithoutAnyOTELVariablesNothingIsExportedButMetricsAreServed(t *testing.T) {
	var logs syncBuffer
	setEnv(t, nil)
	tel, cleanup, err := telemetry.Open(t.Context(), telemetry.Options{
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	require.NoError(t, err)
	srv := httptest.NewServer(tel.MetricsHandler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	// Counters exist at zero from the start, so alerts on their increase
	// see the first event.
	require.Contains(t, string(body), "\noidcproxy_refresh_token_reuse_detected_total 0\n")
	require.Contains(t, string(body), "\noidcproxy_gateway_active_streams 0\n")

	_, span := tel.TracerProvider().Tracer("test").Start(t.Context(), "quiet")
	require.False(t, span.IsRecording(), "no exporter: nothing is recorded")
	span.End()
	cleanup()
	// Had an OTLP exporter been built by default, its export to the absent
	// localhost collector would have failed and been logged.
	require.Empty(t, logs.String())
}

func TestTheConsoleExporterIsAnExporter(t *testing.T) {
	// The console exporter writes to the process's standard output, which
	// a test cannot capture: that it records spans shows it was built.
	setEnv(t, map[string]string{"OTEL_TRACES_EXPORTER": "console"})
	tel, cleanup, err := telemetry.Open(t.Context(), telemetry.Options{})
	require.NoError(t, err)
	defer cleanup()
	_, span := tel.TracerProvider().Tracer("test").Start(t.Context(), "printed")
	defer span.End()
	require.True(t, span.IsRecording())
}

func TestTheEnvironmentNamesTheService(t *testing.T) {
	setEnv(t, map[string]string{
		"OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attributes,deployment.environment.name=test%20env",
		"OTEL_SERVICE_NAME":        "from-env",
	})
	spans := tracetest.NewInMemoryExporter()
	tel, cleanup, err := telemetry.Open(t.Context(), telemetry.Options{ServiceName: "from-code", Provider: "testidp", SpanExporter: spans})
	require.NoError(t, err)
	defer cleanup()
	_, span := tel.TracerProvider().Tracer("test").Start(t.Context(), "named")
	span.End()
	require.Len(t, spans.GetSpans(), 1)
	res := spans.GetSpans()[0].Resource
	name, _ := res.Set().Value("service.name")
	require.Equal(t, "from-env", name.AsString(), "OTEL_SERVICE_NAME has the last word")
	env, _ := res.Set().Value("deployment.environment.name")
	require.Equal(t, "test env", env.AsString(), "attribute values are percent-decoded")
	provider, _ := res.Set().Value("oidcproxy.provider")
	require.Equal(t, "testidp", provider.AsString())
}

func TestTheOTLPHTTPExporterSendsSpansToTheConfiguredEndpoint(t *testing.T) {
	cases := map[string]struct {
		env         map[string]string
		path        string
		contentType string
	}{
		"generic endpoint gets the signal path": {
			env:  map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "{url}/base"},
			path: "/base/v1/traces", contentType: "application/x-protobuf",
		},
		"traces endpoint is used as is": {
			env:  map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "{url}/collect"},
			path: "/collect", contentType: "application/x-protobuf",
		},
		"metrics are pushed when OTEL_METRICS_EXPORTER asks": {
			env: map[string]string{
				"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "{url}",
			},
			path: "/v1/metrics", contentType: "application/x-protobuf",
		},
		"an endpoint alone pushes no metrics": {
			env:  map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "{url}/v1/traces", "OTEL_METRICS_EXPORTER": ""},
			path: "/v1/traces", contentType: "application/x-protobuf",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var mu sync.Mutex
			var got []string
			collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				got = append(got, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type"))
				mu.Unlock()
				w.WriteHeader(http.StatusOK)
			}))
			defer collector.Close()
			env := map[string]string{}
			for k, v := range tc.env {
				env[k] = replaceURL(v, collector.URL)
			}
			setEnv(t, env)
			tel, cleanup, err := telemetry.Open(t.Context(), telemetry.Options{})
			require.NoError(t, err)
			_, span := tel.TracerProvider().Tracer("test").Start(t.Context(), "shipped")
			span.End()
			cleanup()
			mu.Lock()
			defer mu.Unlock()
			require.Equal(t, []string{"POST " + tc.path + " " + tc.contentType}, got)
		})
	}
}

func replaceURL(v, url string) string {
	return string(bytes.ReplaceAll([]byte(v), []byte("{url}"), []byte(url)))
}

func TestTheOTLPGRPCExporterIsBuiltForTheGRPCProtocol(t *testing.T) {
	setEnv(t, map[string]string{
		"OTEL_TRACES_EXPORTER":        "otlp",
		"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
		"OTEL_EXPORTER_OTLP_ENDPOINT": closedURL(t),
	})
	tel, cleanup, err := telemetry.Open(t.Context(), telemetry.Options{})
	require.NoError(t, err)
	require.NotNil(t, tel)
	cleanup() // nothing was recorded, so nothing waits for the absent collector
}

func TestSamplingAndTheSDKSwitchFollowTheEnvironment(t *testing.T) {
	cases := map[string]struct {
		env      map[string]string
		disabled bool
		sampled  bool
	}{
		"default samples everything":       {env: nil, sampled: true},
		"always_off samples nothing":       {env: map[string]string{"OTEL_TRACES_SAMPLER": "always_off"}, sampled: false},
		"ratio zero samples nothing":       {env: map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}, sampled: false},
		"ratio one samples all":            {env: map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1"}, sampled: true},
		"a disabled SDK records none":      {env: map[string]string{"OTEL_SDK_DISABLED": "true"}, sampled: false},
		"a disabled instance records none": {disabled: true, sampled: false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			setEnv(t, tc.env)
			spans := tracetest.NewInMemoryExporter()
			tel, cleanup, err := telemetry.Open(t.Context(), telemetry.Options{SpanExporter: spans, Disabled: tc.disabled})
			require.NoError(t, err)
			defer cleanup()
			_, span := tel.TracerProvider().Tracer("test").Start(t.Context(), "maybe")
			span.End()
			require.Equal(t, tc.sampled, len(spans.GetSpans()) == 1)
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the exporter's goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestWithoutAnExporterSpansAreNotRecordedButKeepTheirIDs(t *testing.T) {
	setEnv(t, nil)
	tel, cleanup, err := telemetry.Open(t.Context(), telemetry.Options{})
	require.NoError(t, err)
	defer cleanup()
	_, span := tel.TracerProvider().Tracer("test").Start(t.Context(), "request")
	defer span.End()
	require.False(t, span.IsRecording(), "no exporter: nothing to record for")
	require.True(t, span.SpanContext().IsValid(), "log records still get a trace_id")
}

package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// instrumentationName names the tracer and meter: every span and metric of
// oidcproxy comes from this one instrumentation scope.
const instrumentationName = "github.com/oidcproxy/oidcproxy"

// DefaultServiceName is service.name when neither OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES nor Options.ServiceName names the service.
const DefaultServiceName = "oidcproxy"

// maxAttributeLength bounds every string attribute of a span: client ids
// and route templates are short, and a bound keeps a hostile client id from
// bloating every exported span.
const maxAttributeLength = 256

// shutdownTimeout bounds the final flush of spans at shutdown, so that an
// unreachable collector cannot hold the process past its own shutdown.
const shutdownTimeout = 5 * time.Second

// Options configure Open. The zero value is usable: service name from the
// environment, exporters from the OTEL_* variables, metrics at
// MetricsHandler.
type Options struct {
	// ServiceName is service.name unless OTEL_SERVICE_NAME or a
	// service.name in OTEL_RESOURCE_ATTRIBUTES overrides it (the
	// specification gives the environment the last word). Default
	// DefaultServiceName.
	ServiceName string
	// ServiceVersion is service.version, when known.
	ServiceVersion string
	// Provider is the upstream identity provider's registry name, recorded
	// as the resource attribute oidcproxy.provider and on upstream client
	// spans.
	Provider string
	// BaseURL is the proxy's public base URL. Its host and port are the
	// server.address and server.port of server spans and request metrics,
	// in place of the request's Host header, which a client chooses (and
	// could use to create a new series per request). Default
	// http://localhost.
	BaseURL string
	// Disabled switches telemetry off as OTEL_SDK_DISABLED=true does, for
	// this instance only: a benchmark runs an App without telemetry beside
	// one that exports, in one process whose environment both share.
	Disabled bool
	// SpanExporter, when set, replaces the exporter OTEL_TRACES_EXPORTER
	// would build, and spans are exported synchronously as they end (tests
	// inject tracetest.NewInMemoryExporter and read spans right after the
	// request). Production leaves it nil and gets batched export.
	SpanExporter sdktrace.SpanExporter
	// MetricReader, when set, reads the metrics in addition to the
	// Prometheus exporter behind MetricsHandler (tests inject
	// sdkmetric.NewManualReader).
	MetricReader sdkmetric.Reader
	// PublicEndpoint makes the server middleware start a new trace for
	// every request and only link the caller's trace context instead of
	// continuing it: right when the proxy faces the internet and callers'
	// traceparent headers cannot be trusted to pick our trace ids or
	// sampling.
	PublicEndpoint bool
	// Logger, when set, receives OpenTelemetry's own errors (a failed
	// export, for instance). It is installed with otel.SetErrorHandler,
	// which is process-wide.
	Logger *slog.Logger
}

// envExemplarFilter is the standard variable that selects which
// measurements carry exemplars (always_on, always_off, trace_based).
const envExemplarFilter = "OTEL_METRICS_EXEMPLAR_FILTER"

// Telemetry owns the tracer and meter providers and hands out the
// instrumentation built on them. It is safe for concurrent use.
type Telemetry struct {
	tp       trace.TracerProvider
	mp       metric.MeterProvider
	tracer   trace.Tracer
	prop     propagation.TextMapPropagator
	registry *prometheus.Registry
	provider string
	public   bool
	// server is BaseURL's host:port, the server.address of requests.
	server string
	// exporting is whether any span can leave the process (an exporter is
	// configured); without one, the gateway's requests get no span of
	// their own (see RouteMiddleware).
	exporting bool
	inst      *instruments
	useCases  *family
	store     *family
}

// Open builds the providers from opts and the OTEL_* variables of the
// process, refusing a malformed variable (an unknown exporter, protocol or
// sampler, a bad endpoint or resource attribute) so that a
// misconfiguration fails the start. The returned cleanup flushes pending
// spans and metrics and shuts the providers down (waiting at most a few
// seconds for a collector); call it after the servers have stopped.
// Calling it again does nothing.
func Open(ctx context.Context, opts Options) (*Telemetry, func(), error) {
	server, err := serverAddress(opts.BaseURL)
	if err != nil {
		return nil, nil, fmt.Errorf("telemetry: open: %w", err)
	}
	t := &Telemetry{
		prop:     propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		registry: prometheus.NewRegistry(),
		provider: opts.Provider,
		public:   opts.PublicEndpoint,
		server:   server,
	}
	// The Go runtime and process collectors are what an operator expects
	// beside the application's series on any Prometheus target.
	if err := errors.Join(
		t.registry.Register(collectors.NewGoCollector()),
		t.registry.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})),
	); err != nil {
		return nil, nil, fmt.Errorf("telemetry: open: register collectors: %w", err)
	}
	if opts.Logger != nil {
		// Installed first: building the providers may already report.
		logger := opts.Logger
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			logger.Warn("opentelemetry error", "error", err)
		}))
	}

	var shutdowns []func(context.Context) error
	cleanup := sync.OnceFunc(func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		var errs []error
		for _, s := range shutdowns {
			errs = append(errs, s(sctx))
		}
		if err := errors.Join(errs...); err != nil && opts.Logger != nil {
			opts.Logger.Warn("telemetry shutdown", "error", err)
		}
	})

	if opts.Disabled || sdkDisabled() {
		t.tp = tracenoop.NewTracerProvider()
		t.mp = metricnoop.NewMeterProvider()
	} else {
		if err := checkEnv(); err != nil {
			return nil, nil, fmt.Errorf("telemetry: open: %w", err)
		}
		res, err := buildResource(ctx, opts)
		if err != nil {
			return nil, nil, fmt.Errorf("telemetry: open: %w", err)
		}
		tp, exporting, err := buildTracerProvider(ctx, res, opts.SpanExporter)
		if err != nil {
			return nil, nil, fmt.Errorf("telemetry: open: %w", err)
		}
		shutdowns = append(shutdowns, tp.Shutdown)
		t.tp, t.exporting = tp, exporting

		mp, err := t.buildMeterProvider(ctx, res, opts.MetricReader)
		if err != nil {
			cleanup()
			return nil, nil, fmt.Errorf("telemetry: open: %w", err)
		}
		shutdowns = append(shutdowns, mp.Shutdown)
		t.mp = mp
	}

	t.tracer = t.tp.Tracer(instrumentationName)
	inst, err := newInstruments(t.mp.Meter(instrumentationName))
	if err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("telemetry: open: %w", err)
	}
	t.inst = inst
	inst.zero(ctx)
	t.useCases = t.newUseCaseFamily()
	t.store = t.newStoreFamily()
	return t, cleanup, nil
}

// buildResource describes this process: service name and version, the
// upstream provider, the SDK, and what OTEL_RESOURCE_ATTRIBUTES and
// OTEL_SERVICE_NAME say (later detectors win, so the environment overrides
// the code, and OTEL_SERVICE_NAME overrides everything).
func buildResource(ctx context.Context, opts Options) (*resource.Resource, error) {
	name := opts.ServiceName
	if name == "" {
		name = DefaultServiceName
	}
	attrs := []attribute.KeyValue{semconv.ServiceName(name)}
	if opts.ServiceVersion != "" {
		attrs = append(attrs, semconv.ServiceVersion(opts.ServiceVersion))
	}
	if opts.Provider != "" {
		attrs = append(attrs, keyProvider.String(opts.Provider))
	}
	res, err := resource.New(ctx,
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithAttributes(attrs...),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
	)
	if err != nil {
		return nil, fmt.Errorf("resource: %w", err)
	}
	return res, nil
}

// buildTracerProvider assembles the SDK tracer provider: the injected
// exporter (synchronous) or the environment's (batched). The sampler is
// the SDK's reading of OTEL_TRACES_SAMPLER. exporting reports whether
// there is any exporter.
func buildTracerProvider(ctx context.Context, res *resource.Resource, injected sdktrace.SpanExporter,
) (_ *sdktrace.TracerProvider, exporting bool, _ error) {
	limits := sdktrace.NewSpanLimits()
	if limits.AttributeValueLengthLimit < 0 || limits.AttributeValueLengthLimit > maxAttributeLength {
		limits.AttributeValueLengthLimit = maxAttributeLength
	}
	tpOpts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSpanLimits(limits),
	}
	if injected != nil {
		return sdktrace.NewTracerProvider(append(tpOpts, sdktrace.WithSyncer(injected))...), true, nil
	}
	exporter, err := spanExporter(ctx)
	if err != nil {
		return nil, false, err
	}
	if exporter == nil {
		// Nothing would ever read a recorded span: sample none. Spans
		// still get trace and span ids, so log records inside a request
		// keep their trace_id for correlation, but attributes, events and
		// span ends cost nothing (the gateway measured ~4 µs per request
		// for recording spans nobody exports).
		return sdktrace.NewTracerProvider(append(tpOpts, sdktrace.WithSampler(sdktrace.NeverSample()))...), false, nil
	}
	return sdktrace.NewTracerProvider(append(tpOpts, sdktrace.WithBatcher(exporter))...), true, nil
}

// buildMeterProvider assembles the SDK meter provider: the Prometheus
// exporter behind MetricsHandler, the reader OTEL_METRICS_EXPORTER names
// (if any), and the injected one.
func (t *Telemetry) buildMeterProvider(ctx context.Context, res *resource.Resource, injected sdkmetric.Reader) (*sdkmetric.MeterProvider, error) {
	promExporter, err := otelprom.New(
		otelprom.WithRegisterer(t.registry),
		otelprom.WithoutScopeInfo(),
		otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes),
	)
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	mopts := []sdkmetric.Option{
		sdkmetric.WithResource(res),
		sdkmetric.WithReader(promExporter),
		// otelhttp also measures request and response body sizes: OAuth
		// bodies are small and the gateway counts its bytes in
		// oidcproxy.gateway.bytes, so these histograms would only multiply
		// the series (and cost each request two more measurements).
		sdkmetric.WithView(sdkmetric.NewView(
			sdkmetric.Instrument{Name: "http.*.body.size"},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationDrop{}},
		)),
	}
	pushed, err := metricReader(ctx)
	if err != nil {
		_ = promExporter.Shutdown(ctx)
		return nil, err
	}
	if pushed != nil {
		mopts = append(mopts, sdkmetric.WithReader(pushed))
	}
	if os.Getenv(envExemplarFilter) == "" {
		// Exemplars are off unless asked for: offering every measurement
		// of a sampled request to a reservoir cost /token and the gateway
		// 5-8 % of their throughput with tracing on
		// (BenchmarkTelemetryCost), and without an exporter they would
		// point at traces nobody has. The SDK reads the variable itself
		// when it is set.
		mopts = append(mopts, sdkmetric.WithExemplarFilter(exemplar.AlwaysOffFilter))
	}
	if injected != nil {
		mopts = append(mopts, sdkmetric.WithReader(injected))
	}
	return sdkmetric.NewMeterProvider(mopts...), nil
}

// serverAddress is the host:port of a base URL, the port filled in from
// the scheme: with an explicit port, otelhttp never falls back to the
// request's Host header for server.port.
func serverAddress(base string) (string, error) {
	if base == "" {
		base = "http://localhost"
	}
	u, err := url.Parse(base)
	if err != nil || u.Hostname() == "" {
		return "", fmt.Errorf("base URL %q is not an absolute URL", base)
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}

// TracerProvider is the tracer provider, for components that create spans
// of their own.
func (t *Telemetry) TracerProvider() trace.TracerProvider { return t.tp }

// MeterProvider is the meter provider, for components that record metrics
// of their own.
func (t *Telemetry) MeterProvider() metric.MeterProvider { return t.mp }

// Propagator is the W3C trace context and baggage propagator: the gateway
// injects it into requests to the MCP backend so that the backend's spans
// join the caller's trace.
func (t *Telemetry) Propagator() propagation.TextMapPropagator { return t.prop }

// MetricsHandler serves every metric in the Prometheus text format; mount
// it at /metrics on the admin listener.
func (t *Telemetry) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{})
}

package telemetry

import (
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/httpconv"
	"go.opentelemetry.io/otel/trace"
)

// untraced are the paths probed every few seconds by orchestrators and
// scrapers: tracing them would bury the real traffic.
var untraced = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// serverOptions are the otelhttp options every server middleware shares:
// our providers and propagators, the fixed server name (never the
// request's Host header, which would let a client mint metric series),
// and the public-endpoint rule.
func (t *Telemetry) serverOptions() []otelhttp.Option {
	opts := []otelhttp.Option{
		otelhttp.WithTracerProvider(t.tp),
		otelhttp.WithMeterProvider(t.mp),
		otelhttp.WithPropagators(t.prop),
		otelhttp.WithServerName(t.server),
	}
	if t.public {
		opts = append(opts, otelhttp.WithPublicEndpointFn(func(*http.Request) bool { return true }))
	}
	return opts
}

// ServerMiddleware instruments the routes of a gorilla/mux router (install
// it with Router.Use, so that the matched route is known) with otelhttp:
// one server span per request, named by method and route template
// ("POST /token"), the W3C trace context of the caller extracted (or only
// linked, with Options.PublicEndpoint), and the semantic conventions'
// http.server.request.duration (and body sizes) recorded with http.route.
// /healthz, /readyz and /metrics pass through untouched. The span status
// is Error only for 5xx answers, and for a handler that panics (which the
// router's recovery middleware answers with 500).
func (t *Telemetry) ServerMiddleware() mux.MiddlewareFunc {
	instrument := otelhttp.NewMiddleware("", append(t.serverOptions(),
		otelhttp.WithFilter(func(r *http.Request) bool { return !untraced[r.URL.Path] }),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if tpl := routeTemplate(r); tpl != "" {
				return method(r) + " " + tpl
			}
			return method(r)
		}),
		otelhttp.WithMetricAttributesFn(func(r *http.Request) []attribute.KeyValue {
			if tpl := routeTemplate(r); tpl != "" {
				return []attribute.KeyValue{semconv.HTTPRoute(tpl)}
			}
			return nil
		}),
	)...)
	return func(next http.Handler) http.Handler {
		return instrument(routed(next))
	}
}

// routed runs next inside the server span otelhttp opened: it names the
// route on the span (otelhttp knows only net/http's patterns), and marks a
// panicking handler's span as the 500 the recovery middleware will send
// before the panic goes on to it.
func routed(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		span := trace.SpanFromContext(r.Context())
		if tpl := routeTemplate(r); tpl != "" && span.IsRecording() {
			span.SetAttributes(semconv.HTTPRoute(tpl))
		}
		defer func() {
			if v := recover(); v != nil {
				span.SetAttributes(semconv.HTTPResponseStatusCode(http.StatusInternalServerError))
				span.SetStatus(codes.Error, "panic")
				panic(v)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// routeTemplate is the template of the mux route that matched r, or "".
func routeTemplate(r *http.Request) string {
	if cur := mux.CurrentRoute(r); cur != nil {
		if tpl, err := cur.GetPathTemplate(); err == nil {
			return tpl
		}
	}
	return ""
}

// knownMethods bound the method in span names; anything else is "HTTP",
// as otelhttp names it.
var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true, http.MethodConnect: true,
	http.MethodTrace: true,
}

// method is the request method as span names carry it (a client request's
// empty method is GET).
func method(r *http.Request) string {
	if r.Method == "" {
		return http.MethodGet
	}
	if knownMethods[r.Method] {
		return r.Method
	}
	return "HTTP"
}

// RouteMiddleware instruments a handler that serves one route outside the
// router (the gateway's mount point, which skips mux matching on its hot
// path) as ServerMiddleware instruments routed requests, with template as
// the route: a server span named "POST /mcp" when an exporter is
// configured, the caller's W3C trace context continued (or only linked,
// with Options.PublicEndpoint), and http.server.request.duration.
//
// It is hand-written, not otelhttp: on the gateway, otelhttp's
// per-request attributes and wrappers cost well over 3 % of the
// throughput (BenchmarkGateway, BenchmarkTelemetryCost). It records the
// duration into otelhttp's own instrument with the attributes otelhttp
// gives it, so the series are the same as the routes'; its spans carry
// the same names and the request's method, route, scheme, server address,
// protocol version and status, but not the peer's address or user agent.
//
// When no span can leave the process (no exporter, the default), it starts
// no span: a span that is never recorded costs the gateway several
// microseconds per request (about a third of its overhead over a bare
// reverse proxy) for nothing but a trace id in the rare log line. The
// caller's trace context, if any, still reaches the handler and through it
// the backend (unless the endpoint is public).
func (t *Telemetry) RouteMiddleware(template string) func(http.Handler) http.Handler {
	rt := newRoute(t, template)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { rt.serve(next, w, r) })
	}
}

// route instruments the requests of one route.
type route struct {
	t        *Telemetry
	template string
	attr     attribute.KeyValue
	duration metric.Float64Histogram
	host     string
	port     int // the configured port; server.port only when not the scheme's default
	// metrics and spans cache the duration's attribute sets and the span
	// start options; every key part is from a bounded set (methods outside
	// the standard ones are _OTHER, Go's server accepts only HTTP/1.x and
	// HTTP/2, statuses are 100-599).
	metrics sync.Map // routeKey -> []metric.RecordOption
	spans   sync.Map // routeKey (status 0) -> *routeSpan
}

type routeKey struct {
	method string
	tls    bool
	proto  string
	status int
}

// routeSpan is how the requests of one method and protocol start a span.
type routeSpan struct {
	name string
	opts []trace.SpanStartOption
}

func newRoute(t *Telemetry, template string) *route {
	// otelhttp's meter and instrument: the same scope, name and options
	// make the SDK hand back the instrument otelhttp records into.
	meter := t.mp.Meter(otelhttp.ScopeName, metric.WithInstrumentationVersion(otelhttp.Version))
	duration, err := httpconv.NewServerRequestDuration(meter, metric.WithExplicitBucketBoundaries(httpBuckets...))
	if err != nil {
		otel.Handle(err)
	}
	host, portText, _ := net.SplitHostPort(t.server)
	port, _ := strconv.Atoi(portText)
	return &route{t: t, template: template, attr: semconv.HTTPRoute(template), duration: duration.Inst(), host: host, port: port}
}

func (rt *route) serve(next http.Handler, w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var span trace.Span
	switch {
	case rt.t.exporting:
		ctx := r.Context()
		remote := rt.t.prop.Extract(ctx, HeaderCarrier(r.Header))
		s := rt.span(r)
		opts := s.opts
		if rt.t.public {
			if sc := trace.SpanContextFromContext(remote); sc.IsValid() {
				opts = append(slices.Clip(opts), trace.WithNewRoot(), trace.WithLinks(trace.Link{SpanContext: sc}))
			}
		} else {
			ctx = remote
		}
		ctx, span = rt.t.tracer.Start(ctx, s.name, opts...)
		r = r.WithContext(ctx)
	case !rt.t.public:
		if _, ok := r.Header["Traceparent"]; ok {
			r = r.WithContext(rt.t.prop.Extract(r.Context(), HeaderCarrier(r.Header)))
		}
	}
	rec := &statusRecorder{ResponseWriter: w}
	// A deferred method call, not a closure: the closure and the variables
	// it captured were two allocations per request.
	defer rt.finish(r, span, rec, start)
	next.ServeHTTP(rec, r)
	rec.finished = true
}

// finish ends the span, if any, and records the duration. A handler that
// did not return normally (rec.finished unset) is panicking on its way to
// the recovery middleware, which answers 500: it is recorded as such.
func (rt *route) finish(r *http.Request, span trace.Span, rec *statusRecorder, start time.Time) {
	status := rec.status
	if !rec.finished {
		status = http.StatusInternalServerError
	}
	if status == 0 {
		status = http.StatusOK // the handler wrote nothing: net/http sends 200
	}
	if span != nil {
		if span.IsRecording() { // the attribute's variadic slice is an allocation
			span.SetAttributes(semconv.HTTPResponseStatusCode(status))
			if status >= 500 {
				span.SetStatus(codes.Error, "")
			}
		}
		span.End()
	}
	rt.duration.Record(r.Context(), time.Since(start).Seconds(), rt.metricOptions(r, status)...)
}

// key classifies a request as the attribute sets need it.
func (rt *route) key(r *http.Request, status int) routeKey {
	m := r.Method
	if !knownMethods[m] {
		if m = strings.ToUpper(m); !knownMethods[m] {
			m = "_OTHER"
		}
	}
	return routeKey{method: m, tls: r.TLS != nil, proto: r.Proto, status: status}
}

// attrs are the attributes otelhttp's HTTPServer.MetricAttributes gives a
// request of key k (without the status when it is 0).
func (rt *route) attrs(k routeKey) []attribute.KeyValue {
	scheme, defaultPort := "http", 80
	if k.tls {
		scheme, defaultPort = "https", 443
	}
	name, version, _ := strings.Cut(k.proto, "/")
	attrs := []attribute.KeyValue{
		semconv.HTTPRequestMethodKey.String(k.method),
		semconv.URLScheme(scheme),
		semconv.ServerAddress(rt.host),
		semconv.NetworkProtocolName(strings.ToLower(name)),
		semconv.NetworkProtocolVersion(version),
		rt.attr,
	}
	if rt.port > 0 && rt.port != defaultPort {
		attrs = append(attrs, semconv.ServerPort(rt.port))
	}
	if k.status != 0 {
		attrs = append(attrs, semconv.HTTPResponseStatusCode(k.status))
	}
	return attrs
}

// metricOptions are the duration's attributes as a ready variadic
// argument.
func (rt *route) metricOptions(r *http.Request, status int) []metric.RecordOption {
	k := rt.key(r, status)
	if v, ok := rt.metrics.Load(k); ok {
		return v.([]metric.RecordOption)
	}
	opts := []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(rt.attrs(k)...))}
	rt.metrics.Store(k, opts)
	return opts
}

// span is how a request starts its span, built once per method and
// protocol: each request allocated its options anew otherwise.
func (rt *route) span(r *http.Request) *routeSpan {
	k := rt.key(r, 0)
	if v, ok := rt.spans.Load(k); ok {
		return v.(*routeSpan)
	}
	name := k.method + " " + rt.template
	if k.method == "_OTHER" {
		name = "HTTP " + rt.template
	}
	s := &routeSpan{name: name, opts: []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(rt.attrs(k)...),
	}}
	rt.spans.Store(k, s)
	return s
}

// statusRecorder remembers the status a handler answered with. It exposes
// the wrapped writer through Unwrap, so http.ResponseController (which the
// gateway's streaming proxy uses to flush) reaches the real connection,
// and it implements http.Flusher for handlers that assert it directly.
type statusRecorder struct {
	http.ResponseWriter
	status int
	// finished is set when the handler returned normally.
	finished bool
}

// WriteHeader records the first final status.
func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

// Write implies 200 when no status was written.
func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Flush sends buffered data to the client, if the writer can.
func (s *statusRecorder) Flush() {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	_ = http.NewResponseController(s.ResponseWriter).Flush()
}

// Unwrap returns the wrapped writer for http.ResponseController.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

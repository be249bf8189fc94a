package telemetry

import (
	"net/http"

	"github.com/gorilla/mux"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
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
// the route. When no span can leave the process (no exporter), it starts
// no span: a span that is never recorded costs the gateway several
// microseconds per request (measured: about a third of its overhead over
// a bare reverse proxy) for nothing but a trace id in the rare log line.
// The caller's trace context, if any, still reaches the handler and
// through it the backend (unless the endpoint is public); durations are
// recorded either way.
func (t *Telemetry) RouteMiddleware(template string) func(http.Handler) http.Handler {
	names := map[string]string{}
	for m := range knownMethods {
		names[m] = m + " " + template
	}
	opts := append(t.serverOptions(),
		otelhttp.WithSpanOptions(trace.WithAttributes(semconv.HTTPRoute(template))),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if name, ok := names[r.Method]; ok {
				return name
			}
			return "HTTP " + template
		}),
		otelhttp.WithMetricAttributesFn(func(*http.Request) []attribute.KeyValue {
			return []attribute.KeyValue{semconv.HTTPRoute(template)}
		}),
	)
	if !t.exporting {
		// The no-op tracer hands the extracted caller's context on as it
		// is; a public endpoint extracts none to hand on.
		opts = append(opts, otelhttp.WithTracerProvider(tracenoop.NewTracerProvider()))
		if t.public {
			opts = append(opts, otelhttp.WithPropagators(propagation.NewCompositeTextMapPropagator()))
		}
	}
	return otelhttp.NewMiddleware("", opts...)
}

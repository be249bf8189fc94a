package telemetry

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// untraced are the paths probed every few seconds by orchestrators and
// scrapers: tracing them would bury the real traffic.
var untraced = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// knownMethods bound the method label; anything else is "_OTHER", as the
// HTTP semantic conventions say.
var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true, http.MethodConnect: true,
	http.MethodTrace: true,
}

// ServerMiddleware instruments the routes of a gorilla/mux router (install
// it with Router.Use, so that the matched route is known): one server span
// per request, named by method and route template ("POST /token"), the
// W3C trace context of the caller extracted (or only linked, with
// Options.PublicEndpoint), and the request duration recorded per route,
// method and status. /healthz, /readyz and /metrics pass through untouched.
// The span status is Error only for 5xx answers.
func (t *Telemetry) ServerMiddleware() mux.MiddlewareFunc {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if untraced[r.URL.Path] {
				next.ServeHTTP(w, r)
				return
			}
			t.serve(next, w, r, t.routes.get(r))
		})
	}
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
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rt := t.routes.lookup(template, r.Method)
			if !t.exporting {
				t.serveUntraced(next, w, r, rt)
				return
			}
			t.serve(next, w, r, rt)
		})
	}
}

// serveUntraced is serve without a span of our own.
func (t *Telemetry) serveUntraced(next http.Handler, w http.ResponseWriter, r *http.Request, rt *route) {
	start := time.Now()
	if !t.public {
		if _, ok := r.Header["Traceparent"]; ok {
			r = r.WithContext(t.prop.Extract(r.Context(), HeaderCarrier(r.Header)))
		}
	}
	rec := &statusRecorder{ResponseWriter: w}
	defer t.finish(r.Context(), trace.SpanFromContext(r.Context()), rt, rec, start)
	next.ServeHTTP(rec, r)
	rec.finished = true
}

func (t *Telemetry) serve(next http.Handler, w http.ResponseWriter, r *http.Request, rt *route) {
	start := time.Now()

	ctx := r.Context()
	remote := t.prop.Extract(ctx, HeaderCarrier(r.Header))
	opts := rt.startOpts
	if t.public {
		if sc := trace.SpanContextFromContext(remote); sc.IsValid() {
			opts = append(slices.Clip(opts), trace.WithNewRoot(), trace.WithLinks(trace.Link{SpanContext: sc}))
		}
	} else {
		ctx = remote
	}
	ctx, span := t.tracer.Start(ctx, rt.spanName, opts...)

	rec := &statusRecorder{ResponseWriter: w}
	// A deferred method call, not a closure: the closure and the variables
	// it captured were two allocations per request.
	defer t.finish(ctx, span, rt, rec, start)
	next.ServeHTTP(rec, r.WithContext(ctx))
	rec.finished = true
}

// finish ends the server span and records the duration. A handler that
// did not return normally (rec.finished unset) is panicking on its way to
// the recovery middleware, which answers 500: it is recorded as such.
func (t *Telemetry) finish(ctx context.Context, span trace.Span, rt *route, rec *statusRecorder, start time.Time) {
	status := rec.status
	if !rec.finished {
		status = http.StatusInternalServerError
	}
	if status == 0 {
		status = http.StatusOK // the handler wrote nothing: net/http sends 200
	}
	if span.IsRecording() { // the attribute's variadic slice is an allocation
		span.SetAttributes(semconv.HTTPResponseStatusCode(status))
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	}
	span.End()
	t.inst.httpDuration.Record(ctx, time.Since(start).Seconds(), t.routes.metricOptions(rt, status)...)
}

// route is what the middleware knows about a matched route, computed once
// per route and method.
type route struct {
	template  string
	method    string
	spanName  string
	spanAttrs []attribute.KeyValue
	// startOpts are the span options of every request on the route, built
	// once: each request allocated them anew.
	startOpts []trace.SpanStartOption
}

// routeKey indexes the caches; every field comes from a bounded set.
type routeKey struct {
	template string
	method   string
}

type metricKey struct {
	routeKey
	status int
}

// routeCache keeps the span names and metric attribute sets per route, so
// a request allocates neither. Route templates, methods (after
// normalisation) and status codes are bounded sets, so the maps are too.
type routeCache struct {
	mu      sync.RWMutex
	routes  map[routeKey]*route
	metrics map[metricKey][]metric.RecordOption
}

// unmatched is the route label of a request no route template describes.
const unmatched = "unmatched"

func (c *routeCache) get(r *http.Request) *route {
	template := unmatched
	if cur := mux.CurrentRoute(r); cur != nil {
		if tpl, err := cur.GetPathTemplate(); err == nil {
			template = tpl
		}
	}
	return c.lookup(template, r.Method)
}

// lookup returns the route of a template and request method.
func (c *routeCache) lookup(template, method string) *route {
	if !knownMethods[method] {
		method = "_OTHER"
	}
	key := routeKey{template: template, method: method}
	c.mu.RLock()
	rt, ok := c.routes[key]
	c.mu.RUnlock()
	if ok {
		return rt
	}
	rt = &route{template: template, method: method, spanName: method + " " + template}
	rt.spanAttrs = []attribute.KeyValue{
		semconv.HTTPRequestMethodKey.String(method),
		semconv.HTTPRoute(template),
	}
	if template == unmatched {
		rt.spanName = method
		rt.spanAttrs = rt.spanAttrs[:1]
	}
	rt.startOpts = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(rt.spanAttrs...)}
	c.mu.Lock()
	if c.routes == nil {
		c.routes = map[routeKey]*route{}
	}
	if existing, ok := c.routes[key]; ok {
		rt = existing
	} else {
		c.routes[key] = rt
	}
	c.mu.Unlock()
	return rt
}

// metricOptions returns the duration's attributes as a ready variadic
// argument, so that recording allocates no slice.
func (c *routeCache) metricOptions(rt *route, status int) []metric.RecordOption {
	if status < 100 || status > 599 {
		status = 0
	}
	key := metricKey{routeKey: routeKey{template: rt.template, method: rt.method}, status: status}
	c.mu.RLock()
	opt, ok := c.metrics[key]
	c.mu.RUnlock()
	if ok {
		return opt
	}
	opt = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(
		semconv.HTTPRequestMethodKey.String(rt.method),
		semconv.HTTPRoute(rt.template),
		semconv.HTTPResponseStatusCode(status),
	))}
	c.mu.Lock()
	if c.metrics == nil {
		c.metrics = map[metricKey][]metric.RecordOption{}
	}
	c.metrics[key] = opt
	c.mu.Unlock()
	return opt
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

package telemetry_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gorilla/mux"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/oidcproxy/oidcproxy/adapters/telemetry"
)

// BenchmarkServerMiddleware is the per-request cost of the server
// middleware alone, as production runs it without an exporter (spans
// never sampled, durations recorded), against the bare router.
func BenchmarkServerMiddleware(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "middleware=off"
		if on {
			name = "middleware=on"
		}
		b.Run(name, func(b *testing.B) {
			r := mux.NewRouter()
			if on {
				setEnv(b, nil)
				tel, cleanup, err := telemetry.Open(b.Context(), telemetry.Options{})
				require.NoError(b, err)
				b.Cleanup(cleanup)
				r.Use(tel.ServerMiddleware())
			}
			r.PathPrefix("/mcp").Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
			req := httptest.NewRequest(http.MethodPost, "/mcp", nil)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				r.ServeHTTP(w, req)
			}
		})
	}
}

// BenchmarkGatewayRoute compares the gateway route's hand-written
// middleware with otelhttp configured for the same route, without and
// with an exporter (every span sampled, then dropped): the
// per-request cost that decided for the hand-written one.
func BenchmarkGatewayRoute(b *testing.B) {
	for _, exporting := range []bool{false, true} {
		for _, impl := range []string{"hand", "otelhttp"} {
			b.Run(fmt.Sprintf("exporter=%v/%s", exporting, impl), func(b *testing.B) {
				setEnv(b, nil)
				opts := telemetry.Options{}
				if exporting {
					opts.SpanExporter = discardExporter{}
				}
				tel, cleanup, err := telemetry.Open(b.Context(), opts)
				require.NoError(b, err)
				b.Cleanup(cleanup)
				ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
				var h http.Handler
				if impl == "hand" {
					h = tel.RouteMiddleware("/mcp")(ok)
				} else {
					// otelhttp as the route used it before: a fixed route,
					// and without an exporter the no-op tracer, so that it
					// starts no span either.
					tp := tel.TracerProvider()
					if !exporting {
						tp = tracenoop.NewTracerProvider()
					}
					h = otelhttp.NewHandler(ok, "", otelhttp.WithTracerProvider(tp),
						otelhttp.WithMeterProvider(tel.MeterProvider()), otelhttp.WithPropagators(tel.Propagator()),
						otelhttp.WithServerName("localhost:80"),
						otelhttp.WithSpanOptions(trace.WithAttributes(semconv.HTTPRoute("/mcp"))),
						otelhttp.WithSpanNameFormatter(func(string, *http.Request) string { return "POST /mcp" }),
						otelhttp.WithMetricAttributesFn(func(*http.Request) []attribute.KeyValue {
							return []attribute.KeyValue{semconv.HTTPRoute("/mcp")}
						}))
				}
				req := httptest.NewRequest(http.MethodPost, "/mcp", nil)
				w := httptest.NewRecorder()
				b.ReportAllocs()
				for b.Loop() {
					h.ServeHTTP(w, req)
				}
			})
		}
	}
}

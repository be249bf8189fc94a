package telemetry

import (
	"net/http"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// endpointNames classify an upstream URL by its last path segment into a
// small fixed set, which names client spans ("POST token") and labels the
// upstream metrics. It covers the endpoints of every preset (Auth0's
// jwks.json and /oauth/revoke, Google's certs, Entra's keys, Keycloak's
// certs and revoke, Okta's keys) and any discovery-based IdP; anything else
// is "other", so a surprising URL cannot create new series.
var endpointNames = map[string]string{
	"openid-configuration":       "discovery",
	"oauth-authorization-server": "discovery",
	"token":                      "token",
	"jwks":                       "jwks",
	"jwks.json":                  "jwks",
	"certs":                      "jwks",
	"keys":                       "jwks",
	"revoke":                     "revoke",
	"revocation":                 "revoke",
	"userinfo":                   "userinfo",
	"introspect":                 "introspect",
	"introspection":              "introspect",
}

// traceContextOnly propagates the W3C traceparent and tracestate headers.
var traceContextOnly = propagation.TraceContext{}

// otherEndpoint labels an upstream URL outside endpointNames.
const otherEndpoint = "other"

// classifyEndpoint names the upstream endpoint a URL path addresses.
func classifyEndpoint(path string) string {
	path = strings.TrimSuffix(path, "/")
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		path = path[i+1:]
	}
	if name, ok := endpointNames[strings.ToLower(path)]; ok {
		return name
	}
	return otherEndpoint
}

// HTTPClient returns a copy of base (nil: a zero http.Client) whose
// transport is instrumented by otelhttp: every upstream call gets a client
// span, a child of the span in the request's context (so the token
// exchange nests under the callback or /token request that caused it),
// named by method and endpoint ("POST token"), and carrying the W3C trace
// context to the IdP, and the semantic conventions'
// http.client.request.duration is recorded per endpoint, status and error
// type.
//
// The URL is recorded without its query (an IdP may take a token there, as
// Google's revocation endpoint does). As the HTTP client conventions say,
// a 4xx or 5xx answer marks the span Error; the use case that made the
// call judges the answer on its own span.
func (t *Telemetry) HTTPClient(base *http.Client) *http.Client {
	var c http.Client
	if base != nil {
		c = *base
	}
	c.Transport = t.Transport(c.Transport)
	return &c
}

// Transport instruments a RoundTripper (nil: http.DefaultTransport) the way
// HTTPClient does.
func (t *Telemetry) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	start := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}
	if t.provider != "" {
		start = append(start, trace.WithAttributes(keyProvider.String(t.provider)))
	}
	return otelhttp.NewTransport(annotate{base: base},
		otelhttp.WithTracerProvider(t.tp),
		otelhttp.WithMeterProvider(t.mp),
		// Only the trace context goes to the IdP, never baggage: baggage
		// may have come from our own callers, and the IdP is a third
		// party.
		otelhttp.WithPropagators(traceContextOnly),
		otelhttp.WithSpanOptions(start...),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			return method(r) + " " + classifyEndpoint(r.URL.Path)
		}),
		otelhttp.WithMetricAttributesFn(func(r *http.Request) []attribute.KeyValue {
			return []attribute.KeyValue{keyEndpoint.String(classifyEndpoint(r.URL.Path))}
		}),
	)
}

// annotate runs under otelhttp's transport, inside the client span it
// opened: it replaces otelhttp's url.full, which keeps the query, by the
// URL without query, fragment or user information, and names the
// endpoint.
type annotate struct{ base http.RoundTripper }

// RoundTrip implements http.RoundTripper.
func (a annotate) RoundTrip(r *http.Request) (*http.Response, error) {
	if span := trace.SpanFromContext(r.Context()); span.IsRecording() && r.URL != nil {
		span.SetAttributes(semconv.URLFull(redactedURL(r)), keyEndpoint.String(classifyEndpoint(r.URL.Path)))
	}
	return a.base.RoundTrip(r)
}

// redactedURL is the request URL without user information, query or
// fragment.
func redactedURL(r *http.Request) string {
	u := *r.URL
	u.User = nil
	u.RawQuery = ""
	u.ForceQuery = false
	u.Fragment = ""
	u.RawFragment = ""
	return u.String()
}

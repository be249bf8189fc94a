package telemetry

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
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
// transport is instrumented: every upstream call gets a client span, a
// child of the span in the request's context (so the token exchange nests
// under the callback or /token request that caused it), named by method and
// endpoint ("POST token"), and carrying the W3C trace context to the IdP.
// The call's latency is recorded per endpoint and status, and failures (no
// answer, or a 5xx answer) are counted per endpoint and error type.
//
// The URL is recorded without its query (an IdP may take a token there, as
// Google's revocation endpoint does), and error text, which may quote the
// URL or the IdP's answer, is replaced by an error type. A 4xx answer does
// not mark the span Error: it is the IdP judging the request, which the use
// case turns into an OAuth error of its own.
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
	return &transport{base: base, t: t}
}

type transport struct {
	base http.RoundTripper
	t    *Telemetry
}

type upstreamKey struct {
	endpoint string
	status   int    // 0 when there was no answer
	errType  string // "" for the duration histogram
}

// upstreamOption returns the cached attribute set of an upstream
// measurement.
func (t *Telemetry) upstreamOption(endpoint string, status int, errType string) metric.MeasurementOption {
	key := upstreamKey{endpoint: endpoint, status: status, errType: errType}
	if opt, ok := t.upstreamOpts.Load(key); ok {
		return opt.(metric.MeasurementOption)
	}
	attrs := []attribute.KeyValue{keyEndpoint.String(endpoint)}
	if status != 0 {
		attrs = append(attrs, semconv.HTTPResponseStatusCode(status))
	}
	if errType != "" {
		attrs = append(attrs, semconv.ErrorTypeKey.String(errType))
	}
	opt := metric.WithAttributeSet(attribute.NewSet(attrs...))
	t.upstreamOpts.Store(key, opt)
	return opt
}

// RoundTrip implements http.RoundTripper.
func (tr *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL == nil {
		// Malformed: let the base transport refuse it with its own error.
		return tr.base.RoundTrip(r)
	}
	start := time.Now()
	endpoint := classifyEndpoint(r.URL.Path)
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	if !knownMethods[method] {
		method = "_OTHER"
	}
	attrs := []attribute.KeyValue{
		semconv.HTTPRequestMethodKey.String(method),
		semconv.URLFull(redactedURL(r)),
		semconv.ServerAddress(r.URL.Hostname()),
		keyEndpoint.String(endpoint),
	}
	if port := serverPort(r); port > 0 {
		attrs = append(attrs, semconv.ServerPort(port))
	}
	if tr.t.provider != "" {
		attrs = append(attrs, keyProvider.String(tr.t.provider))
	}
	ctx, span := tr.t.tracer.Start(r.Context(), method+" "+endpoint,
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))

	// A RoundTripper must not modify the caller's request; the clone gets
	// the span's context and its own headers for the trace context. Only
	// the trace context goes to the IdP, never baggage: baggage may have
	// come from our own callers, and the IdP is a third party.
	out := r.Clone(ctx)
	traceContextOnly.Inject(ctx, propagation.HeaderCarrier(out.Header))

	resp, err := tr.base.RoundTrip(out)
	elapsed := time.Since(start).Seconds()
	inst := tr.t.inst
	if err != nil {
		errType := errorType(err)
		span.SetAttributes(semconv.ErrorTypeKey.String(errType))
		if errType != "canceled" {
			span.SetStatus(codes.Error, errType)
		}
		span.End()
		inst.upstreamDuration.Record(ctx, elapsed, tr.t.upstreamOption(endpoint, 0, ""))
		inst.upstreamErrors.Add(ctx, 1, tr.t.upstreamOption(endpoint, 0, errType))
		return nil, err
	}
	status := resp.StatusCode
	span.SetAttributes(semconv.HTTPResponseStatusCode(status))
	if status >= 500 {
		errType := strconv.Itoa(status)
		span.SetAttributes(semconv.ErrorTypeKey.String(errType))
		span.SetStatus(codes.Error, errType)
		inst.upstreamErrors.Add(ctx, 1, tr.t.upstreamOption(endpoint, 0, errType))
	}
	inst.upstreamDuration.Record(ctx, elapsed, tr.t.upstreamOption(endpoint, status, ""))
	if resp.Body == nil || resp.Body == http.NoBody {
		span.End()
		return resp, nil
	}
	// The span lasts until the body is read or closed, like the call.
	resp.Body = &spanBody{ReadCloser: resp.Body, span: span}
	return resp, nil
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

// serverPort is the port the request goes to, explicit or implied.
func serverPort(r *http.Request) int {
	if p := r.URL.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err == nil {
			return n
		}
		return 0
	}
	switch r.URL.Scheme {
	case "https":
		return 443
	case "http":
		return 80
	}
	return 0
}

// errorType classifies a transport error into a bounded set, never its
// text: the text quotes the URL.
func errorType(err error) string {
	var netErr net.Error
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var certErr *tls.CertificateVerificationError
	var recordErr tls.RecordHeaderError
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case errors.As(err, &certErr), errors.As(err, &recordErr):
		return "tls"
	case errors.As(err, &dnsErr):
		return "dns"
	case errors.As(err, &opErr):
		return "connection"
	default:
		return "transport"
	}
}

// spanBody ends the client span when the response body is finished.
type spanBody struct {
	io.ReadCloser
	span trace.Span
	once sync.Once
}

// Read ends the span at the end of the body, or on a failed read.
func (b *spanBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		b.end()
	default:
		b.once.Do(func() {
			errType := errorType(err)
			b.span.SetAttributes(semconv.ErrorTypeKey.String(errType))
			if errType != "canceled" {
				b.span.SetStatus(codes.Error, errType)
			}
			b.span.End()
		})
	}
	return n, err
}

// Close ends the span and closes the body.
func (b *spanBody) Close() error {
	b.end()
	return b.ReadCloser.Close()
}

func (b *spanBody) end() { b.once.Do(func() { b.span.End() }) }

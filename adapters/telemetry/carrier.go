package telemetry

import (
	"net/http"

	"go.opentelemetry.io/otel/propagation"
)

// HeaderCarrier carries trace context in HTTP headers like
// propagation.HeaderCarrier, without canonicalising the propagators'
// lower-case field names on every call: that allocated a fresh string per
// field and request on the gateway's hot path.
type HeaderCarrier http.Header

var _ propagation.TextMapCarrier = HeaderCarrier(nil)

// canonicalField spells the W3C fields the way http.Header stores them.
func canonicalField(key string) string {
	switch key {
	case "traceparent":
		return "Traceparent"
	case "tracestate":
		return "Tracestate"
	case "baggage":
		return "Baggage"
	}
	return http.CanonicalHeaderKey(key)
}

// Get returns the first value of key.
func (c HeaderCarrier) Get(key string) string {
	if v := c[canonicalField(key)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set replaces the values of key.
func (c HeaderCarrier) Set(key, value string) {
	c[canonicalField(key)] = []string{value}
}

// Keys lists the header names.
func (c HeaderCarrier) Keys() []string {
	return propagation.HeaderCarrier(c).Keys()
}

package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// GatewayMetrics are the gateway's counters. The gateway is an adapter and
// may not import this package, so the composition root hands it these
// methods as plain functions (gm.BytesIn is a func(context.Context, int64)).
// The zero value records nothing, which suits gateway tests.
type GatewayMetrics struct {
	in      *instruments
	streams metric.Int64UpDownCounter
}

// Attribute sets of the byte counter, built once.
var (
	bytesIn  = metric.WithAttributeSet(attribute.NewSet(semconv.NetworkIODirectionReceive))
	bytesOut = metric.WithAttributeSet(attribute.NewSet(semconv.NetworkIODirectionTransmit))
)

// Gateway returns the gateway's counters.
func (t *Telemetry) Gateway() GatewayMetrics {
	return GatewayMetrics{in: t.inst, streams: t.inst.gatewayStreams}
}

// BytesIn counts n request-body bytes proxied from a client to the backend.
func (m GatewayMetrics) BytesIn(_ context.Context, n int64) {
	if m.in != nil && n > 0 {
		m.in.gatewayBytesIn.Add(n)
	}
}

// BytesOut counts n response-body bytes proxied from the backend to a
// client.
func (m GatewayMetrics) BytesOut(_ context.Context, n int64) {
	if m.in != nil && n > 0 {
		m.in.gatewayBytesOut.Add(n)
	}
}

// StreamOpened counts a response that starts streaming to a client; pair
// it with StreamClosed.
func (m GatewayMetrics) StreamOpened(ctx context.Context) {
	if m.streams != nil {
		m.streams.Add(ctx, 1)
	}
}

// StreamClosed counts the end of a stream StreamOpened counted.
func (m GatewayMetrics) StreamClosed(ctx context.Context) {
	if m.streams != nil {
		m.streams.Add(ctx, -1)
	}
}

package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// StoreListenerMetrics count the state changes of a shared store's
// notification connection (PostgreSQL LISTEN): while it is lost, the
// store bypasses its caches and every bearer check reads the database.
// The store adapter may not import this package, so the composition root
// hands it these methods as plain functions. The zero value records
// nothing.
type StoreListenerMetrics struct {
	events    metric.Int64Counter
	connected metric.Int64UpDownCounter
}

// Attribute sets of the listener's event counter, built once.
var (
	listenerDisconnected = metric.WithAttributeSet(attribute.NewSet(keyListenerEvent.String("disconnected")))
	listenerReconnected  = metric.WithAttributeSet(attribute.NewSet(keyListenerEvent.String("reconnected")))
)

// StoreListener returns the listener's metrics. The store starts
// connected (it opens the connection before it serves), so the
// connection gauge counts 1 from the first call on.
func (t *Telemetry) StoreListener() StoreListenerMetrics {
	m := StoreListenerMetrics{events: t.inst.listenerEvents, connected: t.inst.listenerConnected}
	m.connected.Add(context.Background(), 1)
	return m
}

// Disconnected counts a lost connection.
func (m StoreListenerMetrics) Disconnected() {
	if m.events != nil {
		m.events.Add(context.Background(), 1, listenerDisconnected)
		m.connected.Add(context.Background(), -1)
	}
}

// Reconnected counts a connection restored.
func (m StoreListenerMetrics) Reconnected() {
	if m.events != nil {
		m.events.Add(context.Background(), 1, listenerReconnected)
		m.connected.Add(context.Background(), 1)
	}
}

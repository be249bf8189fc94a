package telemetry_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/propagation"

	"github.com/oidcproxy/oidcproxy/adapters/telemetry"
)

// The carrier reads and writes the same header entries as OTel's own.
func TestHeaderCarrierMatchesOTelCarrier(t *testing.T) {
	h := http.Header{}
	c := telemetry.HeaderCarrier(h)
	for _, key := range []string{"traceparent", "tracestate", "baggage", "x-custom-field"} {
		c.Set(key, "v-"+key)
		require.Equal(t, "v-"+key, propagation.HeaderCarrier(h).Get(key))
		require.Equal(t, "v-"+key, c.Get(key))
	}
	require.ElementsMatch(t, propagation.HeaderCarrier(h).Keys(), c.Keys())
	require.Empty(t, c.Get("absent"))
}

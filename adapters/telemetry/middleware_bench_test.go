package telemetry_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gorilla/mux"
	"github.com/stretchr/testify/require"

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

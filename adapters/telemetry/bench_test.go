package telemetry_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/oidcproxy/oidcproxy/adapters/memstore"
	"github.com/oidcproxy/oidcproxy/adapters/telemetry"
	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// discardExporter drops every span: the benchmark measures what the
// instrumentation costs the request, not an exporter.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// lookupClient is a minimal use case: one store read, like the client
// authentication that starts every token request.
type lookupClient struct{ store ports.Store }

func (h lookupClient) Handle(ctx context.Context, cmd ports.ExchangeTokenCommand) (ports.TokenResult, error) {
	if _, err := h.store.GetClient(ctx, cmd.Client.ClientID); err != nil {
		return ports.TokenResult{}, err
	}
	return ports.TokenResult{AccessToken: "at", TokenType: "Bearer"}, nil
}

// BenchmarkTokenRequest compares one request through the router, a use
// case and a store read with telemetry off and on (100% sampling, spans
// dropped by the exporter): the difference is the per-request cost of
// ServerMiddleware, Application and Store.
func BenchmarkTokenRequest(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "telemetry=off"
		if on {
			name = "telemetry=on"
		}
		b.Run(name, func(b *testing.B) {
			store := ports.Store(memstore.New())
			require.NoError(b, store.CreateClient(b.Context(), domain.Client{ID: clientID, CreatedAt: time.Now()}))
			r := mux.NewRouter()
			var app ports.Application
			if on {
				setEnv(b, nil)
				tel, cleanup, err := telemetry.Open(b.Context(), telemetry.Options{SpanExporter: discardExporter{}})
				require.NoError(b, err)
				b.Cleanup(cleanup)
				r.Use(tel.ServerMiddleware())
				store = tel.Store(store)
				app = tel.Application(ports.Application{ExchangeToken: lookupClient{store: store}})
			} else {
				app = ports.Application{ExchangeToken: lookupClient{store: store}}
			}
			r.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
				_, err := app.ExchangeToken.Handle(r.Context(), ports.ExchangeTokenCommand{Client: ports.ClientAuth{ClientID: clientID}})
				if err != nil {
					w.WriteHeader(http.StatusInternalServerError)
					return
				}
				_, _ = io.WriteString(w, `{"token_type":"Bearer"}`)
			}).Methods(http.MethodPost)

			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				r.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/token", nil))
				if w.Code != http.StatusOK {
					b.Fatalf("status %d", w.Code)
				}
			}
		})
	}
}

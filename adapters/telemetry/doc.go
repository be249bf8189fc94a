// Package telemetry adapts oidcproxy to OpenTelemetry: it builds the tracer
// and meter providers from the standard OTEL_* environment variables
// (through the SDK and go.opentelemetry.io/contrib/exporters/autoexport),
// serves the metrics in the Prometheus text format, and instruments the
// service from the outside — otelhttp around the gorilla/mux router's
// routes and the one *http.Client of upstream calls, a hand-written
// equivalent on the gateway's route (where otelhttp cost more than 3 % of
// the throughput), decorators around the use cases (ports.Application)
// and the store (ports.Store), counters for the gateway, and a slog
// handler that stamps trace and span ids on log records.
//
// The core never imports this package: the composition root wraps the
// use cases and the store in decorators, so a use case stays a plain
// function of its ports and telemetry can be switched off by not wrapping.
// Every decorator is one call of the generic observe: a new use case of
// the usual shape is one decorate line in Application, a new store method
// one line in its wrapper.
//
// # What is recorded, and what never is
//
// Spans carry the upstream provider (a resource attribute), the grant type,
// the client id and the OAuth error code. They never carry an authorization
// code, state, PKCE verifier, token, secret, email or subject: request
// queries and bodies are not read, upstream URLs are recorded without their
// query, and use-case error text (which may embed an upstream answer) is
// replaced by the OAuth error code. Server and use-case spans have status
// Error only for failures on our side or our dependencies' (server_error,
// temporarily_unavailable, HTTP 5xx, a broken store), never for a client's
// mistake; upstream client spans follow the HTTP client conventions (a 4xx
// or 5xx answer, or no answer, is Error).
//
// Metric labels take values from small fixed sets (route templates, error
// codes, use-case and store-operation names, a classification of upstream
// endpoints, MCP method names, the configured server address — never the
// Host header), never from client ids, subjects or tool names, so the
// number of series is bounded. The instruments, as exported at /metrics:
//
//	http_server_request_duration_seconds{http_request_method,http_route,http_response_status_code,
//	    url_scheme,server_address,server_port,network_protocol_name,network_protocol_version}
//	http_client_request_duration_seconds{oidcproxy_upstream_endpoint,http_request_method,
//	    http_response_status_code,error_type,server_address,server_port,url_scheme,network_protocol_*}
//	oidcproxy_usecase_duration_seconds{oidcproxy_usecase,oauth_error}
//	oidcproxy_flows_started_total
//	oidcproxy_flows_completed_total
//	oidcproxy_flows_failed_total{oidcproxy_flow_step,oauth_error}
//	oidcproxy_tokens_issued_total
//	oidcproxy_tokens_refreshed_total
//	oidcproxy_tokens_revoked_total
//	oidcproxy_refresh_token_reuse_detected_total
//	oidcproxy_authorization_code_replay_detected_total
//	oidcproxy_store_duration_seconds{db_operation_name,oidcproxy_store_outcome}
//	oidcproxy_store_swept_total
//	oidcproxy_gateway_bytes_total{network_io_direction}
//	oidcproxy_gateway_active_streams
//	oidcproxy_gateway_decisions_total{mcp_method_name,oidcproxy_decision}
//	oidcproxy_gateway_list_entries_hidden_total{mcp_method_name}
//
// plus the Go runtime and process collectors and target_info (the
// resource). The HTTP series are otelhttp's, the gateway's included (its
// body-size histograms are dropped); an upstream failure without an answer
// carries error_type, a 5xx answer its status code.
//
// # Configuration
//
// Traces go to the exporter OTEL_TRACES_EXPORTER names (otlp, console or
// none). Unlike the OpenTelemetry default, an unset OTEL_TRACES_EXPORTER
// means none unless an OTLP endpoint is configured
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT): a
// proxy started without any telemetry settings should not retry exports to
// a collector that is not there. Metrics are always served at /metrics,
// and pushed as well when OTEL_METRICS_EXPORTER names an exporter (otlp,
// console, or prometheus, which serves a second endpoint on
// OTEL_EXPORTER_PROMETHEUS_HOST:PORT). The OTLP protocol comes from
// OTEL_EXPORTER_OTLP_{TRACES,METRICS}_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL
// (grpc, or http/protobuf, the default); the exporters read their other
// settings (headers, TLS, timeout, compression) themselves.
// OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER,
// OTEL_TRACES_SAMPLER_ARG, OTEL_METRICS_EXEMPLAR_FILTER and
// OTEL_SDK_DISABLED are honoured. A malformed value (an unknown exporter,
// protocol or sampler, a ratio outside [0, 1], an endpoint that is not an
// absolute http(s) URL, a resource attribute that is not key=value) fails
// the start.
package telemetry

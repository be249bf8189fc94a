// Package telemetry adapts oidcproxy to OpenTelemetry: it builds the tracer
// and meter providers from the standard OTEL_* environment variables, serves
// the metrics in the Prometheus text format, and instruments the service
// from the outside — an HTTP server middleware for the gorilla/mux router,
// the one *http.Client of upstream calls, decorators around the use cases
// (ports.Application) and the store (ports.Store), counters for the
// gateway, and a slog handler that stamps trace and span ids on log records.
//
// The core never imports this package: the composition root wraps the
// use cases and the store in decorators, so a use case stays a plain
// function of its ports and telemetry can be switched off by not wrapping.
//
// # What is recorded, and what never is
//
// Spans carry the upstream provider (a resource attribute), the grant type,
// the client id and the OAuth error code. They never carry an authorization
// code, state, PKCE verifier, token, secret, email or subject: request
// queries and bodies are not read, upstream URLs are recorded without their
// query, and error text (which may embed an upstream answer) is replaced by
// the OAuth error code. Span status is Error only for failures on our side
// or our dependencies' (server_error, temporarily_unavailable, HTTP 5xx, a
// broken store, an unreachable upstream), never for a client's mistake.
//
// Metric labels take values from small fixed sets (route templates, error
// codes, use-case and store-operation names, a classification of upstream
// endpoints), never from client ids or subjects, so the number of series
// is bounded. The instruments, as exported at /metrics:
//
//	http_server_request_duration_seconds{http_request_method,http_route,http_response_status_code}
//	oidcproxy_usecase_duration_seconds{oidcproxy_usecase,oauth_error}
//	oidcproxy_flows_started_total
//	oidcproxy_flows_completed_total
//	oidcproxy_flows_failed_total{oidcproxy_flow_step,oauth_error}
//	oidcproxy_tokens_issued_total
//	oidcproxy_tokens_refreshed_total
//	oidcproxy_tokens_revoked_total
//	oidcproxy_refresh_token_reuse_detected_total
//	oidcproxy_authorization_code_replay_detected_total
//	oidcproxy_upstream_duration_seconds{oidcproxy_upstream_endpoint,http_response_status_code}
//	oidcproxy_upstream_errors_total{oidcproxy_upstream_endpoint,error_type}
//	oidcproxy_store_duration_seconds{db_operation_name,oidcproxy_store_outcome}
//	oidcproxy_store_swept_total
//	oidcproxy_gateway_bytes_total{network_io_direction}
//	oidcproxy_gateway_active_streams
//
// plus the Go runtime and process collectors and target_info (the
// resource).
//
// # Configuration
//
// Traces go to the exporters named by OTEL_TRACES_EXPORTER (a comma
// separated list of otlp, console and none). Unlike the OpenTelemetry
// default, an unset OTEL_TRACES_EXPORTER means none unless an OTLP endpoint
// is configured (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT): a proxy started without any
// telemetry settings should not retry exports to a collector that is not
// there. The OTLP protocol comes from OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or
// OTEL_EXPORTER_OTLP_PROTOCOL (grpc, http/protobuf — the default — or
// http/json); the exporters read their other settings (headers, TLS,
// timeout, compression) from the environment themselves. OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG
// and OTEL_SDK_DISABLED are honoured. Metrics are pulled at /metrics.
package telemetry

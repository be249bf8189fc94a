package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// The OpenTelemetry environment variables this package reads itself; the
// SDK, autoexport and the exporters read the rest.
const (
	envSDKDisabled        = "OTEL_SDK_DISABLED"
	envResourceAttributes = "OTEL_RESOURCE_ATTRIBUTES"
	envTracesSampler      = "OTEL_TRACES_SAMPLER"
	envTracesSamplerArg   = "OTEL_TRACES_SAMPLER_ARG"
	envEndpoint           = "OTEL_EXPORTER_OTLP_ENDPOINT"
	envTracesEndpoint     = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	envMetricsEndpoint    = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"
)

// sdkDisabled reports whether OTEL_SDK_DISABLED asks for no telemetry.
func sdkDisabled() bool {
	v, err := strconv.ParseBool(strings.TrimSpace(os.Getenv(envSDKDisabled)))
	return err == nil && v
}

// spanExporter builds the exporter OTEL_TRACES_EXPORTER names (otlp,
// console or none), or nil for none. Unlike the specification's default,
// an unset OTEL_TRACES_EXPORTER means none unless an OTLP endpoint is
// configured: a proxy started without any telemetry settings should not
// retry exports to a collector that is not there. With an endpoint, unset
// means otlp, as the specification says.
func spanExporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	var opts []autoexport.SpanOption
	if os.Getenv(envEndpoint) == "" && os.Getenv(envTracesEndpoint) == "" {
		opts = append(opts, autoexport.WithFallbackSpanExporter(func(context.Context) (sdktrace.SpanExporter, error) {
			return nil, nil
		}))
	}
	e, err := autoexport.NewSpanExporter(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER: %w", err)
	}
	if e == nil || autoexport.IsNoneSpanExporter(e) {
		return nil, nil
	}
	return e, nil
}

// metricReader builds the reader OTEL_METRICS_EXPORTER names (otlp,
// console, prometheus or none), or nil. Metrics are always served at
// MetricsHandler, so an unset OTEL_METRICS_EXPORTER pushes them nowhere,
// whatever endpoint is configured.
func metricReader(ctx context.Context) (sdkmetric.Reader, error) {
	r, err := autoexport.NewMetricReader(ctx, autoexport.WithFallbackMetricReader(func(context.Context) (sdkmetric.Reader, error) {
		return nil, nil
	}))
	if err != nil {
		return nil, fmt.Errorf("OTEL_METRICS_EXPORTER: %w", err)
	}
	if r == nil || autoexport.IsNoneMetricReader(r) {
		return nil, nil
	}
	return r, nil
}

// checkEnv refuses the malformed values that the SDK and the exporters
// would only report through the error handler, or silently replace: an
// OTLP endpoint that is not an absolute http(s) URL (the exporters fall
// back to localhost), an unknown sampler or a ratio outside [0, 1] (the
// SDK falls back to sampling everything), and a resource attribute that is
// not key=value or not percent-decodable. A misconfiguration fails the
// start instead.
func checkEnv() error {
	var errs []error
	for _, name := range []string{envEndpoint, envTracesEndpoint, envMetricsEndpoint} {
		if raw := strings.TrimSpace(os.Getenv(name)); raw != "" {
			u, err := url.Parse(raw)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				// The value is not echoed: an endpoint URL may carry
				// credentials.
				errs = append(errs, fmt.Errorf("%s: %w", name, errBadEndpoint))
			}
		}
	}
	switch sampler := strings.ToLower(strings.TrimSpace(os.Getenv(envTracesSampler))); sampler {
	case "", "always_on", "always_off", "parentbased_always_on", "parentbased_always_off":
	case "traceidratio", "parentbased_traceidratio":
		if arg := strings.TrimSpace(os.Getenv(envTracesSamplerArg)); arg != "" {
			if r, err := strconv.ParseFloat(arg, 64); err != nil || r < 0 || r > 1 {
				errs = append(errs, fmt.Errorf("%s: %q is not a ratio between 0 and 1", envTracesSamplerArg, arg))
			}
		}
	default:
		errs = append(errs, fmt.Errorf("%s: unsupported sampler %q", envTracesSampler, sampler))
	}
	if raw := strings.TrimSpace(os.Getenv(envResourceAttributes)); raw != "" {
		for pair := range strings.SplitSeq(raw, ",") {
			k, v, ok := strings.Cut(pair, "=")
			if !ok || strings.TrimSpace(k) == "" {
				errs = append(errs, fmt.Errorf("%s: %q is not key=value", envResourceAttributes, pair))
				continue
			}
			if _, err := url.PathUnescape(strings.TrimSpace(v)); err != nil {
				errs = append(errs, fmt.Errorf("%s: value of %q: %w", envResourceAttributes, strings.TrimSpace(k), err))
			}
		}
	}
	return errors.Join(errs...)
}

// errBadEndpoint does not echo the value: an endpoint URL may carry
// credentials.
var errBadEndpoint = errors.New("not an absolute http or https URL")

package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// The OpenTelemetry environment variables this package reads through
// Options.Getenv.
const (
	envSDKDisabled        = "OTEL_SDK_DISABLED"
	envServiceName        = "OTEL_SERVICE_NAME"
	envResourceAttributes = "OTEL_RESOURCE_ATTRIBUTES"
	envTracesExporter     = "OTEL_TRACES_EXPORTER"
	envTracesSampler      = "OTEL_TRACES_SAMPLER"
	envTracesSamplerArg   = "OTEL_TRACES_SAMPLER_ARG"
	envProtocol           = "OTEL_EXPORTER_OTLP_PROTOCOL"
	envTracesProtocol     = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	envEndpoint           = "OTEL_EXPORTER_OTLP_ENDPOINT"
	envTracesEndpoint     = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
)

// sdkDisabled reports whether OTEL_SDK_DISABLED asks for no telemetry.
func sdkDisabled(getenv func(string) string) bool {
	v, err := strconv.ParseBool(strings.TrimSpace(getenv(envSDKDisabled)))
	return err == nil && v
}

// resourceAttributes parses OTEL_RESOURCE_ATTRIBUTES the way the SDK does
// (comma-separated key=value pairs, values percent-decoded), but refuses a
// malformed value instead of dropping it: configuration errors fail the
// start.
func resourceAttributes(getenv func(string) string) ([]attribute.KeyValue, error) {
	raw := strings.TrimSpace(getenv(envResourceAttributes))
	if raw == "" {
		return nil, nil
	}
	var attrs []attribute.KeyValue
	for pair := range strings.SplitSeq(raw, ",") {
		k, v, ok := strings.Cut(pair, "=")
		key := strings.TrimSpace(k)
		if !ok || key == "" {
			return nil, fmt.Errorf("%s: %q is not key=value", envResourceAttributes, pair)
		}
		val, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("%s: value of %q: %w", envResourceAttributes, key, err)
		}
		attrs = append(attrs, attribute.String(key, val))
	}
	return attrs, nil
}

// sampler builds the sampler from OTEL_TRACES_SAMPLER and its argument. The
// default is the specification's parentbased_always_on.
func sampler(getenv func(string) string) (sdktrace.Sampler, error) {
	name := strings.ToLower(strings.TrimSpace(getenv(envTracesSampler)))
	arg := strings.TrimSpace(getenv(envTracesSamplerArg))
	ratio := func() (float64, error) {
		if arg == "" {
			return 1, nil
		}
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return 0, fmt.Errorf("%s: %q is not a ratio between 0 and 1", envTracesSamplerArg, arg)
		}
		return r, nil
	}
	switch name {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "traceidratio":
		r, err := ratio()
		if err != nil {
			return nil, err
		}
		return sdktrace.TraceIDRatioBased(r), nil
	case "parentbased_traceidratio":
		r, err := ratio()
		if err != nil {
			return nil, err
		}
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(r)), nil
	default:
		return nil, fmt.Errorf("%s: unsupported sampler %q", envTracesSampler, name)
	}
}

// spanExporters builds the exporters OTEL_TRACES_EXPORTER names. Unset
// means otlp when an OTLP endpoint is configured and none otherwise (see
// the package documentation for why this differs from the specification).
func spanExporters(ctx context.Context, getenv func(string) string, console io.Writer) ([]sdktrace.SpanExporter, error) {
	names := strings.TrimSpace(getenv(envTracesExporter))
	if names == "" {
		if getenv(envEndpoint) == "" && getenv(envTracesEndpoint) == "" {
			return nil, nil
		}
		names = "otlp"
	}
	var exporters []sdktrace.SpanExporter
	fail := func(err error) ([]sdktrace.SpanExporter, error) {
		for _, e := range exporters {
			_ = e.Shutdown(ctx)
		}
		return nil, err
	}
	seen := map[string]bool{}
	for name := range strings.SplitSeq(names, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		if seen[name] {
			continue
		}
		seen[name] = true
		switch name {
		case "none":
		case "console":
			e, err := stdouttrace.New(stdouttrace.WithWriter(console))
			if err != nil {
				return fail(fmt.Errorf("console exporter: %w", err))
			}
			exporters = append(exporters, e)
		case "otlp":
			e, err := otlpExporter(ctx, getenv)
			if err != nil {
				return fail(err)
			}
			exporters = append(exporters, e)
		default:
			return fail(fmt.Errorf("%s: unsupported exporter %q (want otlp, console or none)", envTracesExporter, name))
		}
	}
	if seen["none"] && len(seen) > 1 {
		return fail(fmt.Errorf("%s: none cannot be combined with other exporters", envTracesExporter))
	}
	return exporters, nil
}

// otlpExporter builds the OTLP trace exporter for the configured protocol.
// The endpoint is passed explicitly when Getenv supplies one, so that the
// Getenv of Options governs where spans go; every other OTLP setting is
// read by the exporter from the process environment.
func otlpExporter(ctx context.Context, getenv func(string) string) (sdktrace.SpanExporter, error) {
	protocol := strings.TrimSpace(getenv(envTracesProtocol))
	if protocol == "" {
		protocol = strings.TrimSpace(getenv(envProtocol))
	}
	endpoint := strings.TrimSpace(getenv(envTracesEndpoint))
	generic := strings.TrimSpace(getenv(envEndpoint))
	if endpoint != "" {
		if err := checkEndpoint(envTracesEndpoint, endpoint); err != nil {
			return nil, err
		}
	} else if generic != "" {
		if err := checkEndpoint(envEndpoint, generic); err != nil {
			return nil, err
		}
	}
	switch protocol {
	case "grpc":
		var opts []otlptracegrpc.Option
		switch {
		case endpoint != "":
			opts = append(opts, otlptracegrpc.WithEndpointURL(endpoint))
		case generic != "":
			opts = append(opts, otlptracegrpc.WithEndpointURL(generic))
		}
		e, err := otlptracegrpc.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("otlp grpc exporter: %w", err)
		}
		return e, nil
	case "", "http/protobuf", "http/json":
		var opts []otlptracehttp.Option
		switch {
		case endpoint != "":
			opts = append(opts, otlptracehttp.WithEndpointURL(endpoint))
		case generic != "":
			// The generic endpoint is a base URL: the specification has
			// each signal append its own path.
			opts = append(opts, otlptracehttp.WithEndpointURL(strings.TrimSuffix(generic, "/")+"/v1/traces"))
		}
		if protocol == "http/json" {
			opts = append(opts, otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON))
		}
		e, err := otlptracehttp.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("otlp http exporter: %w", err)
		}
		return e, nil
	default:
		return nil, fmt.Errorf("%s: unsupported protocol %q (want grpc, http/protobuf or http/json)", envProtocol, protocol)
	}
}

// checkEndpoint refuses an endpoint that is not an absolute http(s) URL:
// the exporters would silently fall back to localhost otherwise.
func checkEndpoint(name, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s: %w", name, errBadEndpoint)
	}
	return nil
}

// errBadEndpoint does not echo the value: an endpoint URL may carry
// credentials.
var errBadEndpoint = errors.New("not an absolute http or https URL")

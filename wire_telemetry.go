package oidcproxy

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/google/wire"

	"github.com/oidcproxy/oidcproxy/adapters/config"
	"github.com/oidcproxy/oidcproxy/adapters/telemetry"
	"github.com/oidcproxy/oidcproxy/ports"
)

// telemetrySet opens the tracer and meter providers and provides the two
// shared things they instrument: the process logger and the one upstream
// HTTP client. Telemetry observes the store and the use cases too.
var telemetrySet = wire.NewSet(
	ProvideTelemetry,
	ProvideLogger,
	ProvideHTTPClient,
	wire.Bind(new(Observer), new(*telemetry.Telemetry)),
)

// Observer wraps the store and the use cases in spans and metrics: the
// server's telemetry; the commands that work on a store directly observe
// nothing (unobserved).
type Observer interface {
	Store(ports.Store) ports.Store
	Application(ports.Application) ports.Application
	Admin(ports.Admin) ports.Admin
}

var _ Observer = (*telemetry.Telemetry)(nil)

// unobserved is the Observer of the command-line tools: they run once and
// export nothing.
type unobserved struct{}

func (unobserved) Store(s ports.Store) ports.Store                   { return s }
func (unobserved) Application(a ports.Application) ports.Application { return a }
func (unobserved) Admin(a ports.Admin) ports.Admin                   { return a }

// LogOutput is where the process logs go (standard error in production, a
// buffer in tests).
type LogOutput io.Writer

// ProvideLogOutput is standard error.
func ProvideLogOutput() LogOutput { return stderr }

// ProvideTelemetryOptions are production's: the OTEL_* variables of the
// process choose the exporters.
func ProvideTelemetryOptions(cfg config.Config) telemetry.Options {
	return telemetry.Options{Provider: cfg.Provider}
}

// ProvideTelemetry opens the tracer and meter providers, filling in from
// the configuration what opts (a test's exporters, or production's
// nothing) leaves unset; the cleanup flushes pending spans.
func ProvideTelemetry(ctx context.Context, cfg config.Config, opts telemetry.Options) (*telemetry.Telemetry, func(), error) {
	if opts.Provider == "" {
		opts.Provider = cfg.Provider
	}
	if opts.ServiceVersion == "" {
		opts.ServiceVersion = Version()
	}
	if opts.BaseURL == "" {
		opts.BaseURL = cfg.BaseURL
	}
	opts.PublicEndpoint = opts.PublicEndpoint || cfg.TelemetryPublicEndpoint
	return telemetry.Open(ctx, opts)
}

// ProvideLogger builds the process logger from LOG_LEVEL and LOG_FORMAT,
// adding trace and span ids to every record logged inside a request.
func ProvideLogger(cfg config.Config, out LogOutput, tel *telemetry.Telemetry) *slog.Logger {
	base := NewLogger(cfg, out)
	return slog.New(tel.LogHandler(base.Handler()))
}

// NewLogger builds a logger writing to w (standard error when nil).
func NewLogger(cfg config.Config, w io.Writer) *slog.Logger {
	if w == nil {
		w = stderr
	}
	opts := &slog.HandlerOptions{Level: cfg.Level()}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// ProvideHTTPClient is the one *http.Client every upstream call goes
// through: bounded by TIMEOUT_SECONDS, traced and measured.
func ProvideHTTPClient(cfg config.Config, tel *telemetry.Telemetry) *http.Client {
	return tel.HTTPClient(NewUpstreamClient(cfg))
}

// NewUpstreamClient is the uninstrumented upstream client (for `check`).
func NewUpstreamClient(cfg config.Config) *http.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DialContext = (&net.Dialer{Timeout: cfg.Timeout(), KeepAlive: 30 * time.Second}).DialContext
	transport.TLSHandshakeTimeout = cfg.Timeout()
	transport.ResponseHeaderTimeout = cfg.Timeout()
	transport.MaxIdleConnsPerHost = 16
	return &http.Client{
		Transport: transport,
		Timeout:   cfg.Timeout(),
		// The upstream IdP's endpoints answer directly; following redirects
		// would let a compromised endpoint bounce our requests elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

package oidcproxy

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/wire"

	"github.com/oidcproxy/oidcproxy/adapters/assertion"
	"github.com/oidcproxy/oidcproxy/adapters/boltstore"
	"github.com/oidcproxy/oidcproxy/adapters/cimd"
	"github.com/oidcproxy/oidcproxy/adapters/config"
	"github.com/oidcproxy/oidcproxy/adapters/gateway"
	"github.com/oidcproxy/oidcproxy/adapters/httpapi"
	"github.com/oidcproxy/oidcproxy/adapters/memstore"
	"github.com/oidcproxy/oidcproxy/adapters/pgstore"
	"github.com/oidcproxy/oidcproxy/adapters/policyfile"
	"github.com/oidcproxy/oidcproxy/adapters/seal"
	"github.com/oidcproxy/oidcproxy/adapters/telemetry"
	"github.com/oidcproxy/oidcproxy/adapters/tokens"
	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/domain/policy"
	"github.com/oidcproxy/oidcproxy/domain/usecase"
	"github.com/oidcproxy/oidcproxy/internal/clientip"
	"github.com/oidcproxy/oidcproxy/internal/ratelimit"
	"github.com/oidcproxy/oidcproxy/ports"
	"github.com/oidcproxy/oidcproxy/providers"
	"github.com/oidcproxy/oidcproxy/providers/oidc"
)

// MemoryStorePath selects the in-memory store instead of a bbolt file
// (development and tests only: everything is lost on exit).
const MemoryStorePath = ":memory:"

// MasterKey is OIDC_PROXY_ENCRYPTION_KEY (or the key file's content): the
// root from which the sealing and cookie keys are derived.
type MasterKey []byte

// CookieKey signs the browser cookies; derived from the master key under
// its own label so that it never equals the sealing key.
type CookieKey []byte

// RawStore is the store as opened, before the telemetry decorator: the App
// keeps it for what only the concrete store can do (backup).
type RawStore interface{ ports.Store }

// LogOutput is where the process logs go (standard error in production, a
// buffer in tests).
type LogOutput io.Writer

// CIMDRootCAs are the roots that client metadata document servers'
// certificates are verified against: the system roots in production (a nil
// Pool); tests pass the pool of their httptest TLS server, so https stays
// mandatory even there.
type CIMDRootCAs struct{ Pool *x509.CertPool }

// coreSet builds everything but the clock, the logger and the store, which
// production, tests and benchmarks supply differently.
var coreSet = wire.NewSet(
	ProvideTelemetry,
	ProvideLogger,
	ProvideObservedStore,
	ProvideHTTPClient,
	ProvideMasterKey,
	ProvideSealer,
	wire.Bind(new(ports.Sealer), new(*seal.Sealer)),
	ProvideCookieKey,
	ProvideTokenIssuer,
	wire.Bind(new(ports.TokenIssuer), new(*tokens.Issuer)),
	wire.Bind(new(ports.KeyManager), new(*tokens.Issuer)),
	ProvidePolicy,
	wire.Bind(new(ports.PolicySource), new(*policyfile.Source)),
	ProvideIdentityProvider,
	ProvideSettings,
	ProvideCIMDFetcher,
	ProvideMetadataFetcher,
	ProvideClientIP,
	ProvideLimiters,
	ProvideJWKSFetcher,
	ProvideIssuerKeys,
	wire.Value(CryptoRandom{}),
	wire.Bind(new(ports.Random), new(CryptoRandom)),
	ProvideApplication,
	ProvideAdmin,
	ProvideHTTPAPI,
	ProvideGateway,
	NewApp,
)

// productionSet adds the store from STORE_PATH, the wall clock, standard
// error and telemetry from the OTEL_* environment.
var productionSet = wire.NewSet(
	coreSet,
	ProvideStore,
	wire.Value(SystemClock{}),
	wire.Bind(new(ports.Clock), new(SystemClock)),
	ProvideLogOutput,
	ProvideTelemetryOptions,
	wire.Value(CIMDRootCAs{}),
)

// ProvideLogOutput is standard error.
func ProvideLogOutput() LogOutput { return stderr }

// ProvideTelemetryOptions are production's: the OTEL_* variables of the
// process choose the exporters.
func ProvideTelemetryOptions(cfg config.Config) telemetry.Options {
	return telemetry.Options{Provider: cfg.Provider}
}

// ProvideTelemetry opens the tracer and meter providers; the cleanup
// flushes pending spans.
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

// ProvideObservedStore wraps the store in store spans and latency metrics.
func ProvideObservedStore(raw RawStore, tel *telemetry.Telemetry) ports.Store {
	return tel.Store(raw)
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

// ProvideStore opens the store: the PostgreSQL database at DATABASE_URL
// (migrated to this binary's schema), else the bbolt file at STORE_PATH,
// or memory. On PostgreSQL the store listens for the other instances'
// changes, caches grants and clients, and reports the listening
// connection's losses to the log and the metrics.
func ProvideStore(ctx context.Context, cfg config.Config, logger *slog.Logger, tel *telemetry.Telemetry) (RawStore, func(), error) {
	if cfg.DatabaseURL != "" {
		listener := tel.StoreListener()
		s, err := pgstore.Open(ctx, pgstore.Options{
			URL: cfg.DatabaseURL, MaxConns: cfg.DatabaseMaxConns, Timeout: cfg.DatabaseTimeout,
			Listen: true,
			Logger: logger,
			Events: pgstore.ListenerEvents{Disconnected: listener.Disconnected, Reconnected: listener.Reconnected},
		})
		if err != nil {
			return nil, nil, err
		}
		return s, s.Close, nil
	}
	if cfg.StorePath == MemoryStorePath {
		return memstore.New(), func() {}, nil
	}
	s, err := boltstore.Open(boltstore.Options{Path: cfg.StorePath})
	if err != nil {
		return nil, nil, err
	}
	return s, func() { _ = s.Close() }, nil
}

// ProvideMasterKey reads OIDC_PROXY_ENCRYPTION_KEY or, when unset, a key
// file next to the store (created on first start, with a warning: a key on
// the same disk as the data it protects only guards against leaked backups
// of the store alone).
func ProvideMasterKey(cfg config.Config, logger *slog.Logger) (MasterKey, error) {
	if cfg.DatabaseURL != "" && cfg.EncryptionKey == "" {
		// Validate refuses this too; a key file here would differ per instance.
		return nil, errors.New("OIDC_PROXY_ENCRYPTION_KEY is required with OIDC_PROXY_DATABASE_URL")
	}
	if cfg.EncryptionKey != "" {
		key, err := cfg.EncryptionKeyBytes()
		if err != nil {
			return nil, err
		}
		return key, nil
	}
	path := cfg.StorePath + ".key"
	if cfg.StorePath == MemoryStorePath {
		// Nothing persists, so an ephemeral key is right.
		key := make([]byte, seal.KeySize)
		_, _ = rand.Read(key)
		return key, nil
	}
	key, created, err := seal.LoadOrCreateKeyFile(path)
	if err != nil {
		return nil, err
	}
	if created {
		logger.Warn("OIDC_PROXY_ENCRYPTION_KEY is not set; created a key file next to the store. Set the variable from a secret store in production.",
			"key_file", filepath.Clean(path))
	}
	return key, nil
}

// ProvideSealer derives the sealing key and builds the AES-256-GCM sealer.
func ProvideSealer(master MasterKey) (*seal.Sealer, error) {
	key, err := seal.DeriveKey(master, seal.LabelSeal)
	if err != nil {
		return nil, err
	}
	return seal.New(key)
}

// ProvideCookieKey derives the cookie signing key.
func ProvideCookieKey(master MasterKey) (CookieKey, error) {
	key, err := seal.DeriveKey(master, seal.LabelCookie)
	if err != nil {
		return nil, err
	}
	return key, nil
}

// ProvideTokenIssuer loads (or creates) the signing key ring.
func ProvideTokenIssuer(ctx context.Context, store ports.Store, sealer ports.Sealer, clock ports.Clock) (*tokens.Issuer, error) {
	return tokens.Open(ctx, store, sealer, clock)
}

// ProviderSettings maps the configuration onto the settings every provider
// shares; a provider's own settings are its section,
// cfg.ProviderSection().
func ProviderSettings(cfg config.Config) oidc.Settings {
	return oidc.Settings{
		ConfigURL:               cfg.ConfigURL,
		ClientID:                cfg.ClientID,
		ClientSecret:            cfg.ClientSecret,
		RedirectURL:             cfg.RedirectURL(),
		Strict:                  cfg.Strict,
		Audience:                cfg.Audience,
		Timeout:                 cfg.Timeout(),
		Algorithm:               cfg.Algorithm,
		RequiredScopes:          cfg.RequiredScopes,
		TokenEndpointAuthMethod: string(cfg.TokenEndpointAuthMethod),
		ExtraAuthorizeParams:    cfg.ExtraAuthorizeParams,
		ExtraTokenParams:        cfg.ExtraTokenParams,
		ForwardResource:         cfg.ForwardResource,
		UserinfoClaims:          cfg.UserinfoClaims,
	}
}

// ProviderSections hands the configuration loader every registered
// provider's own settings section, so that it fills them from flags,
// environment and file like every other setting without importing the
// providers.
func ProviderSections() config.Sections {
	out := make(config.Sections, len(providers.Registry))
	for name, newConfig := range providers.Registry {
		out[name] = func() any { return newConfig() }
	}
	return out
}

// ValidateProvider checks the selected provider's own section together
// with the settings every provider shares, reporting each problem under
// its setting (config.ValidateOptions.Provider).
func ValidateProvider(cfg config.Config) error {
	section, err := providerSection(cfg)
	if err != nil {
		return err
	}
	var errs []error
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *oidc.SettingError:
			errs = append(errs, &config.SettingError{Setting: config.EnvPrefix + e.Setting, Problem: e.Problem})
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		default:
			errs = append(errs, err) // the configuration reports it under PROVIDER
		}
	}
	walk(section.Validate(ProviderSettings(cfg)))
	return errors.Join(errs...)
}

// providerSection returns the selected provider's section as Load filled
// it, or a new, empty one when the configuration was built without
// sections.
func providerSection(cfg config.Config) (providers.Config, error) {
	if section, ok := cfg.ProviderSection().(providers.Config); ok {
		return section, nil
	}
	return providers.NewConfig(cfg.Provider)
}

// ProvideIdentityProvider builds the configured upstream provider; it
// fetches discovery now, so a broken upstream fails the start. It keeps
// the claims the access policy in force reads groups from.
func ProvideIdentityProvider(ctx context.Context, cfg config.Config, client *http.Client, policies ports.PolicySource) (ports.IdentityProvider, error) {
	section, err := providerSection(cfg)
	if err != nil {
		return nil, err
	}
	s := ProviderSettings(cfg)
	s.Policy = policies
	return providers.Open(ctx, cfg.Provider, section, s, client)
}

// ProvidePolicy loads the access policy file (POLICY_FILE); without one
// the source holds no policy and everyone the IdP signs in is admitted.
// An invalid file fails the start with every problem listed. It logs what
// the policy holds (counts only: the entries name people) and warns when
// a public identity provider would admit anyone with an account there.
func ProvidePolicy(cfg config.Config, logger *slog.Logger) (*policyfile.Source, error) {
	src, err := policyfile.Load(cfg.PolicyFile)
	if err != nil {
		return nil, err
	}
	if cfg.PolicyFile != "" {
		logger.Info("access policy loaded", PolicyAttrs(src.Summary())...)
	}
	if w := AdmissionWarning(cfg, src.Policy()); w != "" {
		logger.Warn(w)
	}
	return src, nil
}

// PolicyAttrs are the log attributes describing a loaded policy.
func PolicyAttrs(s policyfile.Summary) []any {
	return []any{
		"policy_file", s.Path, "admission", s.Admission, "emails", s.Emails, "domains", s.Domains,
		"subjects", s.Subjects, "groups", s.Groups, "machine_clients", s.MachineClients,
		"group_claims", strings.Join(s.GroupClaims, ", "), "authorization", s.Authorization, "rules", s.Rules,
		"default_deny", s.DefaultDeny, "expressions", s.Expressions,
	}
}

// AdmissionWarning says, for `oidcproxy check` and the start-up log, that
// everyone with an account at a public identity provider can sign in:
// the provider is one (Google without a hosted domain, an Entra common,
// organizations or consumers authority) and p does not restrict
// admission. It returns "" otherwise.
func AdmissionWarning(cfg config.Config, p *policy.Policy) string {
	if p.RestrictsAdmission() {
		return ""
	}
	section, err := providerSection(cfg)
	if err != nil {
		return ""
	}
	who := providers.OpenToEveryone(section, ProviderSettings(cfg))
	if who == "" {
		return ""
	}
	reason := "no access policy file is configured"
	if cfg.PolicyFile != "" {
		reason = "the access policy has no admission section"
	}
	return fmt.Sprintf("provider %s signs in %s, and %s: every such account can get tokens for this MCP server. "+
		"Restrict who may sign in with an admission section in OIDC_PROXY_POLICY_FILE (see docs/policy.md)", cfg.Provider, who, reason)
}

// ProvideSettings maps the configuration onto the use-case policy.
func ProvideSettings(cfg config.Config) (usecase.Settings, error) {
	patterns, err := cfg.RedirectPatterns()
	if err != nil {
		return usecase.Settings{}, err
	}
	resource, err := domain.CanonicalResource(cfg.Resource())
	if err != nil {
		return usecase.Settings{}, fmt.Errorf("resource %q: %w", cfg.Resource(), err)
	}
	return usecase.Settings{
		Issuer:            cfg.Issuer(),
		Resource:          resource,
		SupportedScopes:   cfg.SupportedScopes(),
		RequiredScopes:    cfg.RequiredScopes,
		AccessTokenTTL:    cfg.AccessTokenTTL,
		RefreshTokenTTL:   cfg.RefreshTokenTTL,
		RefreshReuseGrace: cfg.RefreshReuseGrace,
		Consent:           cfg.Consent,
		RedirectPatterns:  patterns,
		ForwardResource:   cfg.ForwardResource,

		ClientIDURLAllowIPLiteral: cfg.CIMDAllowPrivateNetwork,

		IntrospectionSecret: cfg.IntrospectionSecret,

		MaxClients:      cfg.MaxClients,
		UnusedClientTTL: cfg.UnusedClientTTL,

		TokenEndpoint:       httpapi.TokenEndpoint(cfg.BaseURL),
		TrustedIDJAGIssuers: cfg.TrustedIDJAGIssuers,
		IDJAGClients:        cfg.IDJAGClients,
	}, nil
}

// ProvideCIMDFetcher builds the guarded fetcher of client metadata
// documents and of clients' jwks_uri key sets. Its cache runs on the
// proxy's clock; it cuts TIMEOUT_SECONDS to its own bound
// (cimd.MaxTimeout).
//
// Every request that would start a metadata document fetch counts against
// RATE_LIMIT_CIMD for its client address (which the HTTP API put in the
// request's context), besides the fetcher's own per-host limits.
func ProvideCIMDFetcher(cfg config.Config, clock ports.Clock, roots CIMDRootCAs, limits Limiters) (*cimd.Fetcher, error) {
	var admit func(context.Context) error
	if perAddress := limits.CIMD; perAddress != nil {
		admit = func(ctx context.Context) error {
			addr, _ := clientip.FromContext(ctx) // none: counted with every other unknown address
			if ok, wait := perAddress.Allow(addr); !ok {
				return &ratelimit.Exceeded{RetryAfter: wait}
			}
			return nil
		}
	}
	return cimd.New(cimd.Options{
		AllowPrivateNetwork: cfg.CIMDAllowPrivateNetwork,
		Timeout:             cfg.Timeout(),
		RootCAs:             roots.Pool,
		Now:                 clock.Now,
		AdmitFetch:          admit,
	})
}

// ProvideMetadataFetcher is the client ID metadata document fetcher, or
// nil when CIMD_ENABLED is off (URL client_ids are then unknown clients).
func ProvideMetadataFetcher(cfg config.Config, f *cimd.Fetcher) ports.MetadataFetcher {
	if !cfg.CIMDEnabled {
		return nil // an untyped nil: a nil *cimd.Fetcher would be a non-nil interface
	}
	return f
}

// ProvideJWKSFetcher fetches the key sets of private_key_jwt clients that
// registered a jwks_uri, behind the same guards as client metadata
// documents (a client chooses the URL).
func ProvideJWKSFetcher(f *cimd.Fetcher) ports.JWKSFetcher { return f }

// ProvideIssuerKeys is the key source of the trusted ID-JAG issuers, or
// nil when TRUSTED_ID_JAG_ISSUERS is empty. It fetches with the upstream
// client: the operator chose these IdPs, as it chose the upstream one.
func ProvideIssuerKeys(cfg config.Config, client *http.Client, clock ports.Clock) (ports.IssuerKeys, error) {
	if len(cfg.TrustedIDJAGIssuers) == 0 {
		return nil, nil
	}
	keys, err := assertion.NewIssuers(assertion.IssuerOptions{Issuers: cfg.TrustedIDJAGIssuers, Client: client, Now: clock.Now})
	if err != nil {
		return nil, err
	}
	return keys, nil
}

// ProvideApplication builds the use cases, each wrapped in a span, with
// private_key_jwt on (the assertion verifier, clients' jwks_uri fetched
// by jwks) and the jwt-bearer grant when its issuers are configured.
func ProvideApplication(store ports.Store, provider ports.IdentityProvider, issuer ports.TokenIssuer,
	sealer ports.Sealer, clock ports.Clock, random ports.Random, settings usecase.Settings, logger *slog.Logger,
	tel *telemetry.Telemetry, metadata ports.MetadataFetcher, policies ports.PolicySource, jwks ports.JWKSFetcher, issuerKeys ports.IssuerKeys,
) (ports.Application, error) {
	opts := []usecase.Option{usecase.WithClientAssertions(assertion.Verifier{}, jwks)}
	if issuerKeys != nil {
		opts = append(opts, usecase.WithIDJAG(issuerKeys))
	}
	app, err := usecase.NewApplication(store, provider, issuer, sealer, clock, random, metadata, policies, logger, settings, opts...)
	if err != nil {
		return ports.Application{}, err
	}
	return tel.Application(app), nil
}

// ProvideHTTPAPI builds the authorization server's HTTP API.
func ProvideHTTPAPI(cfg config.Config, app ports.Application, issuer ports.TokenIssuer, store ports.Store,
	provider ports.IdentityProvider, cookieKey CookieKey, settings usecase.Settings, logger *slog.Logger,
	tel *telemetry.Telemetry, gw *gateway.Gateway, clientIP *clientip.Resolver, limits Limiters,
) (*httpapi.Server, error) {
	var mcp http.Handler
	if gw != nil {
		mcp = gw // a nil *Gateway must not become a non-nil http.Handler
	}
	checks := []httpapi.Check{{Name: "store", Run: store.Ping}}
	if rc, ok := provider.(ports.ReadinessChecker); ok {
		checks = append(checks, httpapi.Check{Name: "upstream", Run: rc.Ready})
	}
	return httpapi.New(app, issuer, logger, httpapi.Options{
		Issuer:            settings.Issuer,
		BaseURL:           cfg.BaseURL,
		CallbackPath:      cfg.RedirectPath,
		Resource:          settings.Resource,
		MCPPath:           cfg.MCPPath,
		ScopesSupported:   settings.SupportedScopes,
		CIMD:              cfg.CIMDEnabled,
		PrivateKeyJWT:     true,
		CookieKey:         cookieKey,
		Consent:           cfg.Consent,
		ReadyTimeout:      cfg.Timeout(),
		BodyTimeout:       cfg.RequestBodyTimeout,
		Checks:            checks,
		Middleware:        []func(http.Handler) http.Handler{tel.ServerMiddleware()},
		Gateway:           mcp,
		GatewayMiddleware: []func(http.Handler) http.Handler{tel.RouteMiddleware(cfg.MCPPath)},
		ClientIP:          clientIP,
		Limits: httpapi.Limits{
			Register:   limits.Register,
			Authorize:  limits.Authorize,
			Consent:    limits.Consent,
			Callback:   limits.Callback,
			Token:      limits.Token,
			Revoke:     limits.Revoke,
			Introspect: limits.Introspect,
			Refused:    tel.RateLimitRefused(),
		},
	})
}

// ProvideGateway builds the MCP gateway when MCP_UPSTREAM is set (nil
// otherwise): bearer checks through the VerifyAccessToken use case, the
// access policy applied to every JSON-RPC request and list answer, our
// trace context injected into backend requests, streams, bytes and policy
// decisions counted.
func ProvideGateway(cfg config.Config, app ports.Application, settings usecase.Settings,
	logger *slog.Logger, tel *telemetry.Telemetry, clientIP *clientip.Resolver, limits Limiters, policy ports.PolicySource,
) (*gateway.Gateway, func(), error) {
	if cfg.MCPUpstream == "" {
		return nil, func() {}, nil
	}
	upstream, err := url.Parse(cfg.MCPUpstream)
	if err != nil {
		return nil, nil, fmt.Errorf("MCP_UPSTREAM: %w", err)
	}
	metrics := tel.Gateway()
	prop := tel.Propagator()
	gw, err := gateway.New(app.VerifyAccessToken, logger, gateway.Options{
		Upstream:            upstream,
		MountPath:           cfg.MCPPath,
		Resource:            settings.Resource,
		ResourceMetadataURL: httpapi.ResourceMetadataURL(cfg.BaseURL, cfg.MCPPath),
		RequiredScopes:      cfg.RequiredScopes,
		AllowedOrigins:      cfg.GatewayOrigins(),
		UserHeader:          cfg.UserHeader,
		EmailHeader:         cfg.EmailHeader,
		ClientHeader:        cfg.ClientHeader,
		UpstreamTokenHeader: cfg.UpstreamTokenHeader,
		MaxBodyBytes:        int64(cfg.MaxBodyBytes),
		BodyTimeout:         cfg.GatewayBodyTimeout,
		BackendIdleTimeout:  cfg.MCPUpstreamIdleTimeout,
		InjectTrace: func(ctx context.Context, h http.Header) {
			prop.Inject(ctx, telemetry.HeaderCarrier(h))
		},
		Observe: gateway.Observer{
			BytesIn:      metrics.BytesIn,
			BytesOut:     metrics.BytesOut,
			StreamOpened: metrics.StreamOpened,
			StreamClosed: metrics.StreamClosed,
			Decided:      metrics.Decided,
			Hidden:       metrics.Hidden,
		},
		SubjectLimit: limits.Gateway,
		LimitRefused: tel.RateLimitRefused(),
		ClientIP:     clientIP,
		Policy:       policy,
	})
	if err != nil {
		return nil, nil, err
	}
	return gw, gw.Close, nil
}

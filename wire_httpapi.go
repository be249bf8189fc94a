package oidcproxy

import (
	"net/http"

	"github.com/google/wire"

	"github.com/oidcproxy/oidcproxy/adapters/config"
	"github.com/oidcproxy/oidcproxy/adapters/gateway"
	"github.com/oidcproxy/oidcproxy/adapters/httpapi"
	"github.com/oidcproxy/oidcproxy/adapters/seal"
	"github.com/oidcproxy/oidcproxy/adapters/telemetry"
	"github.com/oidcproxy/oidcproxy/domain/usecase"
	"github.com/oidcproxy/oidcproxy/internal/clientip"
	"github.com/oidcproxy/oidcproxy/ports"
)

// httpAPISet builds the authorization server's HTTP API, which also
// mounts the gateway.
var httpAPISet = wire.NewSet(httpapi.ProviderSet, ProvideHTTPAPIOptions)

// ProvideHTTPAPIOptions maps the configuration and the other parts onto
// the HTTP API's options: readiness checks of the store and, when it can
// tell, the upstream; server spans around every route and the gateway;
// the rate limits of each endpoint.
func ProvideHTTPAPIOptions(cfg config.Config, store ports.Store, provider ports.IdentityProvider,
	cookieKey seal.CookieKey, settings usecase.Settings, tel *telemetry.Telemetry, gw *gateway.Gateway,
	clientIP *clientip.Resolver, limits Limiters,
) httpapi.Options {
	var mcp http.Handler
	if gw != nil {
		mcp = gw // a nil *Gateway must not become a non-nil http.Handler
	}
	checks := []httpapi.Check{{Name: "store", Run: store.Ping}}
	if rc, ok := provider.(ports.ReadinessChecker); ok {
		checks = append(checks, httpapi.Check{Name: "upstream", Run: rc.Ready})
	}
	return httpapi.Options{
		Issuer:       settings.Issuer,
		BaseURL:      cfg.BaseURL,
		CallbackPath: cfg.RedirectPath,
		Resource:     settings.Resource,
		MCPPath:      cfg.MCPPath,
		// The metadata lists what the use cases accept.
		ScopesSupported: settings.SupportedScopes,
		CIMD:            cfg.CIMDEnabled,
		// ProvideApplication always wires the assertion verifier.
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
	}
}

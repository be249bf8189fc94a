package oidcproxy

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/google/wire"

	"github.com/oidcproxy/oidcproxy/adapters/config"
	"github.com/oidcproxy/oidcproxy/adapters/gateway"
	"github.com/oidcproxy/oidcproxy/adapters/httpapi"
	"github.com/oidcproxy/oidcproxy/adapters/telemetry"
	"github.com/oidcproxy/oidcproxy/domain/usecase"
	"github.com/oidcproxy/oidcproxy/internal/clientip"
	"github.com/oidcproxy/oidcproxy/ports"
)

// gatewaySet builds the MCP gateway, which exists only when MCP_UPSTREAM
// is set. A Wire graph has no conditions, so ProvideGateway decides and
// calls gateway.New itself, rather than the gateway package offering a
// provider set.
var gatewaySet = wire.NewSet(ProvideGateway)

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

package telemetry

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/oidcproxy/oidcproxy/domain"
)

// Attribute keys of our own; the HTTP, URL, server and database keys come
// from the semantic conventions.
const (
	keyProvider        = attribute.Key("oidcproxy.provider")
	keyUseCase         = attribute.Key("oidcproxy.usecase")
	keyFlowStep        = attribute.Key("oidcproxy.flow.step")
	keyEndpoint        = attribute.Key("oidcproxy.upstream.endpoint")
	keyStoreOutcome    = attribute.Key("oidcproxy.store.outcome")
	keySwept           = attribute.Key("oidcproxy.store.swept")
	keyGrantType       = attribute.Key("oauth.grant_type")
	keyClientID        = attribute.Key("oauth.client_id")
	keyError           = attribute.Key("oauth.error")
	keyConsentApproved = attribute.Key("oauth.consent.approved")
	keyTokenActive     = attribute.Key("oauth.token.active")
	keyListenerEvent   = attribute.Key("oidcproxy.store.listener.event")
)

// knownCodes are the error codes that may become a metric label; anything
// else is counted as "other" so that the label stays bounded whatever a
// future use case puts in a domain.Error.
var knownCodes = []domain.ErrorCode{
	domain.CodeInvalidRequest, domain.CodeInvalidClient, domain.CodeInvalidGrant,
	domain.CodeUnauthorizedClient, domain.CodeUnsupportedGrantType, domain.CodeUnsupportedResponseType,
	domain.CodeInvalidScope, domain.CodeAccessDenied, domain.CodeServerError,
	domain.CodeTemporarilyUnavailable, domain.CodeInvalidRedirectURI, domain.CodeInvalidClientMetadata,
	domain.CodeInvalidTarget, domain.CodeInvalidToken, domain.CodeInsufficientScope,
	domain.CodeUnsupportedTokenType,
}

// otherCode labels an error code outside knownCodes.
const otherCode = "other"

// boundedCode maps an error code onto the fixed label set.
func boundedCode(c domain.ErrorCode) string {
	for _, k := range knownCodes {
		if c == k {
			return string(c)
		}
	}
	return otherCode
}

// serverSide reports whether an OAuth error code is our failure rather
// than the client's: only these set span status Error.
func serverSide(c domain.ErrorCode) bool {
	return c == domain.CodeServerError || c == domain.CodeTemporarilyUnavailable
}

// Histogram boundaries in seconds. Use cases follow the HTTP semantic
// conventions' request buckets (otelhttp uses the same for requests and
// upstream calls); store operations are much faster (an in-memory map, or
// a bbolt transaction with an fsync).
var (
	httpBuckets  = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}
	storeBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}
)

// instruments are oidcproxy's own metric instruments, created once. The
// HTTP server and client instruments are otelhttp's.
type instruments struct {
	useCaseDuration metric.Float64Histogram

	flowsStarted   metric.Int64Counter
	flowsCompleted metric.Int64Counter
	flowsFailed    metric.Int64Counter

	tokensIssued    metric.Int64Counter
	tokensRefreshed metric.Int64Counter
	tokensRevoked   metric.Int64Counter
	refreshReuse    metric.Int64Counter
	codeReplay      metric.Int64Counter

	storeDuration metric.Float64Histogram
	storeSwept    metric.Int64Counter

	rateLimited metric.Int64Counter

	gatewayBytesIn  atomic.Int64
	gatewayBytesOut atomic.Int64
	gatewayStreams  metric.Int64UpDownCounter

	listenerEvents    metric.Int64Counter
	listenerConnected metric.Int64UpDownCounter
	policy            policyCounters
}

func newInstruments(m metric.Meter) (*instruments, error) {
	var errs []error
	hist := func(name, desc string, buckets []float64) metric.Float64Histogram {
		h, err := m.Float64Histogram(name, metric.WithDescription(desc), metric.WithUnit("s"),
			metric.WithExplicitBucketBoundaries(buckets...))
		errs = append(errs, err)
		return h
	}
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithDescription(desc), metric.WithUnit(unit))
		errs = append(errs, err)
		return c
	}
	in := &instruments{
		useCaseDuration: hist("oidcproxy.usecase.duration",
			"Duration of use-case calls, by use case and OAuth error code (absent on success).", httpBuckets),
		flowsStarted: counter("oidcproxy.flows.started", "{flow}",
			"Authorization flows started (an authorization request accepted)."),
		flowsCompleted: counter("oidcproxy.flows.completed", "{flow}",
			"Authorization flows completed (the authorization code exchanged for tokens)."),
		flowsFailed: counter("oidcproxy.flows.failed", "{flow}",
			"Authorization flow steps that failed, by step and OAuth error code."),
		tokensIssued: counter("oidcproxy.tokens.issued", "{token}",
			"Token responses to the authorization_code grant."),
		tokensRefreshed: counter("oidcproxy.tokens.refreshed", "{token}",
			"Token responses to the refresh_token grant."),
		tokensRevoked: counter("oidcproxy.tokens.revoked", "{token}",
			"Revocation requests accepted."),
		refreshReuse: counter("oidcproxy.refresh_token.reuse_detected", "{event}",
			"Rotated refresh tokens presented again; each revoked its grant."),
		codeReplay: counter("oidcproxy.authorization_code.replay_detected", "{event}",
			"Redeemed authorization codes presented again."),
		storeDuration: hist("oidcproxy.store.duration",
			"Duration of store operations, by operation and outcome.", storeBuckets),
		storeSwept: counter("oidcproxy.store.swept", "{record}",
			"Expired records removed by the sweeper."),
		rateLimited: counter("oidcproxy.ratelimit.refused", "{request}",
			"Requests refused with 429 by a rate limit, by limit."),
	}
	// The byte totals are plain atomic adds on the request path, read by
	// the SDK only at collection: a synchronous counter cost the gateway
	// ~4 µs per request.
	_, err := m.Int64ObservableCounter("oidcproxy.gateway.bytes",
		metric.WithDescription("Bytes proxied by the gateway: receive = client to backend, transmit = backend to client."),
		metric.WithUnit("By"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(in.gatewayBytesIn.Load(), bytesIn)
			o.Observe(in.gatewayBytesOut.Load(), bytesOut)
			return nil
		}))
	errs = append(errs, err)
	streams, err := m.Int64UpDownCounter("oidcproxy.gateway.active_streams",
		metric.WithDescription("Gateway responses being streamed to clients right now."), metric.WithUnit("{stream}"))
	errs = append(errs, err)
	in.gatewayStreams = streams
	in.listenerEvents = counter("oidcproxy.store.listener.events", "{event}",
		"State changes of the store's notification connection (PostgreSQL LISTEN), by event: disconnected, reconnected. While it is lost, caches are bypassed and every bearer check reads the database.")
	in.listenerConnected, err = m.Int64UpDownCounter("oidcproxy.store.listener.connected",
		metric.WithDescription("1 while the store's notification connection (PostgreSQL LISTEN) is up, 0 while it is lost; absent for stores without one."),
		metric.WithUnit("{connection}"))
	errs = append(errs, err)
	errs = append(errs, registerPolicyCounters(m, &in.policy))
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("create instruments: %w", err)
	}
	return in, nil
}

// zero exports the unlabelled counters from the start, at 0: an alert on
// increase(oidcproxy_refresh_token_reuse_detected_total[5m]) needs the
// series to exist before the first event, or the first event is missed.
func (in *instruments) zero(ctx context.Context) {
	for _, c := range []metric.Int64Counter{
		in.flowsStarted, in.flowsCompleted, in.tokensIssued, in.tokensRefreshed, in.tokensRevoked,
		in.refreshReuse, in.codeReplay, in.storeSwept,
	} {
		c.Add(ctx, 0)
	}
	in.gatewayStreams.Add(ctx, 0)
}

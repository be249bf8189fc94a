package oidcproxy

import (
	"context"
	"errors"

	"github.com/google/wire"

	"github.com/oidcproxy/oidcproxy/adapters/config"
	"github.com/oidcproxy/oidcproxy/internal/clientip"
	"github.com/oidcproxy/oidcproxy/internal/ratelimit"
)

// limitsSet builds the abuse limits' counters and the client address
// resolver they key on, which the HTTP API, the gateway and the CIMD
// fetcher share.
var limitsSet = wire.NewSet(ProvideLimiters, ProvideClientIP)

// Limiters are the abuse limits' counters, one set per process: the
// authorization server's per client address (each browser page with a
// budget of its own), the client ID metadata document fetch triggers per
// client address, and the gateway's per subject. A nil limiter is off.
type Limiters struct {
	Register, CIMD, Authorize, Consent, Callback, Token, Revoke, Introspect *ratelimit.Addrs
	Gateway                                                                 *ratelimit.Keys
}

// ProvideLimiters builds the limiters of RATE_LIMIT_*. They read the
// monotonic clock, not the proxy's ports.Clock: they measure intervals,
// which a wall-clock step must not stretch or shrink.
func ProvideLimiters(cfg config.Config) (Limiters, error) {
	rates := cfg.RateLimits()
	var errs []error
	addrs := func(l ratelimit.Limit) *ratelimit.Addrs {
		a, err := ratelimit.NewAddrs(l, ratelimit.Options{})
		errs = append(errs, err)
		return a
	}
	gateway, err := ratelimit.NewKeys(rates.Gateway, ratelimit.Options{})
	errs = append(errs, err)
	l := Limiters{
		Register:   addrs(rates.Register),
		CIMD:       addrs(rates.CIMD),
		Authorize:  addrs(rates.Authorize),
		Consent:    addrs(rates.Authorize),
		Callback:   addrs(rates.Authorize),
		Token:      addrs(rates.Token),
		Revoke:     addrs(rates.Revoke),
		Introspect: addrs(rates.Introspect),
		Gateway:    gateway,
	}
	if err := errors.Join(errs...); err != nil {
		return Limiters{}, err
	}
	return l, nil
}

// ProvideClientIP builds the client address resolver of TRUSTED_PROXIES.
func ProvideClientIP(cfg config.Config) (*clientip.Resolver, error) {
	return cfg.ClientIP()
}

// admitCIMDFetch counts a request that would start a client metadata
// document fetch against RATE_LIMIT_CIMD for its client address, which the
// HTTP API put in the request's context (cimd.Options.AdmitFetch); nil
// when that limit is off.
func (l Limiters) admitCIMDFetch() func(context.Context) error {
	perAddress := l.CIMD
	if perAddress == nil {
		return nil
	}
	return func(ctx context.Context) error {
		addr, _ := clientip.FromContext(ctx) // none: counted with every other unknown address
		if ok, wait := perAddress.Allow(addr); !ok {
			return &ratelimit.Exceeded{RetryAfter: wait}
		}
		return nil
	}
}

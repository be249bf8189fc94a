package oidcproxy

import (
	"crypto/x509"

	"github.com/google/wire"

	"github.com/oidcproxy/oidcproxy/adapters/cimd"
	"github.com/oidcproxy/oidcproxy/adapters/config"
	"github.com/oidcproxy/oidcproxy/ports"
)

// cimdSet builds the guarded fetcher of client metadata documents and of
// clients' jwks_uri key sets.
var cimdSet = wire.NewSet(
	cimd.ProviderSet,
	ProvideCIMDOptions,
	ProvideMetadataFetcher,
)

// CIMDRootCAs are the roots that client metadata document servers'
// certificates are verified against: the system roots in production (a nil
// Pool); tests pass the pool of their httptest TLS server, so https stays
// mandatory even there.
type CIMDRootCAs struct{ Pool *x509.CertPool }

// ProvideCIMDOptions maps the configuration onto the fetcher's options.
// Its cache runs on the proxy's clock; every request that would start a
// metadata document fetch counts against RATE_LIMIT_CIMD for its client
// address, besides the fetcher's own per-host limits. The fetcher cuts
// TIMEOUT_SECONDS to its own bound (cimd.MaxTimeout).
func ProvideCIMDOptions(cfg config.Config, clock ports.Clock, roots CIMDRootCAs, limits Limiters) cimd.Options {
	return cimd.Options{
		AllowPrivateNetwork: cfg.CIMDAllowPrivateNetwork,
		Timeout:             cfg.Timeout(),
		RootCAs:             roots.Pool,
		Now:                 clock.Now,
		AdmitFetch:          limits.admitCIMDFetch(),
	}
}

// ProvideMetadataFetcher is the client ID metadata document fetcher, or
// nil when CIMD_ENABLED is off (URL client_ids are then unknown clients).
func ProvideMetadataFetcher(cfg config.Config, f *cimd.Fetcher) ports.MetadataFetcher {
	if !cfg.CIMDEnabled {
		return nil // an untyped nil: a nil *cimd.Fetcher would be a non-nil interface
	}
	return f
}

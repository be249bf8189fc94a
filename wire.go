//go:build wireinject

package oidcproxy

import (
	"context"
	"log/slog"

	"github.com/google/wire"

	"github.com/oidcproxy/oidcproxy/adapters/config"
	"github.com/oidcproxy/oidcproxy/adapters/telemetry"
	"github.com/oidcproxy/oidcproxy/adapters/tokens"
	"github.com/oidcproxy/oidcproxy/ports"
)

// InitializeApp builds the production App from a validated configuration.
// The cleanup, for after Run returns, undoes what was opened in reverse
// order: it closes the gateway's idle backend connections, closes the
// store, and shuts the telemetry providers down (flushing pending spans
// and metrics, within a bound).
func InitializeApp(ctx context.Context, cfg config.Config) (*App, func(), error) {
	wire.Build(appSet, productionSet)
	return nil, nil, nil
}

// The command-line tools that work on the store while no server holds it
// (or on the PostgreSQL database every server shares) build what they use
// from the same sets as the server, on the store as a command opens it
// (OpenCommandStore: an error wrapping boltstore.ErrLocked says a server
// holds the file, and the command asks its admin listener instead),
// without telemetry. Each builds only what it uses: listing clients must
// not need the encryption key, nor create the first signing key in a
// database that a store copy is about to fill.

// InitializeAdmin builds the operator's use cases (clients and grants)
// for `oidcproxy clients` and `oidcproxy grants`. The cleanup closes the
// store.
func InitializeAdmin(ctx context.Context, cfg config.Config) (ports.Admin, func(), error) {
	wire.Build(commandStoreSet, clockSet, useCaseSet, tokens.ProviderSet)
	return ports.Admin{}, nil, nil
}

// InitializeKeys builds the signing key ring's manager for `oidcproxy
// keys`; logger receives the warning about a key file created next to
// the store. The cleanup closes the store.
func InitializeKeys(ctx context.Context, cfg config.Config, logger *slog.Logger) (ports.KeyManager, func(), error) {
	wire.Build(commandStoreSet, clockSet, keySet)
	return nil, nil, nil
}

// InitializeTestApp is a seam for tests, never used in production: it
// builds the App as InitializeApp does, but on the clock, log output and
// telemetry options (an in-memory span exporter) a black-box test
// supplies, to move time, read the logs or inspect spans, and with the
// roots that verify its client metadata document servers. It is exported
// because its callers are other packages (test/proxytest, which test/e2e
// and test/chromium start the proxy through), which cannot import a test
// file of this one.
func InitializeTestApp(ctx context.Context, cfg config.Config, clock ports.Clock, logs LogOutput, tel telemetry.Options, cimdRoots CIMDRootCAs) (*App, func(), error) {
	wire.Build(appSet, ProvideStore)
	return nil, nil, nil
}

// InitializeAppWithStore is a seam for benchmarks, never used in
// production: it builds the App on a store the caller opened (and
// closes), so that the benchmarks in bench compare store options
// (boltstore.Options NoSync and MaxBatchSize) in one run. It is exported
// for the same reason as InitializeTestApp: bench is another package.
func InitializeAppWithStore(ctx context.Context, cfg config.Config, clock ports.Clock, logs LogOutput, tel telemetry.Options, store RawStore) (*App, func(), error) {
	wire.Build(appSet, wire.Value(CIMDRootCAs{}))
	return nil, nil, nil
}

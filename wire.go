//go:build wireinject

package oidcproxy

import (
	"context"

	"github.com/google/wire"

	"github.com/oidcproxy/oidcproxy/adapters/config"
	"github.com/oidcproxy/oidcproxy/adapters/telemetry"
	"github.com/oidcproxy/oidcproxy/ports"
)

// InitializeApp builds the production App from a validated configuration.
// The cleanup, for after Run returns, undoes what was opened in reverse
// order: it closes the gateway's idle backend connections, shuts the
// telemetry providers down (flushing pending spans and metrics, within a
// bound), and closes the store.
func InitializeApp(ctx context.Context, cfg config.Config) (*App, func(), error) {
	wire.Build(productionSet)
	return nil, nil, nil
}

// InitializeTestApp builds the App with a caller-supplied clock, log output
// and telemetry options (an in-memory span exporter), for black-box tests
// that move time, read the logs or inspect spans.
//
// cimdRoots verify the test's client metadata document servers.
func InitializeTestApp(ctx context.Context, cfg config.Config, clock ports.Clock, logs LogOutput, tel telemetry.Options, cimdRoots CIMDRootCAs) (*App, func(), error) {
	wire.Build(coreSet, ProvideStore)
	return nil, nil, nil
}

// InitializeAppWithStore builds the App on a store the caller opened (and
// closes): benchmarks use it to compare store options in one run.
func InitializeAppWithStore(ctx context.Context, cfg config.Config, clock ports.Clock, logs LogOutput, tel telemetry.Options, store RawStore) (*App, func(), error) {
	wire.Build(coreSet, wire.Value(CIMDRootCAs{}))
	return nil, nil, nil
}

//go:build wireinject

package oidcproxy

import (
	"context"
	"log/slog"

	"github.com/google/wire"

	"github.com/oidcproxy/oidcproxy/adapters/config"
	"github.com/oidcproxy/oidcproxy/ports"
)

// InitializeApp builds the production App from a validated configuration.
// The cleanup closes the store.
func InitializeApp(ctx context.Context, cfg config.Config) (*App, func(), error) {
	wire.Build(productionSet)
	return nil, nil, nil
}

// InitializeTestApp builds the App with a caller-supplied clock and logger,
// for black-box tests that move time or read the logs.
func InitializeTestApp(ctx context.Context, cfg config.Config, clock ports.Clock, logger *slog.Logger) (*App, func(), error) {
	wire.Build(coreSet, ProvideStore)
	return nil, nil, nil
}

// InitializeAppWithStore builds the App on a store the caller opened (and
// closes): benchmarks use it to compare store options in one run.
func InitializeAppWithStore(ctx context.Context, cfg config.Config, clock ports.Clock, logger *slog.Logger, store ports.Store) (*App, error) {
	wire.Build(coreSet)
	return nil, nil
}

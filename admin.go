package oidcproxy

import (
	"github.com/oidcproxy/oidcproxy/adapters/config"
	"github.com/oidcproxy/oidcproxy/adapters/telemetry"
	"github.com/oidcproxy/oidcproxy/adapters/tokens"
	"github.com/oidcproxy/oidcproxy/domain/usecase"
	"github.com/oidcproxy/oidcproxy/ports"
)

// ProvideAdmin builds the operator's use cases (clients and grants) for
// the admin listener, each wrapped in a span.
func ProvideAdmin(store ports.Store, clock ports.Clock, random ports.Random, settings usecase.Settings,
	tel *telemetry.Telemetry,
) (ports.Admin, error) {
	admin, err := usecase.NewAdmin(store, tokens.KeySets{}, clock, random, settings.SupportedScopes)
	if err != nil {
		return ports.Admin{}, err
	}
	return tel.Admin(admin), nil
}

// NewAdmin builds the operator's use cases on a store the command line
// opened itself, when no server holds it: the same use cases the admin
// listener runs, without telemetry, on the wall clock.
func NewAdmin(cfg config.Config, store ports.Store) (ports.Admin, error) {
	settings, err := ProvideSettings(cfg)
	if err != nil {
		return ports.Admin{}, err
	}
	return usecase.NewAdmin(store, tokens.KeySets{}, SystemClock{}, CryptoRandom{}, settings.SupportedScopes)
}

package oidcproxy

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/google/wire"

	"github.com/oidcproxy/oidcproxy/adapters/boltstore"
	"github.com/oidcproxy/oidcproxy/adapters/config"
	"github.com/oidcproxy/oidcproxy/adapters/memstore"
	"github.com/oidcproxy/oidcproxy/adapters/pgstore"
	"github.com/oidcproxy/oidcproxy/adapters/telemetry"
	"github.com/oidcproxy/oidcproxy/ports"
)

// The store is one of three adapters (pgstore, boltstore, memstore),
// chosen at run time from DATABASE_URL and STORE_PATH. A Wire graph is
// fixed when it is generated, so the choice is one provider here rather
// than a provider set per store package; the server and the command-line
// tools open the store each their own way (ProvideStore, OpenCommandStore)
// and observe it alike (ProvideObservedStore).

// storeSet observes whichever store the injector opens.
var storeSet = wire.NewSet(ProvideObservedStore)

// commandStoreSet is the store of the command-line tools: opened as a
// command opens it, and observed by nothing.
var commandStoreSet = wire.NewSet(
	OpenCommandStore,
	ProvideObservedStore,
	wire.InterfaceValue(new(Observer), unobserved{}),
)

// MemoryStorePath selects the in-memory store instead of a bbolt file
// (development and tests only: everything is lost on exit).
const MemoryStorePath = ":memory:"

// LockWait is how long a command waits for the bbolt file's lock before it
// concludes that a running server holds the file.
const LockWait = 300 * time.Millisecond

// RawStore is the store as opened, before the telemetry decorator: the App
// keeps it for what only the concrete store can do (backup).
type RawStore interface{ ports.Store }

// ProvideStore opens the server's store: the PostgreSQL database at
// DATABASE_URL (migrated to this binary's schema), else the bbolt file at
// STORE_PATH, or memory. On PostgreSQL the store listens for the other
// instances' changes, caches grants and clients, and reports the
// listening connection's losses to the log and the metrics.
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

// OpenCommandStore opens the store as the command-line tools work on it
// (keys, clients, grants, backup): the PostgreSQL database at
// DATABASE_URL, which every server shares, on two connections and without
// listening to other instances; else the bbolt file at STORE_PATH,
// waiting at most LockWait for its lock. An error wrapping
// boltstore.ErrLocked then says that a running server holds the file: the
// command asks that server's admin listener instead. An in-memory store
// has nothing to work on.
func OpenCommandStore(ctx context.Context, cfg config.Config) (RawStore, func(), error) {
	if cfg.DatabaseURL != "" {
		s, err := pgstore.Open(ctx, pgstore.Options{URL: cfg.DatabaseURL, MaxConns: 2, Timeout: cfg.DatabaseTimeout})
		if err != nil {
			return nil, nil, err
		}
		return s, s.Close, nil
	}
	if cfg.StorePath == MemoryStorePath {
		return nil, nil, errors.New("the store is in memory; there is nothing on disk to work on")
	}
	s, err := boltstore.Open(boltstore.Options{Path: cfg.StorePath, Timeout: LockWait})
	if err != nil {
		return nil, nil, err
	}
	return s, func() { _ = s.Close() }, nil
}

// ProvideObservedStore is the store the rest of the graph uses: raw,
// wrapped in store spans and latency metrics where there is telemetry.
func ProvideObservedStore(raw RawStore, obs Observer) ports.Store {
	return obs.Store(raw)
}

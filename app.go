// Package oidcproxy is the composition root: it wires the adapters,
// providers and use cases into an App (see wire.go) and runs it.
package oidcproxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/oidcproxy/oidcproxy/adapters/config"
	"github.com/oidcproxy/oidcproxy/adapters/httpapi"
	"github.com/oidcproxy/oidcproxy/adapters/telemetry"
	"github.com/oidcproxy/oidcproxy/ports"
)

// stderr is where the default logger writes; a variable so that the one
// place naming os.Stderr is obvious.
var stderr = os.Stderr

// Timings of the running service.
const (
	maintenanceInterval = time.Minute
	shutdownTimeout     = 15 * time.Second
	readHeaderTimeout   = 10 * time.Second
	idleTimeout         = 2 * time.Minute
	maxHeaderBytes      = 64 << 10
)

// App is the running service: the public HTTP server, the admin server and
// the maintenance loop (expiry sweeper, key ring reload and pruning).
type App struct {
	cfg    config.Config
	app    ports.Application
	api    *httpapi.Server
	keys   ports.KeyManager
	admin  http.Handler
	log    *slog.Logger
	public http.Handler
	store  RawStore
}

// MaxTokenTTL is how long a retired signing key stays published: the
// access-token lifetime plus the maintenance interval, so a server that
// learns of a rotation a little late still verifies every token.
func MaxTokenTTL(cfg config.Config) time.Duration { return cfg.AccessTokenTTL + maintenanceInterval }

// NewApp assembles the App.
func NewApp(cfg config.Config, app ports.Application, api *httpapi.Server, keys ports.KeyManager,
	store RawStore, tel *telemetry.Telemetry, logger *slog.Logger) *App {
	backup, _ := store.(ports.Backuper)
	admin := api.Admin(httpapi.AdminOptions{Keys: keys, MaxTokenTTL: MaxTokenTTL(cfg), Backup: backup, Token: cfg.AdminToken,
		Metrics: tel.MetricsHandler(), Addr: cfg.AdminAddr})
	return &App{cfg: cfg, app: app, api: api, keys: keys, admin: admin, log: logger, public: api, store: store}
}

// ReloadKeys re-reads the signing key ring (on SIGHUP, and every
// maintenance tick), so a rotation done elsewhere takes effect.
func (a *App) ReloadKeys(ctx context.Context) error {
	if err := a.keys.Reload(ctx); err != nil {
		return err
	}
	if _, err := a.keys.Prune(ctx); err != nil {
		return err
	}
	return nil
}

// Handler is the public HTTP handler (authorization server and, when
// configured, the gateway).
func (a *App) Handler() http.Handler { return a.public }

// AdminHandler is the admin listener's handler: health, readiness and
// Prometheus metrics for probes and scrapers, and the guarded key
// administration and backup endpoints.
func (a *App) AdminHandler() http.Handler { return a.admin }

// Application exposes the use cases (for subcommands and tests).
func (a *App) Application() ports.Application { return a.app }

// Store exposes the store the App runs on (for subcommands and tests that
// need records no endpoint creates, such as an operator's clients).
func (a *App) Store() ports.Store { return a.store }

// Run listens on LISTEN_ADDR and ADMIN_ADDR and serves until ctx ends.
func (a *App) Run(ctx context.Context) error {
	public, err := net.Listen("tcp", a.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.ListenAddr, err)
	}
	var admin net.Listener
	if a.cfg.AdminAddr != "" {
		admin, err = net.Listen("tcp", a.cfg.AdminAddr)
		if err != nil {
			_ = public.Close()
			return fmt.Errorf("listen on %s: %w", a.cfg.AdminAddr, err)
		}
	}
	return a.Serve(ctx, public, admin)
}

// Serve serves on the given listeners (admin may be nil) until ctx ends,
// then shuts down gracefully: in-flight requests get shutdownTimeout to
// finish.
func (a *App) Serve(ctx context.Context, public, admin net.Listener) error {
	servers := []*http.Server{a.newServer(a.public)}
	listeners := []net.Listener{public}
	if admin != nil {
		servers = append(servers, a.newServer(a.admin))
		listeners = append(listeners, admin)
	}
	errc := make(chan error, len(servers))
	for i, srv := range servers {
		a.log.Info("listening", "addr", listeners[i].Addr().String())
		go func() { errc <- srv.Serve(listeners[i]) }()
	}
	sweepDone := make(chan struct{})
	sweepCtx, stopSweep := context.WithCancel(ctx)
	go func() {
		defer close(sweepDone)
		a.maintain(sweepCtx)
	}()

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	stopSweep()
	<-sweepDone
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	var errs []error
	for _, srv := range servers {
		if err := srv.Shutdown(shutdownCtx); err != nil {
			errs = append(errs, err)
		}
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		errs = append(errs, serveErr)
	}
	a.log.Info("stopped")
	return errors.Join(errs...)
}

// newServer sets no ReadTimeout or WriteTimeout: they would cut the
// gateway's long-lived streams. Request bodies get their deadline per
// request instead (httpapi reads every body outside the gateway within
// REQUEST_BODY_TIMEOUT); the gateway applies its own limits.
func (a *App) newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
}

// maintain runs every maintenanceInterval until ctx ends: it removes
// expired records, so the store stays bounded even if nobody reads them,
// and reloads the key ring, so a rotation done by another process is used
// within a minute.
func (a *App) maintain(ctx context.Context) {
	t := time.NewTicker(maintenanceInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := a.app.SweepExpired.Handle(ctx)
			if err != nil {
				a.log.Error("sweep failed", "error", err)
			} else if n > 0 {
				a.log.Debug("swept expired records", "count", n)
			}
			if err := a.ReloadKeys(ctx); err != nil {
				a.log.Error("reloading the signing keys failed", "error", err)
			}
		}
	}
}

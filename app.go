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
	"github.com/oidcproxy/oidcproxy/adapters/policyfile"
	"github.com/oidcproxy/oidcproxy/adapters/telemetry"
	"github.com/oidcproxy/oidcproxy/ports"
)

// stderr is where the default logger writes; a variable so that the one
// place naming os.Stderr is obvious.
var stderr = os.Stderr

// Timings of the running service.
const (
	maintenanceInterval = time.Minute
	keyReloadRetry      = 5 * time.Second
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
	policy *policyfile.Source
	store  RawStore
	// keyChanges, when the store is shared with other instances, receives
	// a value when the stored key ring may have changed; nil otherwise.
	keyChanges <-chan struct{}
}

// keyRingWatcher is a store shared by several instances that tells when
// the signing key ring may have been changed elsewhere (pgstore).
type keyRingWatcher interface {
	KeyRingChanges() <-chan struct{}
}

// MaxTokenTTL is how long a retired signing key stays published: the
// access-token lifetime plus the maintenance interval, so a server that
// learns of a rotation a little late still verifies every token.
func MaxTokenTTL(cfg config.Config) time.Duration { return cfg.AccessTokenTTL + maintenanceInterval }

// NewApp assembles the App.
func NewApp(cfg config.Config, app ports.Application, api *httpapi.Server, keys ports.KeyManager,
	store RawStore, tel *telemetry.Telemetry, logger *slog.Logger, operator ports.Admin, policies *policyfile.Source) *App {
	backup, _ := store.(ports.Backuper)
	a := &App{cfg: cfg, app: app, api: api, keys: keys, log: logger, public: api, policy: policies, store: store}
	if w, ok := store.(keyRingWatcher); ok {
		a.keyChanges = w.KeyRingChanges()
	}
	a.admin = api.Admin(httpapi.AdminOptions{Keys: keys, MaxTokenTTL: MaxTokenTTL(cfg), Backup: backup, Token: cfg.AdminToken,
		Metrics: tel.MetricsHandler(), Addr: cfg.AdminAddr, ReloadPolicy: a.reloadPolicy, Admin: operator})
	return a
}

// ReloadPolicy reads the access policy file again (on SIGHUP, and for
// POST /policy/reload on the admin listener). A valid file's policy
// replaces the one in force for every decision made after it, without
// touching a connection; a file with problems changes nothing, and the
// error, which is logged, lists every problem. Without a policy file it
// does nothing.
func (a *App) ReloadPolicy() error {
	_, err := a.reloadPolicy()
	if errors.Is(err, httpapi.ErrNoPolicyFile) {
		return nil
	}
	return err
}

func (a *App) reloadPolicy() (string, error) {
	if a.policy.Path() == "" {
		return "", httpapi.ErrNoPolicyFile
	}
	if err := a.policy.Reload(); err != nil {
		a.log.Error("access policy not reloaded; the policy in force stays", "error", err)
		return "", err
	}
	sum := a.policy.Summary()
	a.log.Info("access policy reloaded", PolicyAttrs(sum)...)
	if w := AdmissionWarning(a.cfg, a.policy.Policy()); w != "" {
		a.log.Warn(w)
	}
	return sum.String(), nil
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
// administration, backup, client and grant endpoints.
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
	sweepDone := make(chan struct{}, 2)
	sweepCtx, stopSweep := context.WithCancel(ctx)
	go func() {
		defer func() { sweepDone <- struct{}{} }()
		a.maintain(sweepCtx)
	}()
	go func() {
		defer func() { sweepDone <- struct{}{} }()
		a.followKeyRing(sweepCtx)
	}()

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	stopSweep()
	<-sweepDone
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

// followKeyRing reloads the signing key ring whenever the shared store
// reports that another instance changed it (a rotation by `oidcproxy keys
// rotate` or the admin endpoint of any instance), so that every instance
// signs with the new key and publishes it within moments rather than at
// its next maintenance tick. A reload that fails is tried again after
// keyReloadRetry. Without a shared store it only waits for ctx.
func (a *App) followKeyRing(ctx context.Context) {
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.keyChanges:
		case <-retry:
		}
		retry = nil
		if err := a.keys.Reload(ctx); err != nil && ctx.Err() == nil {
			a.logFailure(ctx, "reloading the signing keys after a change by another instance failed", err)
			retry = time.After(keyReloadRetry)
		}
	}
}

// logFailure logs a failed background task: at Warn when a dependency
// could not be reached (the database down: not our fault, and every
// request says so too), at Error otherwise.
func (a *App) logFailure(ctx context.Context, msg string, err error) {
	level := slog.LevelError
	if errors.Is(err, ports.ErrUnavailable) {
		level = slog.LevelWarn
	}
	a.log.Log(ctx, level, msg, "error", err)
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
				a.logFailure(ctx, "sweep failed", err)
			} else if n > 0 {
				a.log.Debug("swept expired records", "count", n)
			}
			if err := a.ReloadKeys(ctx); err != nil {
				a.logFailure(ctx, "reloading the signing keys failed", err)
			}
		}
	}
}

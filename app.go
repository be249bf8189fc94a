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
	"github.com/oidcproxy/oidcproxy/ports"
)

// stderr is where the default logger writes; a variable so that the one
// place naming os.Stderr is obvious.
var stderr = os.Stderr

// Timings of the running service.
const (
	sweepInterval     = time.Minute
	shutdownTimeout   = 15 * time.Second
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
)

// App is the running service: the public HTTP server, the admin server and
// the expiry sweeper.
type App struct {
	cfg    config.Config
	app    ports.Application
	api    *httpapi.Server
	admin  http.Handler
	log    *slog.Logger
	public http.Handler
}

// NewApp assembles the App.
func NewApp(cfg config.Config, app ports.Application, api *httpapi.Server, logger *slog.Logger) *App {
	admin := http.NewServeMux()
	admin.HandleFunc("GET /healthz", api.ServeHTTP)
	admin.HandleFunc("GET /readyz", api.ServeHTTP)
	return &App{cfg: cfg, app: app, api: api, admin: admin, log: logger, public: api}
}

// Handler is the public HTTP handler (authorization server and, when
// configured, the gateway).
func (a *App) Handler() http.Handler { return a.public }

// AdminHandler serves health (and later metrics) on the admin listener.
func (a *App) AdminHandler() http.Handler { return a.admin }

// Application exposes the use cases (for subcommands and tests).
func (a *App) Application() ports.Application { return a.app }

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
		a.sweep(sweepCtx)
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

func (a *App) newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
}

// sweep removes expired records every sweepInterval until ctx ends, so the
// store stays bounded even if nobody reads the expired records.
func (a *App) sweep(ctx context.Context) {
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := a.app.SweepExpired.Handle(ctx)
			if err != nil {
				a.log.Error("sweep failed", "error", err)
				continue
			}
			if n > 0 {
				a.log.Debug("swept expired records", "count", n)
			}
		}
	}
}

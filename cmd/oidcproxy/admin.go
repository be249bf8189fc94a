package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/oidcproxy/oidcproxy"
	"github.com/oidcproxy/oidcproxy/adapters/boltstore"
	"github.com/oidcproxy/oidcproxy/adapters/config"
	"github.com/oidcproxy/oidcproxy/adapters/httpapi"
	"github.com/oidcproxy/oidcproxy/adapters/pgstore"
	"github.com/oidcproxy/oidcproxy/adapters/tokens"
	"github.com/oidcproxy/oidcproxy/ports"
)

// The keys and backup subcommands work on the store file directly when no
// server holds it, and through the running server's admin listener when one
// does (bbolt allows one process per file). With DATABASE_URL, keys works on
// the database the servers share, and backup points to pg_dump.

// lockWait is how long the subcommands wait for the store's file lock
// before asking the running server instead.
const lockWait = 300 * time.Millisecond

// adminLoad parses flags for an admin subcommand: the service's settings
// plus the subcommand's own flags (defined by extra before parsing).
func adminLoad(name string, args []string, getenv func(string) string, stderr io.Writer, extra func(*flag.FlagSet)) (config.Config, *flag.FlagSet, int, bool) {
	fs := flag.NewFlagSet("oidcproxy "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	if extra != nil {
		extra(fs)
	}
	cfg, err := config.LoadFlags(fs, args, getenv, oidcproxy.ProviderSections())
	if errors.Is(err, flag.ErrHelp) {
		return cfg, fs, 0, false
	}
	if err == nil {
		err = cfg.Validate(config.ValidateOptions{})
	}
	if err != nil {
		fmt.Fprintf(stderr, "oidcproxy %s: invalid configuration:\n%v\n", name, err)
		return cfg, fs, 1, false
	}
	if cfg.StorePath == oidcproxy.MemoryStorePath {
		fmt.Fprintf(stderr, "oidcproxy %s: the store is in memory; there is nothing on disk to work on\n", name)
		return cfg, fs, 1, false
	}
	return cfg, fs, 0, true
}

// adminURL is the running server's admin listener as seen from this host.
func adminURL(cfg config.Config, path string) string {
	host, port, err := net.SplitHostPort(cfg.AdminAddr)
	if err != nil || host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + path
}

// withStore runs fn on the store file, or reports (false) that a running
// server holds it.
func withStore(cfg config.Config, fn func(*boltstore.Store) error) (bool, error) {
	s, err := boltstore.Open(boltstore.Options{Path: cfg.StorePath, Timeout: lockWait})
	if errors.Is(err, boltstore.ErrLocked) {
		return false, nil
	}
	if err != nil {
		return true, err
	}
	defer s.Close()
	return true, fn(s)
}

// withKeyStore runs fn on the key ring's store: the PostgreSQL database,
// which running servers share (they pick a rotation up at their next
// reload), or else the store file when no server holds it (false: a
// running server does).
func withKeyStore(ctx context.Context, cfg config.Config, fn func(ports.KeyStore) error) (bool, error) {
	if cfg.DatabaseURL != "" {
		s, err := pgstore.Open(ctx, pgstore.Options{URL: cfg.DatabaseURL, MaxConns: 2, Timeout: cfg.DatabaseTimeout})
		if err != nil {
			return true, err
		}
		defer s.Close()
		return true, fn(s)
	}
	return withStore(cfg, func(s *boltstore.Store) error { return fn(s) })
}

func keys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	const usage = `usage: oidcproxy keys list|rotate [flags]

  list     show the signing keys: the active one, and retired ones still published in JWKS
  rotate   make a new key active; the previous key stays published until its tokens expire

Works on the store file when no server holds it, else through the running server's admin
listener (OIDC_PROXY_ADMIN_ADDR, with OIDC_PROXY_ADMIN_TOKEN when set).
Flags: the service's settings, see "oidcproxy serve -h".`
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprintln(stdout, usage)
		return 0
	}
	if len(args) == 0 || (args[0] != "list" && args[0] != "rotate") {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	action := args[0]
	cfg, _, code, ok := adminLoad("keys "+action, args[1:], getenv, stderr, nil)
	if !ok {
		return code
	}
	var out []httpapi.KeyInfo
	direct, err := withKeyStore(ctx, cfg, func(s ports.KeyStore) error {
		logger := slog.New(slog.NewTextHandler(stderr, nil))
		master, err := oidcproxy.ProvideMasterKey(cfg, logger)
		if err != nil {
			return err
		}
		sealer, err := oidcproxy.ProvideSealer(master)
		if err != nil {
			return err
		}
		issuer, err := tokens.Open(ctx, s, sealer, oidcproxy.SystemClock{})
		if err != nil {
			return err
		}
		if action == "rotate" {
			k, err := issuer.Rotate(ctx, oidcproxy.MaxTokenTTL(cfg))
			if err != nil {
				return err
			}
			out = append(out, httpapi.DescribeKey(k))
			return nil
		}
		ks, err := issuer.Keys(ctx)
		for _, k := range ks {
			out = append(out, httpapi.DescribeKey(k))
		}
		return err
	})
	if err == nil && !direct {
		out, err = keysViaAdmin(ctx, cfg, action)
	}
	if err != nil {
		fmt.Fprintf(stderr, "oidcproxy keys %s: %v\n", action, err)
		return 1
	}
	if action == "rotate" {
		fmt.Fprintf(stdout, "new active signing key %s; the previous key stays published until its tokens expire\n", out[0].ID)
		return 0
	}
	for _, k := range out {
		state := "active"
		if !k.Active {
			state = "retired, published until " + k.RemoveAfter.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(stdout, "%s  %s  created %s  %s\n", k.ID, k.Algorithm, k.CreatedAt.UTC().Format(time.RFC3339), state)
	}
	return 0
}

// keysViaAdmin asks the running server to list or rotate.
func keysViaAdmin(ctx context.Context, cfg config.Config, action string) ([]httpapi.KeyInfo, error) {
	method, path := http.MethodGet, "/keys"
	if action == "rotate" {
		method, path = http.MethodPost, "/keys/rotate"
	}
	body, err := adminCall(ctx, cfg, method, path)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	if action == "rotate" {
		var k httpapi.KeyInfo
		if err := json.NewDecoder(body).Decode(&k); err != nil {
			return nil, fmt.Errorf("admin answer: %w", err)
		}
		return []httpapi.KeyInfo{k}, nil
	}
	var doc struct {
		Keys []httpapi.KeyInfo `json:"keys"`
	}
	if err := json.NewDecoder(body).Decode(&doc); err != nil {
		return nil, fmt.Errorf("admin answer: %w", err)
	}
	return doc.Keys, nil
}

func adminCall(ctx context.Context, cfg config.Config, method, path string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, method, adminURL(cfg, path), nil)
	if err != nil {
		return nil, err
	}
	// The admin listener refuses state changes that a web page could
	// forge; this header is what tells a program's request apart.
	req.Header.Set(httpapi.AdminRequestHeader, "1")
	if cfg.AdminToken != "" {
		req.Header.Set("Authorization", "Bearer "+cfg.AdminToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("the store is locked by a running server, and its admin listener (%s) cannot be reached: %w", cfg.AdminAddr, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("the running server answered %s", resp.Status)
	}
	return resp.Body, nil
}

func backup(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	var outPath string
	cfg, _, code, ok := adminLoad("backup", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&outPath, "out", "", "file to write the backup to (required; must not exist)")
	})
	if !ok {
		return code
	}
	if cfg.DatabaseURL != "" {
		fmt.Fprintln(stderr, "oidcproxy backup: the store is the PostgreSQL database at OIDC_PROXY_DATABASE_URL; "+
			"back it up with PostgreSQL's own tools (pg_dump, or your provider's snapshots), see docs/deployment.md. No file was written.")
		return 1
	}
	if outPath == "" {
		fmt.Fprintln(stderr, "oidcproxy backup: --out is required")
		return 2
	}
	// Write next to the destination and rename at the end, so an
	// interrupted backup never leaves a file that looks complete.
	tmp, err := os.CreateTemp(filepath.Dir(outPath), ".oidcproxy-backup-*")
	if err != nil {
		fmt.Fprintf(stderr, "oidcproxy backup: %v\n", err)
		return 1
	}
	defer os.Remove(tmp.Name())
	var n int64
	direct, err := withStore(cfg, func(s *boltstore.Store) error {
		n, err = s.Backup(ctx, tmp)
		return err
	})
	if err == nil && !direct {
		var body io.ReadCloser
		if body, err = adminCall(ctx, cfg, http.MethodGet, "/backup"); err == nil {
			n, err = io.Copy(tmp, body)
			body.Close()
		}
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if _, statErr := os.Stat(outPath); statErr == nil {
			err = fmt.Errorf("%s exists; not overwriting it", outPath)
		} else {
			err = os.Rename(tmp.Name(), outPath)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "oidcproxy backup: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %d bytes to %s\n", n, outPath)
	return 0
}

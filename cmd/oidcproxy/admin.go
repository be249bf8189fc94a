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
	"github.com/oidcproxy/oidcproxy/ports"
)

// The keys and backup subcommands work on the store file directly when no
// server holds it, and through the running server's admin listener when one
// does (bbolt allows one process per file). With DATABASE_URL, keys works on
// the database the servers share, and backup points to pg_dump.

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

// heldByServer reports whether err, from opening the store, says that a
// running server holds the store file: the command then asks that server
// instead.
func heldByServer(err error) bool { return errors.Is(err, boltstore.ErrLocked) }

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
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	ring, closeStore, err := oidcproxy.InitializeKeys(ctx, cfg, logger)
	switch {
	case err == nil:
		out, err = keysDirect(ctx, cfg, ring, action)
		closeStore()
	case heldByServer(err):
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

// keysDirect lists or rotates on the key ring this command opened.
func keysDirect(ctx context.Context, cfg config.Config, ring ports.KeyManager, action string) ([]httpapi.KeyInfo, error) {
	if action == "rotate" {
		k, err := ring.Rotate(ctx, oidcproxy.MaxTokenTTL(cfg))
		if err != nil {
			return nil, err
		}
		return []httpapi.KeyInfo{httpapi.DescribeKey(k)}, nil
	}
	ks, err := ring.Keys(ctx)
	out := make([]httpapi.KeyInfo, 0, len(ks))
	for _, k := range ks {
		out = append(out, httpapi.DescribeKey(k))
	}
	return out, err
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
	store, closeStore, err := oidcproxy.OpenCommandStore(ctx, cfg)
	switch {
	case err == nil:
		n, err = backupTo(ctx, store, tmp)
		closeStore()
	case heldByServer(err):
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

// backupTo writes a consistent copy of store to w.
func backupTo(ctx context.Context, store ports.Store, w io.Writer) (int64, error) {
	b, ok := store.(ports.Backuper)
	if !ok {
		return 0, errors.New("this store cannot write a backup")
	}
	return b.Backup(ctx, w)
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/oidcproxy/oidcproxy"
	"github.com/oidcproxy/oidcproxy/adapters/boltstore"
)

// storeCmd runs the store's maintenance subcommands. Unlike keys and
// backup they work on stores directly, never through a running server:
// compaction replaces the file and a copy must see every write, which
// only an offline store allows.
func storeCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	const usage = `usage: oidcproxy store compact|copy [flags]

  compact   rewrite the store file without the space that swept records left behind;
            offline: stop the server first (it refuses while a server holds the file)
  copy      --from SOURCE --to DESTINATION: copy every live record (clients, grants, codes,
            refresh tokens, signing keys, authorizations in progress) from one store into an
            empty other, each a bbolt file or a postgres:// URL; offline: stop every instance
            first. See "oidcproxy store copy -h".

Flags: the service's settings, see "oidcproxy serve -h"; STORE_PATH names the file.`
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprintln(stdout, usage)
		return 0
	}
	if len(args) > 0 && args[0] == "copy" {
		return storeCopy(ctx, args[1:], getenv, stdout, stderr)
	}
	if len(args) == 0 || args[0] != "compact" {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	cfg, _, code, ok := adminLoad("store compact", args[1:], getenv, stderr, nil)
	if !ok {
		return code
	}
	res, err := boltstore.Compact(boltstore.Options{Path: cfg.StorePath, Timeout: oidcproxy.LockWait})
	if errors.Is(err, boltstore.ErrLocked) {
		fmt.Fprintf(stderr, "oidcproxy store compact: %s is in use by another process, most likely a running server;\n"+
			"compaction works offline only: stop the server, compact, start it again\n", cfg.StorePath)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "oidcproxy store compact: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "compacted %s\n  before: %s\n  after:  %s\n", cfg.StorePath, size(res.Before), size(res.After))
	return 0
}

// size formats a file size for people, with the exact byte count.
func size(n int64) string {
	return fmt.Sprintf("%.1f MiB (%d bytes)", float64(n)/(1<<20), n)
}

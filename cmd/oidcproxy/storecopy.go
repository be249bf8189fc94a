package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/oidcproxy/oidcproxy"
	"github.com/oidcproxy/oidcproxy/adapters/boltstore"
	"github.com/oidcproxy/oidcproxy/adapters/config"
	"github.com/oidcproxy/oidcproxy/adapters/seal"
	"github.com/oidcproxy/oidcproxy/ports"
)

const storeCopyUsage = `usage: oidcproxy store copy --from SOURCE --to DESTINATION [flags]

Copies every live record — clients, grants, authorization codes, refresh tokens (live and
rotated, so reuse is still detected), signing keys, authorizations in progress and used
assertion ids (so a client assertion or ID-JAG is still single-use) — from one store into
another, so that a deployment moves between a bbolt file and PostgreSQL without asking
anyone to sign in again. SOURCE and DESTINATION are each the path of a bbolt file or a
PostgreSQL URL (postgres://user@host:5432/database?sslmode=verify-full; leave the password
out and set PGPASSWORD or a ~/.pgpass entry, so it stays off the command line).

  - Offline: stop every instance first. A bbolt file held by a server is refused, and so
    is a database that instances are connected to: a copy must see every write.
  - The destination must be empty: a bbolt file that does not exist yet, or a database
    without oidcproxy records (its tables are created as serve creates them). Nothing
    is ever merged or overwritten.
  - Sealed values are copied sealed: OIDC_PROXY_ENCRYPTION_KEY (or _FILE) must be the key
    the source was sealed with, and every instance on the destination must use it. The
    copy refuses a key that cannot open the source's signing keys.
  - Atomic: the destination gets every record or none (one transaction on PostgreSQL; a
    new file renamed into place for bbolt). The copy is then read back and compared.

Flags: --from, --to, and the service's settings (OIDC_PROXY_ENCRYPTION_KEY[_FILE],
OIDC_PROXY_DATABASE_TIMEOUT), see "oidcproxy serve -h".`

// storeCopy runs `oidcproxy store copy`.
func storeCopy(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprintln(stdout, storeCopyUsage)
		return 0
	}
	var from, to string
	fs := flag.NewFlagSet("oidcproxy store copy", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // the usage above says more than the flag list would
	fs.StringVar(&from, "from", "", "the store to copy: a bbolt file or a postgres:// URL")
	fs.StringVar(&to, "to", "", "the empty store to copy into: a new bbolt file or a postgres:// URL")
	cfg, err := config.LoadFlags(fs, args, getenv, oidcproxy.ProviderSections())
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(stdout, storeCopyUsage)
		return 0
	}
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("%d unexpected argument(s); name the stores with --from and --to", fs.NArg())
	}
	if err == nil && (from == "" || to == "") {
		err = errors.New("both --from and --to are required")
	}
	if err != nil {
		fmt.Fprintf(stderr, "oidcproxy store copy: %v\n\n%s\n", err, storeCopyUsage)
		return 2
	}
	key, problem := copyKey(cfg, from)
	if problem != "" {
		fmt.Fprintf(stderr, "oidcproxy store copy: %s\n", problem)
		return 1
	}
	res, err := oidcproxy.CopyStore(ctx, oidcproxy.StoreCopy{
		From: from, To: to, EncryptionKey: key, DatabaseTimeout: cfg.DatabaseTimeout,
	})
	if err != nil {
		fmt.Fprintf(stderr, "oidcproxy store copy: %v\n", err)
		if hint := copyHint(err, from); hint != "" {
			fmt.Fprintln(stderr, hint)
		}
		if !errors.Is(err, oidcproxy.ErrCopyDiffers) {
			fmt.Fprintf(stderr, "Nothing was copied into the %s.\n", res.To)
		}
		return 1
	}
	fmt.Fprintf(stdout, "copied %s\n  from the %s\n  to the %s\nand read it back: the destination holds exactly the source's live records.\n",
		res.Copied, res.From, res.To)
	fmt.Fprintln(stdout, "Start the instances on the destination with the same OIDC_PROXY_ENCRYPTION_KEY.")
	return 0
}

// copyKey returns the encryption key the copy checks the source with, or
// the problem that prevents it, in words.
func copyKey(cfg config.Config, from string) (seal.MasterKey, string) {
	key, err := cfg.EncryptionKeyBytes()
	switch {
	case err != nil:
		return nil, "OIDC_PROXY_ENCRYPTION_KEY is invalid: " + strings.TrimPrefix(err.Error(), "config: ")
	case key != nil:
		return key, ""
	}
	msg := "OIDC_PROXY_ENCRYPTION_KEY (or OIDC_PROXY_ENCRYPTION_KEY_FILE) is required: the copy moves sealed values as they are, " +
		"so it checks that the key opens them, and every instance on the destination needs that same key."
	if keyFile := generatedKeyFile(from); keyFile != "" {
		msg += fmt.Sprintf("\nThe source's server sealed with the key file it generated, %s: copy with "+
			"OIDC_PROXY_ENCRYPTION_KEY_FILE=%s, and give the instances on the destination that key from a secret store "+
			"(a database requires OIDC_PROXY_ENCRYPTION_KEY: instances cannot share a generated key file).", keyFile, keyFile)
	}
	return nil, msg
}

// generatedKeyFile is the key file a server without ENCRYPTION_KEY created
// next to the bbolt file from, or "" when there is none.
func generatedKeyFile(from string) string {
	if strings.HasPrefix(from, "postgres://") || strings.HasPrefix(from, "postgresql://") {
		return ""
	}
	path := oidcproxy.KeyFile(from)
	if _, err := os.Stat(path); err != nil {
		return ""
	}
	return path
}

// copyHint says what to do about the errors an operator can fix.
func copyHint(err error, from string) string {
	var notEmpty *ports.NotEmptyError
	switch {
	case errors.Is(err, oidcproxy.ErrWrongEncryptionKey):
		hint := "Use the key the source's instances run with."
		if keyFile := generatedKeyFile(from); keyFile != "" {
			hint += fmt.Sprintf(" Its server may have sealed with the key file it generated: OIDC_PROXY_ENCRYPTION_KEY_FILE=%s.", keyFile)
		}
		return hint
	case errors.Is(err, oidcproxy.ErrInstancesRunning):
		return "Stop every instance (scale the deployment to zero) and copy again."
	case errors.Is(err, boltstore.ErrLocked):
		return "A running server holds the source file: stop it and copy again."
	case errors.As(err, &notEmpty):
		return "The destination must be empty. An instance started on a database creates a signing key at once: " +
			"copy into a new database (or drop and recreate this one) before any instance runs on it."
	case errors.Is(err, fs.ErrExist):
		return "The destination file exists: a copy goes into a new file only; name another one."
	}
	return ""
}

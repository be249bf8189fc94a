// Command oidcproxy runs the OAuth 2.1 authorization server and MCP gateway
// in front of an OpenID provider without dynamic client registration.
//
//	oidcproxy serve          run the service
//	oidcproxy check          validate the configuration and reach the upstream IdP
//	oidcproxy dev            run with a development IdP and a demo MCP server
//	oidcproxy keys           list or rotate the token signing keys
//	oidcproxy clients        list, create (machine clients) or delete clients
//	oidcproxy grants         list grants, revoke those of a user, a client or one id
//	oidcproxy backup         write a consistent copy of the store
//	oidcproxy store compact  shrink the store file (offline)
//	oidcproxy store copy     copy a store between bbolt and PostgreSQL (offline)
//	oidcproxy version        print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/oidcproxy/oidcproxy"
	"github.com/oidcproxy/oidcproxy/adapters/config"
	"github.com/oidcproxy/oidcproxy/adapters/pgstore"
	"github.com/oidcproxy/oidcproxy/adapters/policyfile"
)

// version is set at build time with -ldflags "-X main.version=…"; otherwise
// the module version from the build info is used.
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one subcommand and returns the process exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(ctx, rest, getenv, stderr)
	case "check":
		return check(ctx, rest, getenv, stdout, stderr)
	case "dev":
		return dev(ctx, rest, getenv, stdout, stderr)
	case "keys":
		return keys(ctx, rest, getenv, stdout, stderr)
	case "clients":
		return clientsCmd(ctx, rest, getenv, stdout, stderr)
	case "grants":
		return grantsCmd(ctx, rest, getenv, stdout, stderr)
	case "backup":
		return backup(ctx, rest, getenv, stdout, stderr)
	case "store":
		return storeCmd(ctx, rest, getenv, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "oidcproxy", versionString())
		return 0
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "oidcproxy: unknown command %q\n\n", cmd)
		usage(stderr)
		return 2
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `oidcproxy: an OAuth 2.1 authorization server for MCP in front of any OpenID provider.

Usage:
  oidcproxy serve   [flags]   run the service
  oidcproxy check   [flags]   validate the configuration and reach the upstream provider
  oidcproxy dev     [flags]   try it: proxy + development identity provider + demo MCP server
  oidcproxy keys list|rotate  list or rotate the token signing keys (works while serve runs)
  oidcproxy clients list|create|delete
                              list clients, create machine clients, delete clients (works while serve runs)
  oidcproxy grants list|revoke
                              list users' grants, revoke those of a user, client or id (works while serve runs)
  oidcproxy backup --out FILE write a consistent copy of the store (works while serve runs)
  oidcproxy store compact     shrink the store file after a flood of records (stop serve first)
  oidcproxy store copy --from SOURCE --to DESTINATION
                              copy every record between bbolt and PostgreSQL (stop serve first)
  oidcproxy version           print the version

Every setting is a flag, an OIDC_PROXY_* environment variable or a key in the
YAML file given with --config; run "oidcproxy serve -h" to list them.
`)
}

// loadConfig parses the flags of a subcommand and validates the result.
func loadConfig(name string, args []string, getenv func(string) string, stderr io.Writer, requireUpstream bool) (config.Config, int, bool) {
	fs := flag.NewFlagSet("oidcproxy "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg, err := config.LoadFlags(fs, args, getenv, oidcproxy.ProviderSections())
	if errors.Is(err, flag.ErrHelp) {
		return cfg, 0, false
	}
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("%d unexpected argument(s); every setting is a --flag", fs.NArg())
	}
	if err == nil {
		err = cfg.Validate(config.ValidateOptions{RequireUpstream: requireUpstream, Provider: oidcproxy.ValidateProvider})
	}
	if err != nil {
		fmt.Fprintf(stderr, "oidcproxy %s: invalid configuration:\n%v\n", name, err)
		return cfg, 1, false
	}
	return cfg, 0, true
}

func serve(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	cfg, code, ok := loadConfig("serve", args, getenv, stderr, true)
	if !ok {
		return code
	}
	app, cleanup, err := oidcproxy.InitializeApp(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "oidcproxy serve: cannot start: %v\n", err)
		return 1
	}
	defer cleanup()
	defer reloadOnHangup(ctx, app, stderr)()
	if err := app.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "oidcproxy serve: %v\n", err)
		return 1
	}
	return 0
}

// reloadOnHangup makes SIGHUP reload the signing keys at once (they are
// also reloaded every minute), so a rotation takes effect immediately when
// asked, and the access policy file, which is read only when asked. A
// policy file with problems is reported and changes nothing. The returned
// function stops listening.
func reloadOnHangup(ctx context.Context, app *oidcproxy.App, stderr io.Writer) func() {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := app.ReloadKeys(ctx); err != nil {
					fmt.Fprintf(stderr, "oidcproxy: reloading keys: %v\n", err)
				}
				if err := app.ReloadPolicy(); err != nil {
					fmt.Fprintf(stderr, "oidcproxy: the access policy was not reloaded, the policy in force stays: %v\n", err)
				}
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		cancel()
		<-done
	}
}

// check validates the configuration and fetches the upstream discovery
// document, printing a short report: the pre-flight an operator runs
// before a deployment.
func check(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, code, ok := loadConfig("check", args, getenv, stderr, true)
	if !ok {
		return code
	}
	fmt.Fprintln(stdout, "configuration: ok")
	fmt.Fprintf(stdout, "  issuer:         %s\n", cfg.Issuer())
	fmt.Fprintf(stdout, "  callback URL:   %s   (register this at the identity provider)\n", cfg.RedirectURL())
	fmt.Fprintf(stdout, "  resource:       %s\n", cfg.Resource())
	fmt.Fprintf(stdout, "  provider:       %s\n", cfg.Provider)
	status := 0
	if !checkDatabase(ctx, cfg, stdout) {
		status = 1
	}
	var report strings.Builder
	policies, ok := checkPolicy(cfg, &report)
	if !ok {
		status = 1
	}
	client := oidcproxy.NewUpstreamClient(cfg)
	if _, err := oidcproxy.ProvideIdentityProvider(ctx, cfg, client, policies); err != nil {
		fmt.Fprintf(stdout, "upstream: FAILED\n  %v\n", err)
		status = 1
	} else {
		fmt.Fprintln(stdout, "upstream: ok (discovery fetched and validated)")
	}
	fmt.Fprint(stdout, report.String())
	return status
}

// checkPolicy loads the access policy file, when POLICY_FILE is set, and
// prints its summary (counts only: the entries name people) or every
// problem of the file, and a warning when a public identity provider would
// admit anyone with an account there. It returns the loaded policy (none
// when the file is invalid) and whether the file is usable.
func checkPolicy(cfg config.Config, stdout io.Writer) (*policyfile.Source, bool) {
	src, err := policyfile.Load(cfg.PolicyFile)
	ok := err == nil
	switch {
	case err != nil:
		fmt.Fprintf(stdout, "policy: FAILED\n  %s\n", strings.ReplaceAll(err.Error(), "\n", "\n  "))
		src, _ = policyfile.Load("")
	case cfg.PolicyFile == "":
		fmt.Fprintln(stdout, "policy: none (everyone the identity provider signs in is admitted, and every request is allowed)")
	default:
		fmt.Fprintf(stdout, "policy: ok\n  %s\n", strings.ReplaceAll(src.Summary().String(), "\n", "\n  "))
	}
	if ok {
		if w := oidcproxy.AdmissionWarning(cfg, src.Policy()); w != "" {
			fmt.Fprintf(stdout, "WARNING: %s\n", w)
		}
	}
	return src, ok
}

// checkDatabase reports, when DATABASE_URL is set, whether the database
// answers and what its schema version is, without changing anything. A
// problem is one line, never quoting the URL's password. It reports
// whether the database is usable by this binary.
func checkDatabase(ctx context.Context, cfg config.Config, stdout io.Writer) bool {
	if cfg.DatabaseURL == "" {
		fmt.Fprintf(stdout, "store: bbolt file %s\n", cfg.StorePath)
		return true
	}
	st, err := pgstore.Inspect(ctx, pgstore.Options{URL: cfg.DatabaseURL, Timeout: cfg.DatabaseTimeout})
	if err != nil {
		fmt.Fprintf(stdout, "database: FAILED\n  %v\n", err)
		return false
	}
	switch {
	case st.SchemaVersion > st.LatestVersion:
		fmt.Fprintf(stdout, "database: FAILED\n  the schema version is %d, newer than this oidcproxy supports (%d): upgrade oidcproxy\n",
			st.SchemaVersion, st.LatestVersion)
		return false
	case st.SchemaVersion == 0:
		fmt.Fprintf(stdout, "database: ok (PostgreSQL %s; empty: serve creates schema version %d)\n", st.Server, st.LatestVersion)
	case st.SchemaVersion < st.LatestVersion:
		fmt.Fprintf(stdout, "database: ok (PostgreSQL %s; schema version %d: serve migrates it to %d)\n", st.Server, st.SchemaVersion, st.LatestVersion)
	default:
		fmt.Fprintf(stdout, "database: ok (PostgreSQL %s; schema version %d, current)\n", st.Server, st.SchemaVersion)
	}
	return true
}

func versionString() string {
	if version != "" {
		return version
	}
	return oidcproxy.Version()
}

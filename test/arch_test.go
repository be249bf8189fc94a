// Package test holds the architecture test; its subpackages hold the store
// conformance suite, the test IdPs and the end-to-end tests.
//
// # Layout and import rules
//
// Dependencies point inward: adapters and providers depend on the ports,
// the ports on the domain, and only the composition root (the module's root
// package) knows every part. The architecture test enforces this table on
// the production imports of every package of the module (test files are
// free), matching module packages by their exact path: "domain" allows
// domain, never domain/usecase.
//
//	package            may import                                          never
//	domain             the standard library                                anything of the module, net/http, database/sql
//	domain/policy      domain                                              everything else of the module, net/http
//	ports              domain, domain/policy                               domain/usecase, adapters, providers, net/http
//	domain/usecase     domain, domain/policy, ports                        adapters, providers, net/http
//	providers          ports, domain, the presets and providers/oidc       adapters, domain/usecase
//	providers/oidc     domain, domain/policy, ports, go-oidc, go-jose,     adapters, domain/usecase, other providers
//	                   x/oauth2
//	providers/<preset> domain, ports, providers/oidc, go-oidc, x/oauth2    adapters, domain/usecase, other presets
//	adapters/<name>    domain, domain/policy, ports, adapters/oauthhttp,   domain/usecase, providers, other adapters
//	                   internal/*,
//	                   and its own driver modules (below)
//	internal/*         the standard library, and its own modules (below)   anything of the module
//	root package       anything (the composition root)                     imported by anything but cmd/* and test code
//	cmd/*, test/*,     anything
//	bench, deploy
//
// The driver modules of each adapter; an adapter not listed may import no
// third-party module:
//
//	adapters/boltstore  go.etcd.io/bbolt
//	adapters/pgstore    github.com/jackc/pgx/v5, github.com/jackc/pgxlisten
//	adapters/httpapi    github.com/gorilla/mux, github.com/google/wire
//	adapters/telemetry  go.opentelemetry.io/otel, go.opentelemetry.io/contrib, github.com/prometheus/client_golang,
//	                    github.com/prometheus/otlptranslator, github.com/gorilla/mux (the router it instruments)
//	adapters/tokens     github.com/go-jose/go-jose/v4, github.com/google/wire
//	adapters/assertion  github.com/go-jose/go-jose/v4, github.com/google/wire
//	adapters/seal       github.com/google/wire
//	adapters/cimd       github.com/google/wire
//	adapters/config     go.yaml.in/yaml/v3
//	adapters/policyfile go.yaml.in/yaml/v3, github.com/google/cel-go
//	adapters/gateway    github.com/go-json-experiment/json/jsontext
//
// github.com/google/wire is how an adapter declares its ProviderSet for
// the composition root: declarations only, nothing that runs.
//
// The third-party modules an internal helper may import; one not listed
// may import none:
//
//	internal/clientip   github.com/muhlemmer/httpforwarded (the RFC 7239
//	                    Forwarded header's parser: quoted strings and all)
//
// adapters/oauthhttp is the shared OAuth wire format (error table, error
// body, challenges, RFC 7591 client metadata) that httpapi, the gateway
// and cimd all speak; internal/* are small helpers on the standard library
// (a generic cache, the rate limiter, the client address). Neither may
// import an adapter.
package test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/oidcproxy/oidcproxy"

// policy is what one package may import. Module packages are named
// relative to the module; third-party ones by import path, where "p/..."
// stands for p and every package below it (a module and its packages).
type policy struct {
	// row names the table row, for messages.
	row string
	// anything: no restriction (the composition root, commands, tests).
	anything bool
	// module are the module packages it may import, exactly; "dir/*" is
	// every package below dir.
	module []string
	// thirdParty are the third-party packages it may import.
	thirdParty []string
	// bannedStd are standard packages it may not import.
	bannedStd []string
}

// drivers are the third-party modules each adapter may import.
var drivers = map[string][]string{
	"boltstore": {"go.etcd.io/bbolt/..."},
	"pgstore":   {"github.com/jackc/pgx/v5/...", "github.com/jackc/pgxlisten/..."},
	"httpapi":   {"github.com/gorilla/mux", wireSets},
	"telemetry": {
		"go.opentelemetry.io/otel/...", "go.opentelemetry.io/contrib/...",
		"github.com/prometheus/client_golang/...", "github.com/prometheus/otlptranslator/...",
		"github.com/gorilla/mux",
	},
	"tokens":     {"github.com/go-jose/go-jose/v4/...", wireSets},
	"assertion":  {"github.com/go-jose/go-jose/v4/...", wireSets},
	"seal":       {wireSets},
	"cimd":       {wireSets},
	"config":     {"go.yaml.in/yaml/v3/..."},
	"policyfile": {"go.yaml.in/yaml/v3/...", "github.com/google/cel-go/..."},
	// The streaming JSON tokenizer that reads JSON-RPC messages and filters
	// list answers in one pass (already a dependency of the MCP SDK).
	"gateway": {"github.com/go-json-experiment/json/jsontext"},
}

// wireSets is Wire's declaration package, in which an adapter declares the
// ProviderSet the composition root builds it with.
const wireSets = "github.com/google/wire"

// internalModules are the third-party modules each internal helper may
// import.
var internalModules = map[string][]string{
	"clientip": {"github.com/muhlemmer/httpforwarded"},
}

// The OIDC client libraries a provider is built on.
var oidcLibraries = []string{"github.com/coreos/go-oidc/v3/...", "golang.org/x/oauth2/..."}

// policyOf returns the rule of a module package (rel is its path relative
// to the module, "" for the root), or false if the table has no row for
// it: a new top-level package needs a rule before it lands.
func policyOf(rel string) (policy, bool) {
	first, rest, _ := strings.Cut(rel, "/")
	switch {
	case rel == "":
		return policy{row: "the composition root", anything: true}, true
	case first == "cmd", first == "test", first == "bench", first == "deploy":
		return policy{row: "commands and test code", anything: true}, true
	case rel == "domain":
		return policy{row: "domain knows only the standard library", bannedStd: []string{"net/http", "database/sql"}}, true
	case rel == "domain/policy":
		return policy{row: "the policy model knows the domain", module: []string{"domain"}, bannedStd: []string{"net/http", "database/sql"}}, true
	case rel == "ports":
		return policy{row: "ports know the domain", module: []string{"domain", "domain/policy"}, bannedStd: []string{"net/http"}}, true
	case rel == "domain/usecase":
		return policy{row: "use cases know the domain and the ports", module: []string{"domain", "domain/policy", "ports"}, bannedStd: []string{"net/http"}}, true
	case rel == "providers":
		return policy{row: "the provider registry knows the providers it lists", module: []string{"domain", "ports", "providers/*"}}, true
	case rel == "providers/oidc":
		return policy{
			row:    "the generic provider knows the domain, the policy model (which claims to keep), the ports and the OIDC libraries",
			module: []string{"domain", "domain/policy", "ports"},
			// go-jose names the signature algorithms go-oidc's API takes.
			thirdParty: append([]string{"github.com/go-jose/go-jose/v4/..."}, oidcLibraries...),
		}, true
	case first == "providers":
		return policy{
			row:        "a preset knows the domain, the ports, the generic provider and the OIDC libraries",
			module:     []string{"domain", "ports", "providers/oidc"},
			thirdParty: oidcLibraries,
		}, true
	case first == "adapters":
		name, _, _ := strings.Cut(rest, "/")
		return policy{
			row:        "adapter " + name + " knows the domain, the ports, the OAuth wire format, internal helpers and its own drivers",
			module:     []string{"domain", "domain/policy", "ports", "adapters/oauthhttp", "internal/*", "adapters/" + name + "/*"},
			thirdParty: drivers[name],
		}, true
	case first == "internal":
		name, _, _ := strings.Cut(rest, "/")
		return policy{row: "internal helpers know only the standard library and their own modules", thirdParty: internalModules[name]}, true
	}
	return policy{}, false
}

// allows reports whether one of patterns names path: exactly, or as
// "dir/*" (a module package below dir), or "p/..." (p or below).
func allows(patterns []string, path string) bool {
	for _, p := range patterns {
		switch {
		case p == path:
			return true
		case strings.HasSuffix(p, "/*") && strings.HasPrefix(path, strings.TrimSuffix(p, "*")):
			return true
		case strings.HasSuffix(p, "/..."):
			root := strings.TrimSuffix(p, "/...")
			if path == root || strings.HasPrefix(path, root+"/") {
				return true
			}
		}
	}
	return false
}

// isStd reports whether an import path is in the standard library: its
// first element has no dot (as the go command decides for GOROOT paths).
func isStd(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

// pkg is what the check needs of one `go list -json` record.
type pkg struct {
	ImportPath string
	Imports    []string
}

// checkImports applies the table to the packages of module mod and
// returns every violation, one sentence each.
func checkImports(mod string, pkgs []pkg) []string {
	var violations []string
	for _, p := range pkgs {
		rel, ok := relative(mod, p.ImportPath)
		if !ok {
			continue
		}
		pol, ok := policyOf(rel)
		if !ok {
			violations = append(violations, fmt.Sprintf("%s: no import rule covers this package", p.ImportPath))
			continue
		}
		for _, imp := range p.Imports {
			if imp == mod && !pol.anything {
				violations = append(violations, fmt.Sprintf("%s imports the composition root: only cmd/* and test code may", rel))
				continue
			}
			if pol.anything {
				continue
			}
			if impRel, inModule := relative(mod, imp); inModule {
				if impRel != rel && !allows(pol.module, impRel) {
					violations = append(violations, fmt.Sprintf("%s imports %s: %s", rel, impRel, pol.row))
				}
				continue
			}
			if isStd(imp) {
				if slices.Contains(pol.bannedStd, imp) {
					violations = append(violations, fmt.Sprintf("%s imports %s: %s", rel, imp, pol.row))
				}
				continue
			}
			if !allows(pol.thirdParty, imp) {
				violations = append(violations, fmt.Sprintf("%s imports %s: %s", rel, imp, pol.row))
			}
		}
	}
	return violations
}

// relative is path relative to module mod ("" for the root), if inside it.
func relative(mod, path string) (string, bool) {
	if path == mod {
		return "", true
	}
	return strings.CutPrefix(path, mod+"/")
}

// listPackages runs `go list -json` over every package of the module in
// dir and decodes its records.
func listPackages(t *testing.T, dir string) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-json=ImportPath,Imports,Error", "./...")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list in %s: %v\n%s", dir, err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			pkg
			Error *struct{ Err string }
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		if p.Error != nil {
			t.Fatalf("go list: %s: %s", p.ImportPath, p.Error.Err)
		}
		pkgs = append(pkgs, p.pkg)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages; the test is not looking at the module", len(pkgs))
	}
	return pkgs
}

func TestPackagesImportOnlyWhatTheArchitectureAllows(t *testing.T) {
	for _, v := range checkImports(module, listPackages(t, "..")) {
		t.Error(v)
	}
}

// A forbidden import planted in a copy of the module is caught by the same
// check over `go list` of the copy: an adapter importing another adapter's
// driver, and an adapter importing the use cases (which a prefix match on
// "domain" let through).
func TestTheCheckCatchesImportsPlantedInACopyOfTheModule(t *testing.T) {
	dir := t.TempDir()
	copyModule(t, "..", dir)
	baseline := checkImports(module, listPackages(t, dir))

	plant(t, filepath.Join(dir, "adapters/httpapi/planted.go"), "httpapi", "go.etcd.io/bbolt")
	plant(t, filepath.Join(dir, "adapters/gateway/planted.go"), "gateway", module+"/domain/usecase")
	got := checkImports(module, listPackages(t, dir))

	var planted []string
	for _, v := range got {
		if !slices.Contains(baseline, v) {
			planted = append(planted, v)
		}
	}
	all := strings.Join(planted, "\n")
	if len(planted) != 2 ||
		!strings.Contains(all, "adapters/gateway imports domain/usecase: ") ||
		!strings.Contains(all, "adapters/httpapi imports go.etcd.io/bbolt: ") {
		t.Fatalf("the planted imports were not both caught; new violations: %q", planted)
	}
}

// plant writes a file of package name into path that imports imp.
func plant(t *testing.T, path, name, imp string) {
	t.Helper()
	src := fmt.Sprintf("package %s\n\nimport _ %q\n", name, imp)
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
}

// copyModule copies the module's files from src to dst, without .git.
func copyModule(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir() && d.Name() == ".git":
			return filepath.SkipDir
		case d.IsDir():
			return os.MkdirAll(target, 0o700)
		case !d.Type().IsRegular():
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o600)
	})
	if err != nil {
		t.Fatalf("copy the module: %v", err)
	}
}

// The table's rules, one case each, on made-up import lists.
func TestTheRulesAreExactPerLayerAndPerAdapter(t *testing.T) {
	m := func(rel string) string { return module + "/" + rel }
	cases := []struct {
		name    string
		pkg     string
		imports []string
		ok      bool
	}{
		{"the domain uses the standard library", "domain", []string{"time", "crypto/sha256"}, true},
		{"the domain serves no HTTP", "domain", []string{"net/http"}, false},
		{"the domain knows no port", "domain", []string{m("ports")}, false},
		{"ports know the domain", "ports", []string{m("domain")}, true},
		{"ports know no use case, though its path starts with domain", "ports", []string{m("domain/usecase")}, false},
		{"use cases know domain and ports", "domain/usecase", []string{m("domain"), m("ports")}, true},
		{"use cases know no adapter", "domain/usecase", []string{m("adapters/memstore")}, false},
		{"use cases know no third party", "domain/usecase", []string{"go.opentelemetry.io/otel"}, false},
		{"the registry lists presets", "providers", []string{m("providers/auth0"), m("providers/oidc"), m("ports")}, true},
		{"a preset builds on the generic provider", "providers/azure", []string{m("providers/oidc"), "github.com/coreos/go-oidc/v3/oidc"}, true},
		{"a preset never on another preset", "providers/azure", []string{m("providers/google")}, false},
		{"a provider never imports an adapter", "providers/oidc", []string{m("adapters/config")}, false},
		{"a provider never imports the use cases", "providers/oidc", []string{m("domain/usecase")}, false},
		{"boltstore drives bbolt", "adapters/boltstore", []string{"go.etcd.io/bbolt", "go.etcd.io/bbolt/errors", m("internal/gencache")}, true},
		{"pgstore drives pgx", "adapters/pgstore", []string{"github.com/jackc/pgx/v5/pgxpool", "github.com/jackc/pgxlisten"}, true},
		{"httpapi drives no database", "adapters/httpapi", []string{"go.etcd.io/bbolt"}, false},
		{"httpapi drives no pgx", "adapters/httpapi", []string{"github.com/jackc/pgx/v5"}, false},
		{"an adapter with a provider set declares it with Wire", "adapters/seal", []string{"github.com/google/wire", m("ports")}, true},
		{"an adapter without one does not", "adapters/boltstore", []string{"github.com/google/wire"}, false},
		{"a module path is matched by its elements", "adapters/boltstore", []string{"go.etcd.io/bboltx"}, false},
		{"adapters share the OAuth wire format", "adapters/gateway", []string{m("adapters/oauthhttp"), m("domain"), m("ports")}, true},
		{"adapters never import each other", "adapters/gateway", []string{m("adapters/httpapi")}, false},
		{"adapters never import the use cases", "adapters/gateway", []string{m("domain/usecase")}, false},
		{"adapters never import providers", "adapters/httpapi", []string{m("providers")}, false},
		{"config reads no other adapter", "adapters/config", []string{m("adapters/boltstore")}, false},
		{"the wire format imports no adapter", "adapters/oauthhttp", []string{m("adapters/httpapi")}, false},
		{"internal helpers know only the standard library", "internal/gencache", []string{"sync"}, true},
		{"internal helpers know nothing of the module", "internal/gencache", []string{m("domain")}, false},
		{"internal helpers know no third party", "internal/gencache", []string{"github.com/gorilla/mux"}, false},
		{"clientip reads Forwarded with its parser", "internal/clientip", []string{"github.com/muhlemmer/httpforwarded", "net/netip"}, true},
		{"clientip knows no other third party", "internal/clientip", []string{"github.com/gorilla/mux"}, false},
		{"the command composes the root", "cmd/oidcproxy", []string{module, m("adapters/config")}, true},
		{"test code may import anything", "test/e2e", []string{module, "go.etcd.io/bbolt"}, true},
		{"an adapter never imports the root", "adapters/httpapi", []string{module}, false},
		{"a new top-level package needs a rule", "util", []string{"fmt"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := checkImports(module, []pkg{{ImportPath: m(tc.pkg), Imports: tc.imports}})
			if tc.ok != (len(got) == 0) {
				t.Fatalf("want ok=%v, got violations %q", tc.ok, got)
			}
		})
	}
}

// Package test holds the architecture test; its subpackages hold the store
// conformance suite, the test IdPs and the end-to-end tests.
package test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/oidcproxy/oidcproxy"

// rule says which imports a group of packages may have. allowed lists
// module-relative prefixes ("domain", "ports") and third-party module
// prefixes; the standard library is governed by stdlibOK and bannedStd.
type rule struct {
	name      string
	matches   func(rel string) bool
	allowed   []string
	bannedStd []string
}

func under(prefix string) func(string) bool {
	return func(rel string) bool { return rel == prefix || strings.HasPrefix(rel, prefix+"/") }
}

// rules is ARCHITECTURE.md's import table.
var rules = []rule{
	{
		name:      "domain knows only the standard library",
		matches:   func(rel string) bool { return rel == "domain" },
		allowed:   nil,
		bannedStd: []string{"net/http", "database/sql"},
	},
	{
		name:      "ports know the domain and the standard library",
		matches:   func(rel string) bool { return rel == "ports" },
		allowed:   []string{"domain"},
		bannedStd: []string{"net/http"},
	},
	{
		name:      "use cases know the domain and the ports",
		matches:   under("domain/usecase"),
		allowed:   []string{"domain", "ports"},
		bannedStd: []string{"net/http"},
	},
	{
		name:    "the provider registry knows the providers it lists",
		matches: func(rel string) bool { return rel == "providers" },
		allowed: []string{"domain", "ports", "providers/"},
	},
	{
		name:    "providers know the domain, the ports, OIDC libraries and the generic provider",
		matches: func(rel string) bool { return strings.HasPrefix(rel, "providers/") },
		allowed: []string{"domain", "ports", "providers/oidc", "github.com/coreos/go-oidc", "golang.org/x/oauth2", "github.com/go-jose/go-jose"},
	},
	{
		name:    "the shared OAuth wire format knows only the domain and the ports",
		matches: under("adapters/oauthhttp"),
		allowed: []string{"domain", "ports"},
	},
	{
		name:    "adapters know the domain, the ports, the shared OAuth wire format and their driver libraries",
		matches: under("adapters"),
		allowed: []string{"domain", "ports", "adapters/oauthhttp", "go.etcd.io/bbolt", "github.com/gorilla/mux", "github.com/go-jose/go-jose",
			"go.yaml.in/yaml", "go.opentelemetry.io", "github.com/prometheus", "github.com/modelcontextprotocol/go-sdk"},
	},
}

type pkg struct {
	path    string
	imports []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkgs = append(pkgs, pkg{path: fields[0], imports: fields[1:]})
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages; the test is not looking at the module", len(pkgs))
	}
	return pkgs
}

func rel(path string) (string, bool) {
	if path == module {
		return "", true
	}
	r, ok := strings.CutPrefix(path, module+"/")
	return r, ok
}

func isStd(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

func allowedBy(imp string, allowed []string) bool {
	r, internal := rel(imp)
	for _, a := range allowed {
		if internal && (r == a || strings.HasPrefix(r, strings.TrimSuffix(a, "/")+"/")) {
			return true
		}
		if !internal && strings.HasPrefix(imp, a) {
			return true
		}
	}
	return false
}

func TestPackagesImportOnlyWhatTheArchitectureAllows(t *testing.T) {
	checked := 0
	for _, p := range listPackages(t) {
		r, ok := rel(p.path)
		if !ok {
			continue
		}
		for _, ru := range rules {
			if !ru.matches(r) {
				continue
			}
			checked++
			for _, imp := range p.imports {
				if isStd(imp) {
					for _, b := range ru.bannedStd {
						if imp == b {
							t.Errorf("%s imports %s: %s", r, imp, ru.name)
						}
					}
					continue
				}
				if ir, internal := rel(imp); internal && ir == r {
					continue
				}
				if !allowedBy(imp, ru.allowed) {
					t.Errorf("%s imports %s: %s", r, imp, ru.name)
				}
			}
		}
	}
	if checked < 5 {
		t.Fatalf("only %d packages matched a rule", checked)
	}
}

// TestAdaptersDoNotImportEachOther: an adapter depends inward only (the
// config adapter may read other adapters' Config types; every adapter may
// use the shared OAuth wire format of adapters/oauthhttp).
func TestAdaptersDoNotImportEachOther(t *testing.T) {
	for _, p := range listPackages(t) {
		r, _ := rel(p.path)
		if !strings.HasPrefix(r, "adapters/") {
			continue
		}
		self := strings.SplitN(r, "/", 3)[1]
		for _, imp := range p.imports {
			ir, internal := rel(imp)
			if !internal || !strings.HasPrefix(ir, "adapters/") {
				continue
			}
			other := strings.SplitN(ir, "/", 3)[1]
			if other != self && self != "config" && other != "oauthhttp" {
				t.Errorf("%s imports %s: adapters must not depend on each other", r, ir)
			}
		}
	}
}

// TestProviderPresetsDoNotImportEachOther: a preset may build on the
// generic provider, never on another preset.
func TestProviderPresetsDoNotImportEachOther(t *testing.T) {
	for _, p := range listPackages(t) {
		r, _ := rel(p.path)
		if !strings.HasPrefix(r, "providers/") {
			continue
		}
		self := strings.SplitN(r, "/", 3)[1]
		for _, imp := range p.imports {
			ir, internal := rel(imp)
			if !internal || !strings.HasPrefix(ir, "providers/") {
				continue
			}
			other := strings.SplitN(ir, "/", 3)[1]
			if other != self && other != "oidc" {
				t.Errorf("%s imports %s: presets may only build on providers/oidc", r, ir)
			}
		}
	}
}

// TestOnlyTheCommandAndBlackBoxTestsImportTheCompositionRoot keeps the root
// package a leaf of the graph.
func TestOnlyTheCommandAndBlackBoxTestsImportTheCompositionRoot(t *testing.T) {
	for _, p := range listPackages(t) {
		r, _ := rel(p.path)
		for _, imp := range p.imports {
			if imp != module {
				continue
			}
			if !strings.HasPrefix(r, "cmd/") && !strings.HasPrefix(r, "test/") {
				t.Errorf("%s imports the composition root", r)
			}
		}
	}
}

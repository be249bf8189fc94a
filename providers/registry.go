package providers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/oidcproxy/oidcproxy/ports"
	"github.com/oidcproxy/oidcproxy/providers/auth0"
	"github.com/oidcproxy/oidcproxy/providers/azure"
	"github.com/oidcproxy/oidcproxy/providers/google"
	"github.com/oidcproxy/oidcproxy/providers/oidc"
)

// Config is one provider's own settings section: a struct whose exported
// fields carry the tags the configuration reads (env, yaml, flag, help,
// default, secret), with the two methods every provider needs. The
// settings all providers share (client, callback, timeout, CONFIG_URL,
// audience, scopes, extra parameters) are not part of it: they come as
// common.
type Config interface {
	// Validate checks the section together with common and returns every
	// problem at once (errors joined), each a *oidc.SettingError naming
	// its setting, without any request.
	Validate(common oidc.Settings) error
	// Open validates, then builds the provider, fetching what it needs at
	// start-up (discovery) through client, within common.Timeout.
	Open(ctx context.Context, common oidc.Settings, client *http.Client) (ports.IdentityProvider, error)
}

// Public is a settings section that can tell when its identity provider
// signs in anyone who has an account there (Google; Entra's shared
// authorities): without an access policy that restricts admission, such
// a deployment serves the whole internet, which the operator is warned of.
type Public interface {
	// OpenToEveryone names who can sign in ("anyone with a Google
	// account"), or returns "" when the settings already confine sign-in
	// to one organisation.
	OpenToEveryone(common oidc.Settings) string
}

// OpenToEveryone asks section whether its identity provider signs in
// anyone with an account there (see Public); "" for a provider that
// cannot say, which is every private or single-organisation one.
func OpenToEveryone(section Config, common oidc.Settings) string {
	if p, ok := section.(Public); ok {
		return p.OpenToEveryone(common)
	}
	return ""
}

// Registry maps each provider name (the PROVIDER setting) to a function
// returning a new, empty settings section of that provider, as a pointer
// the configuration loader can fill. Adding a provider is one line here;
// nothing else in the module switches on provider names.
var Registry = map[string]func() Config{
	oidc.Name:   func() Config { return new(oidc.Config) },
	auth0.Name:  func() Config { return new(auth0.Config) },
	google.Name: func() Config { return new(google.Config) },
	azure.Name:  func() Config { return new(azure.Config) },
}

// NewConfig returns a new, empty settings section of the provider
// registered under name.
func NewConfig(name string) (Config, error) {
	newConfig, ok := Registry[name]
	if !ok {
		return nil, fmt.Errorf("unknown provider %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	return newConfig(), nil
}

// Open builds the provider registered under name from its settings
// section c and the common settings. A failed construction yields a nil
// interface, never a typed nil inside it.
func Open(ctx context.Context, name string, c Config, common oidc.Settings, client *http.Client) (ports.IdentityProvider, error) {
	if c == nil {
		return nil, fmt.Errorf("providers: open %s: no settings section", name)
	}
	p, err := c.Open(ctx, common, client)
	switch {
	case err != nil:
		return nil, fmt.Errorf("providers: open %s: %w", name, err)
	case p == nil:
		return nil, fmt.Errorf("providers: open %s: %w", name, errors.New("it returned neither a provider nor an error"))
	}
	return p, nil
}

// Names returns the registered provider names, sorted.
func Names() []string {
	names := make([]string, 0, len(Registry))
	for n := range Registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

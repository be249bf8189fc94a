package providers

import (
	"context"
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

// Constructor builds a provider from its settings. It fetches whatever the
// provider needs at start-up (discovery) through client, within s.Timeout.
type Constructor func(ctx context.Context, s oidc.Settings, client *http.Client) (ports.IdentityProvider, error)

// Registry maps each provider name to its constructor. Presets add one line
// each; nothing else in the module switches on provider names.
var Registry = map[string]Constructor{
	oidc.Name: func(ctx context.Context, s oidc.Settings, client *http.Client) (ports.IdentityProvider, error) {
		p, err := oidc.New(ctx, s, client)
		if err != nil {
			return nil, err // not a typed nil inside the interface
		}
		return p, nil
	},
	auth0.Name:  preset(auth0.New),
	google.Name: preset(google.New),
	azure.Name:  preset(azure.New),
}

// preset turns a preset's New, which returns its own provider type, into a
// Constructor. A failed construction yields a nil interface, not a typed
// nil inside it.
func preset[P ports.IdentityProvider](build func(context.Context, oidc.Settings, *http.Client) (P, error)) Constructor {
	return func(ctx context.Context, s oidc.Settings, client *http.Client) (ports.IdentityProvider, error) {
		p, err := build(ctx, s, client)
		if err != nil {
			return nil, err
		}
		return p, nil
	}
}

// New builds the provider registered under name.
func New(ctx context.Context, name string, s oidc.Settings, client *http.Client) (ports.IdentityProvider, error) {
	c, ok := Registry[name]
	if !ok {
		return nil, fmt.Errorf("unknown provider %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	p, err := c(ctx, s, client)
	if err != nil {
		return nil, fmt.Errorf("providers: new %s: %w", name, err)
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

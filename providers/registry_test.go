package providers_test

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/ports"
	"github.com/oidcproxy/oidcproxy/providers"
	"github.com/oidcproxy/oidcproxy/providers/oidc"
	"github.com/oidcproxy/oidcproxy/test/idp"
)

// fakeConfig is a settings section that opens nothing; a fake because the
// tests below are about the registry, not about any provider.
type fakeConfig struct{}

func (fakeConfig) Validate(oidc.Settings) error { return nil }

func (fakeConfig) Open(context.Context, oidc.Settings, *http.Client) (ports.IdentityProvider, error) {
	return nil, errors.New("fake: cannot open")
}

func TestUnknownProviderErrorListsTheKnownNamesSorted(t *testing.T) {
	// Not parallel: it adds entries to the package-level registry.
	fake := func() providers.Config { return fakeConfig{} }
	providers.Registry["zzz"] = fake
	providers.Registry["aaa"] = fake
	t.Cleanup(func() {
		delete(providers.Registry, "zzz")
		delete(providers.Registry, "aaa")
	})

	_, err := providers.NewConfig("okta")

	names := providers.Names()
	require.True(t, slices.IsSorted(names))
	require.Equal(t, "aaa", names[0])
	require.Equal(t, "zzz", names[len(names)-1])
	require.Subset(t, names, []string{"auth0", "azure", "google", "oidc"})
	require.EqualError(t, err, `unknown provider "okta" (known: `+strings.Join(names, ", ")+`)`)
}

func TestEverySettingsSectionIsANewPointerToAStructTheLoaderCanFill(t *testing.T) {
	t.Parallel()
	for _, name := range providers.Names() {
		first, second := providers.Registry[name](), providers.Registry[name]()
		v := reflect.ValueOf(first)
		require.Equal(t, reflect.Pointer, v.Kind(), name)
		require.Equal(t, reflect.Struct, v.Elem().Kind(), name)
		if v.Elem().Type().Size() > 0 { // new of a zero-size type may return one address
			require.NotSame(t, first, second, "%s: each call makes a new section", name)
		}
		for i := range v.Elem().NumField() {
			f := v.Elem().Type().Field(i)
			require.NotEmpty(t, f.Tag.Get("env"), "%s: %s needs the configuration's tags", name, f.Name)
		}
	}
}

func TestOIDCIsRegistered(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	c, err := providers.NewConfig("oidc")
	require.NoError(t, err)

	p, err := providers.Open(t.Context(), "oidc", c, oidc.Settings{
		ConfigURL:    f.ConfigURL,
		ClientID:     f.ClientID,
		ClientSecret: f.ClientSecret,
		RedirectURL:  "http://127.0.0.1:9/auth/callback",
		Timeout:      3 * time.Second,
	}, &http.Client{})

	require.NoError(t, err)
	require.Equal(t, "oidc", p.Name())
	require.Implements(t, (*ports.Refresher)(nil), p)
	require.Implements(t, (*ports.Revoker)(nil), p)
	require.Implements(t, (*ports.ReadinessChecker)(nil), p)
}

func TestAFailedConstructionReturnsANilProvider(t *testing.T) {
	t.Parallel()
	for _, name := range providers.Names() {
		c, err := providers.NewConfig(name)
		require.NoError(t, err)

		p, err := providers.Open(t.Context(), name, c, oidc.Settings{}, &http.Client{})

		require.ErrorContains(t, err, "providers: open "+name+": "+name+": ")
		require.True(t, p == nil, "%s: a typed nil inside the interface would pass a nil check by callers", name)
	}
}

func TestValidationNamesEachProblemsSetting(t *testing.T) {
	t.Parallel()
	for _, name := range providers.Names() {
		c, err := providers.NewConfig(name)
		require.NoError(t, err)

		// Nothing set: most providers miss something; whatever they
		// report must be settings, named as the operator names them.
		err = c.Validate(oidc.Settings{})

		for _, e := range leaves(err) {
			var se *oidc.SettingError
			require.ErrorAs(t, e, &se, "%s: %v", name, e)
			require.Regexp(t, `^[A-Z0-9_]+$`, se.Setting, "%s: the setting without the OIDC_PROXY_ prefix", name)
			require.NotEmpty(t, se.Problem, name)
		}
	}
}

// leaves flattens an errors.Join tree.
func leaves(err error) []error {
	if err == nil {
		return nil
	}
	if multi, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range multi.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	}
	return []error{err}
}

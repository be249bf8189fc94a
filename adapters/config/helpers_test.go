package config_test

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/config"
)

// widgetConfig is a provider's own settings section as the loader sees one:
// tagged fields of every kind, a default and a secret among them. The
// configuration knows no real provider; these tests give it made-up ones.
type widgetConfig struct {
	Host    string            `env:"WIDGET_HOST" yaml:"widget_host" flag:"widget-host" help:"Host of the widget, for provider widget."`
	Token   string            `env:"WIDGET_TOKEN" yaml:"widget_token" flag:"widget-token" secret:"true" help:"Token of the widget, for provider widget."`
	Retries int               `env:"WIDGET_RETRIES" yaml:"widget_retries" flag:"widget-retries" default:"3" help:"Retries, for provider widget."`
	Fast    bool              `env:"WIDGET_FAST" yaml:"widget_fast" flag:"widget-fast" default:"false" help:"Whether it is fast, for provider widget."`
	Wait    time.Duration     `env:"WIDGET_WAIT" yaml:"widget_wait" flag:"widget-wait" default:"2s" help:"Wait, for provider widget."`
	Tags    []string          `env:"WIDGET_TAGS" yaml:"widget_tags" flag:"widget-tags" help:"Tags, for provider widget."`
	Params  map[string]string `env:"WIDGET_PARAMS" yaml:"widget_params" flag:"widget-params" help:"Parameters, for provider widget."`
	// internal has no tags: it is no setting.
	internal int
}

// plainConfig is a provider without settings of its own, like oidc.
type plainConfig struct{}

// testSections are the made-up providers the tests load with: "oidc" (the
// default PROVIDER) without settings, and "widget" with some.
var testSections = config.Sections{
	"oidc":   func() any { return new(plainConfig) },
	"widget": func() any { return new(widgetConfig) },
}

// load runs LoadFlags with a silent flag set, so tests that pass bad flags
// do not spill usage text into the test log.
func load(t *testing.T, args []string, env map[string]string) (config.Config, error) {
	t.Helper()
	return loadWith(t, testSections, args, env)
}

// loadWith is load with other sections.
func loadWith(t *testing.T, sections config.Sections, args []string, env map[string]string) (config.Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return config.LoadFlags(fs, args, func(k string) string { return env[k] }, sections)
}

// mustLoad is load for inputs that are expected to succeed.
func mustLoad(t *testing.T, args []string, env map[string]string) config.Config {
	t.Helper()
	cfg, err := load(t, args, env)
	require.NoError(t, err)
	return cfg
}

// writeFile writes content to name inside dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

// settingErrors collects every *SettingError in an error tree.
func settingErrors(err error) []*config.SettingError {
	var out []*config.SettingError
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if se, ok := err.(*config.SettingError); ok {
			out = append(out, se)
			return
		}
		if multi, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range multi.Unwrap() {
				walk(e)
			}
			return
		}
		walk(errors.Unwrap(err))
	}
	walk(err)
	return out
}

// settingNames returns the settings named by the problems in err.
func settingNames(err error) []string {
	var out []string
	for _, se := range settingErrors(err) {
		out = append(out, se.Setting)
	}
	return out
}

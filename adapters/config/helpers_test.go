package config_test

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/config"
)

// load runs LoadFlags with a silent flag set, so tests that pass bad flags
// do not spill usage text into the test log.
func load(t *testing.T, args []string, env map[string]string) (config.Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return config.LoadFlags(fs, args, func(k string) string { return env[k] })
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

package config_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy"
	"github.com/oidcproxy/oidcproxy/adapters/config"
)

// configurationDoc is docs/configuration.md, seen from this package's
// directory (where go test runs).
var configurationDoc = filepath.Join("..", "..", "docs", "configuration.md")

// updateDocsEnv, set to 1, makes TestConfigurationDocIsCurrent rewrite the
// document instead of comparing it. It lies outside the OIDC_PROXY_
// namespace on purpose: it is not a setting.
const updateDocsEnv = "OIDCPROXY_UPDATE_DOCS"

// realSections are the registered providers' sections: the reference
// documents the program's settings, which only the composition root knows.
var realSections = oidcproxy.ProviderSections()

func TestConfigurationDocIsCurrent(t *testing.T) {
	want := config.Markdown(realSections)
	if os.Getenv(updateDocsEnv) == "1" {
		require.NoError(t, os.WriteFile(configurationDoc, []byte(want), 0o644))
		t.Logf("rewrote %s", configurationDoc)
		return
	}
	got, err := os.ReadFile(configurationDoc)
	require.NoError(t, err, "docs/configuration.md is missing; create it with:\n\t%s=1 go test ./adapters/config -run TestConfigurationDocIsCurrent", updateDocsEnv)
	if string(got) == want {
		return
	}
	line, gotLine, wantLine := firstDifference(string(got), want)
	t.Fatalf("docs/configuration.md differs from config.Markdown(realSections) (the Config struct tags or markdown.go changed).\n"+
		"First difference at line %d:\n\tfile:      %q\n\tgenerated: %q\n"+
		"Regenerate it with:\n\t%s=1 go test ./adapters/config -run TestConfigurationDocIsCurrent",
		line, gotLine, wantLine, updateDocsEnv)
}

// firstDifference returns the first line (1-based) on which a and b differ,
// with that line of each ("" past the end).
func firstDifference(a, b string) (int, string, string) {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; ; i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y || i >= len(al) || i >= len(bl) {
			return i + 1, x, y
		}
	}
}

func TestTheReferenceDocumentsEverySettingOnceWithAllItsNames(t *testing.T) {
	doc := config.Markdown(realSections)
	for _, f := range config.Fields(realSections) {
		heading := "\n### `" + f.Env + "`\n"
		require.Equal(t, 1, strings.Count(doc, heading), "%s needs exactly one entry", f.Env)

		entry := doc[strings.Index(doc, heading)+len(heading):]
		if end := strings.Index(entry, "\n#"); end >= 0 {
			entry = entry[:end]
		}
		require.Contains(t, entry, f.Help, f.Env)
		require.Contains(t, entry, "- flag: `--"+f.Flag+"`", f.Env)
		require.Contains(t, entry, "- YAML key: `"+f.YAML+"`", f.Env)
		if f.Default != "" {
			require.Contains(t, entry, "- default: `"+f.Default+"`", f.Env)
		} else {
			require.Contains(t, entry, "- default: none", f.Env)
		}
		if f.Secret {
			require.Contains(t, entry, "- secret: yes", f.Env)
			require.Contains(t, entry, "`"+f.FileEnv+"`, `--"+f.FileFlag+"`, `"+f.FileYAML+"`", f.Env)
		} else {
			require.NotContains(t, entry, "secret: yes", f.Env)
			require.NotContains(t, entry, "from a file", f.Env)
		}

		row := regexp.MustCompile("(?m)^\\| \\[`" + regexp.QuoteMeta(f.Env) + "`\\]\\(#" + strings.ToLower(f.Env) + "\\).*\\|$")
		require.Len(t, row.FindAllString(doc, -1), 1, "%s needs one row in the index, linking to its entry", f.Env)
	}
}

func TestEverySettingHasAHomeInANamedSection(t *testing.T) {
	// A new setting lands under "Other settings" until markdown.go places
	// it; this test makes sure someone does.
	require.NotContains(t, config.Markdown(realSections), "\n## Other settings\n",
		"add the new setting to a section in adapters/config/markdown.go, then regenerate docs/configuration.md")
}

func TestTheExampleFileInTheReferenceLoadsAndValidates(t *testing.T) {
	doc := config.Markdown(realSections)
	m := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindStringSubmatch(doc)
	require.NotNil(t, m, "the reference has a YAML example")

	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "secrets"), 0o700))
	writeFile(t, dir, "secrets/client_secret", "s3cret\n")
	writeFile(t, dir, "secrets/encryption_key", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")
	path := writeFile(t, dir, "oidcproxy.yaml", m[1])

	cfg := mustLoad(t, []string{"--config", path}, nil)
	require.Equal(t, "s3cret", cfg.ClientSecret, "relative secret files resolve against the YAML file")
	require.NoError(t, cfg.Validate(config.ValidateOptions{RequireUpstream: true}))
}

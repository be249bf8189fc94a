package config_test

import (
	"errors"
	"flag"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/config"
	"github.com/oidcproxy/oidcproxy/domain"
)

func TestLoadWithoutAnySourceReturnsTheDefaults(t *testing.T) {
	cfg, err := config.Load(nil, func(string) string { return "" }, testSections)
	require.NoError(t, err)

	require.Equal(t, ":8000", cfg.ListenAddr)
	require.Equal(t, "oidc", cfg.Provider)
	require.True(t, cfg.Strict)
	require.Equal(t, 10, cfg.TimeoutSeconds)
	require.Equal(t, "/auth/callback", cfg.RedirectPath)
	require.Equal(t, domain.AuthClientSecretBasic, cfg.TokenEndpointAuthMethod)
	require.Equal(t, "oidcproxy.db", cfg.StorePath)
	require.Equal(t, time.Hour, cfg.AccessTokenTTL)
	require.Equal(t, 720*time.Hour, cfg.RefreshTokenTTL)
	require.Equal(t, domain.ConsentAlways, cfg.Consent)
	require.Equal(t, "/mcp", cfg.MCPPath)
	require.Equal(t, "127.0.0.1:9090", cfg.AdminAddr)
	require.Equal(t, "info", cfg.LogLevel)
	require.Equal(t, "json", cfg.LogFormat)
	require.False(t, cfg.ForwardResource)
	require.Empty(t, cfg.BaseURL)
	require.Empty(t, cfg.ClientSecret)
	require.Empty(t, cfg.RequiredScopes)
	require.Empty(t, cfg.ExtraAuthorizeParams)
}

func TestFlagsBeatEnvironmentBeatsFileBeatsDefaults(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "oidcproxy.yaml", `
listen_addr: ":8001"
strict: false
required_scopes: [from-file]
access_token_ttl: 2h
`)
	fileEnv := map[string]string{config.ConfigEnv: file}
	envEnv := map[string]string{
		config.ConfigEnv:                    file,
		"OIDC_PROXY_LISTEN_ADDR":            ":8002",
		"OIDC_PROXY_STRICT":                 "true",
		"OIDC_PROXY_REQUIRED_SCOPES":        "env-a env-b",
		"OIDC_PROXY_ACCESS_TOKEN_TTL":       "3h",
		"OIDC_PROXY_UNRELATED_IGNORED_NAME": "x",
	}
	flags := []string{"--listen-addr", ":8003", "--strict=false", "--required-scopes", "from-flag", "--access-token-ttl=4h"}

	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		wantListen string
		wantStrict bool
		wantScopes []string
		wantTTL    time.Duration
	}{
		{"defaults apply when nothing is set", nil, nil, ":8000", true, nil, time.Hour},
		{"the file beats the defaults", nil, fileEnv, ":8001", false, []string{"from-file"}, 2 * time.Hour},
		{"the environment beats the file", nil, envEnv, ":8002", true, []string{"env-a", "env-b"}, 3 * time.Hour},
		{"flags beat the environment", flags, envEnv, ":8003", false, []string{"from-flag"}, 4 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustLoad(t, tt.args, tt.env)
			require.Equal(t, tt.wantListen, cfg.ListenAddr)
			require.Equal(t, tt.wantStrict, cfg.Strict)
			if tt.wantScopes == nil {
				require.Empty(t, cfg.RequiredScopes)
			} else {
				require.Equal(t, tt.wantScopes, cfg.RequiredScopes)
			}
			require.Equal(t, tt.wantTTL, cfg.AccessTokenTTL)
		})
	}
}

func TestTheConfigFlagBeatsTheConfigEnvironmentVariable(t *testing.T) {
	dir := t.TempDir()
	fromEnv := writeFile(t, dir, "env.yaml", "client_id: from-env-file\n")
	fromFlag := writeFile(t, dir, "flag.yaml", "client_id: from-flag-file\n")

	cfg := mustLoad(t, []string{"--config", fromFlag}, map[string]string{config.ConfigEnv: fromEnv})
	require.Equal(t, "from-flag-file", cfg.ClientID)

	cfg = mustLoad(t, nil, map[string]string{config.ConfigEnv: fromEnv})
	require.Equal(t, "from-env-file", cfg.ClientID)
}

func TestSecretsAreReadFromFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "yaml-secret", "from-yaml-file\n")
	abs := writeFile(t, dir, "secret", "from-a-file\r\n")
	yamlFile := writeFile(t, dir, "oidcproxy.yaml", "client_secret_file: yaml-secret\n")

	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"from OIDC_PROXY_CLIENT_SECRET_FILE", nil, map[string]string{"OIDC_PROXY_CLIENT_SECRET_FILE": abs}, "from-a-file"},
		{"from --client-secret-file", []string{"--client-secret-file", abs}, nil, "from-a-file"},
		{"from client_secret_file in YAML, relative to the YAML file", nil, map[string]string{config.ConfigEnv: yamlFile}, "from-yaml-file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustLoad(t, tt.args, tt.env)
			require.Equal(t, tt.want, cfg.ClientSecret)
		})
	}
}

func TestTheDatabaseURLIsReadFromAMountedSecretFile(t *testing.T) {
	path := writeFile(t, t.TempDir(), "database-url", "postgres://app:pw@db.example.com/oidcproxy\n")
	cfg := mustLoad(t, nil, map[string]string{"OIDC_PROXY_DATABASE_URL_FILE": path})
	require.Equal(t, "postgres://app:pw@db.example.com/oidcproxy", cfg.DatabaseURL)
	require.NotContains(t, cfg.String(), "pw@")
}

func TestASecretFileAtAHigherLevelBeatsAValueAtALowerOne(t *testing.T) {
	dir := t.TempDir()
	secret := writeFile(t, dir, "secret", "from-the-file\n")
	yamlFile := writeFile(t, dir, "oidcproxy.yaml", "client_secret: from-yaml\n")

	cfg := mustLoad(t, nil, map[string]string{config.ConfigEnv: yamlFile, "OIDC_PROXY_CLIENT_SECRET_FILE": secret})
	require.Equal(t, "from-the-file", cfg.ClientSecret)

	cfg = mustLoad(t, []string{"--client-secret", "from-flag"}, map[string]string{"OIDC_PROXY_CLIENT_SECRET_FILE": secret})
	require.Equal(t, "from-flag", cfg.ClientSecret)
}

func TestSettingASecretAndItsFileAtTheSameLevelIsAnError(t *testing.T) {
	dir := t.TempDir()
	secret := writeFile(t, dir, "secret", "x\n")
	yamlFile := writeFile(t, dir, "oidcproxy.yaml", "client_secret: inline-value\nclient_secret_file: secret\n")

	tests := []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"in the environment", nil, map[string]string{"OIDC_PROXY_CLIENT_SECRET": "inline-value", "OIDC_PROXY_CLIENT_SECRET_FILE": secret}},
		{"in flags", []string{"--client-secret=inline-value", "--client-secret-file", secret}, nil},
		{"in the YAML file", nil, map[string]string{config.ConfigEnv: yamlFile}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.args, tt.env)
			require.Error(t, err)
			require.Equal(t, []string{"OIDC_PROXY_CLIENT_SECRET"}, settingNames(err))
			require.ErrorContains(t, err, "set only one")
			require.NotContains(t, err.Error(), "inline-value")
		})
	}
}

func TestAnEmptyOrMissingSecretFileIsAnError(t *testing.T) {
	dir := t.TempDir()
	empty := writeFile(t, dir, "empty", "\n")

	_, err := load(t, nil, map[string]string{"OIDC_PROXY_ENCRYPTION_KEY_FILE": empty})
	require.ErrorContains(t, err, "is empty")
	require.Equal(t, []string{"OIDC_PROXY_ENCRYPTION_KEY"}, settingNames(err))

	_, err = load(t, []string{"--encryption-key-file", filepath.Join(dir, "missing")}, nil)
	require.ErrorContains(t, err, "no such file")
}

func TestTheYAMLFileIsDecodedStrictly(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    string
	}{
		{"an unknown key", "base_url: https://x.example\nclient_sercet: oops\n", `unknown setting "client_sercet"`},
		{"a file key for a setting that is not secret", "client_id_file: /x\n", `unknown setting "client_id_file"`},
		{"a key given twice", "client_id: a\nclient_id: b\n", `"client_id" appears twice`},
		{"a list where one value belongs", "client_id: [a, b]\n", "must be a single value"},
		{"a mapping where a list belongs", "required_scopes: {a: b}\n", "must be a list"},
		{"a list where a mapping belongs", "extra_token_params: [a]\n", "must be a mapping"},
		{"a bad boolean", "strict: maybe\n", `"maybe" is not a boolean`},
		{"a bad number", "timeout_seconds: ten\n", `"ten" is not a whole number`},
		{"a bad duration", "access_token_ttl: 3600\n", `"3600" is not a Go duration`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "oidcproxy.yaml", tt.content)
			_, err := load(t, nil, map[string]string{config.ConfigEnv: path})
			require.ErrorContains(t, err, tt.want)
			require.ErrorContains(t, err, "line ")
		})
	}
}

func TestAYAMLFileThatIsNotOneMappingIsRejected(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    string
	}{
		{"a top-level list", "- a\n- b\n", "top level must be a mapping"},
		{"two documents", "client_id: a\n---\nclient_id: b\n", "exactly one YAML document"},
		{"broken syntax", "client_id: [a\n", "parse config file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "oidcproxy.yaml", tt.content)
			_, err := load(t, nil, map[string]string{config.ConfigEnv: path})
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestAnEmptyYAMLFileSetsNothing(t *testing.T) {
	for _, content := range []string{"", "# only a comment\n", "---\n"} {
		path := writeFile(t, t.TempDir(), "oidcproxy.yaml", content)
		cfg := mustLoad(t, nil, map[string]string{config.ConfigEnv: path})
		require.Equal(t, ":8000", cfg.ListenAddr)
	}
}

func TestAMissingConfigFileIsAnError(t *testing.T) {
	_, err := load(t, []string{"--config", filepath.Join(t.TempDir(), "missing.yaml")}, nil)
	require.ErrorContains(t, err, "read config file")
}

func TestEveryLoadProblemIsReportedAtOnce(t *testing.T) {
	path := writeFile(t, t.TempDir(), "oidcproxy.yaml", "timeout_seconds: ten\nnot_a_setting: 1\n")
	_, err := load(t,
		[]string{"--access-token-ttl", "soon"},
		map[string]string{config.ConfigEnv: path, "OIDC_PROXY_STRICT": "maybe", "OIDC_PROXY_EXTRA_TOKEN_PARAMS": "novalue"})
	require.Error(t, err)
	require.ElementsMatch(t, []string{
		"OIDC_PROXY_TIMEOUT_SECONDS", "OIDC_PROXY_STRICT", "OIDC_PROXY_EXTRA_TOKEN_PARAMS", "OIDC_PROXY_ACCESS_TOKEN_TTL",
	}, settingNames(err))
	require.ErrorContains(t, err, `unknown setting "not_a_setting"`)
	require.ErrorContains(t, err, "flag --access-token-ttl")
	require.ErrorContains(t, err, "environment")
}

func TestListsAcceptCommasSpacesSequencesAndRepeatedFlags(t *testing.T) {
	path := writeFile(t, t.TempDir(), "oidcproxy.yaml", "scopes_supported: [openid, ' email ']\nallowed_client_redirect_uris: 'http://localhost:*, https://*.example.com/cb'\n")

	cfg := mustLoad(t, nil, map[string]string{config.ConfigEnv: path})
	require.Equal(t, []string{"openid", "email"}, cfg.ScopesSupported)
	require.Equal(t, []string{"http://localhost:*", "https://*.example.com/cb"}, cfg.AllowedClientRedirectURIs)

	cfg = mustLoad(t, nil, map[string]string{"OIDC_PROXY_REQUIRED_SCOPES": "read:a, write:b  admin"})
	require.Equal(t, []string{"read:a", "write:b", "admin"}, cfg.RequiredScopes)

	cfg = mustLoad(t, []string{"--required-scopes", "a", "--required-scopes", "b c"}, nil)
	require.Equal(t, []string{"a", "b", "c"}, cfg.RequiredScopes)
}

func TestMapsComeFromPairsOrAYAMLMapping(t *testing.T) {
	path := writeFile(t, t.TempDir(), "oidcproxy.yaml", "extra_authorize_params:\n  prompt: consent\n  claims: '{\"a\":1,\"b\":2}'\n")

	cfg := mustLoad(t, nil, map[string]string{config.ConfigEnv: path})
	require.Equal(t, map[string]string{"prompt": "consent", "claims": `{"a":1,"b":2}`}, cfg.ExtraAuthorizeParams)

	cfg = mustLoad(t, nil, map[string]string{"OIDC_PROXY_EXTRA_AUTHORIZE_PARAMS": "prompt=login, access_type=offline,empty="})
	require.Equal(t, map[string]string{"prompt": "login", "access_type": "offline", "empty": ""}, cfg.ExtraAuthorizeParams)

	cfg = mustLoad(t, []string{"--extra-token-params", "a=1", "--extra-token-params=b=2"}, nil)
	require.Equal(t, map[string]string{"a": "1", "b": "2"}, cfg.ExtraTokenParams)
}

func TestMalformedMapsAreRejected(t *testing.T) {
	for _, raw := range []string{"novalue", "=x", "a=1,a=2"} {
		_, err := load(t, nil, map[string]string{"OIDC_PROXY_EXTRA_TOKEN_PARAMS": raw})
		require.Error(t, err, raw)
		require.Equal(t, []string{"OIDC_PROXY_EXTRA_TOKEN_PARAMS"}, settingNames(err))
	}
}

func TestABareBooleanFlagMeansTrue(t *testing.T) {
	cfg := mustLoad(t, []string{"--forward-resource"}, map[string]string{"OIDC_PROXY_FORWARD_RESOURCE": "false"})
	require.True(t, cfg.ForwardResource)
}

func TestTheIssuerDefaultsToTheBaseURLWithoutItsTrailingSlash(t *testing.T) {
	cfg := mustLoad(t, nil, map[string]string{"OIDC_PROXY_BASE_URL": "https://proxy.example.com/"})
	require.Equal(t, "https://proxy.example.com", cfg.BaseURL)
	require.Equal(t, "https://proxy.example.com", cfg.IssuerURL)

	cfg = mustLoad(t, nil, map[string]string{
		"OIDC_PROXY_BASE_URL":   "https://proxy.example.com",
		"OIDC_PROXY_ISSUER_URL": "https://issuer.example.com/tenant",
	})
	require.Equal(t, "https://issuer.example.com/tenant", cfg.IssuerURL)
}

func TestUnknownFlagsAndStrayArgumentsAreRejected(t *testing.T) {
	_, err := load(t, []string{"--no-such-flag"}, nil)
	require.ErrorContains(t, err, "no-such-flag")

	// Load itself writes flag errors to standard error; a stray positional
	// argument is reported without quoting it, as it may be half a secret.
	_, err = config.Load([]string{"--client-id", "id", "secret-half"}, func(string) string { return "" }, testSections)
	require.ErrorContains(t, err, "unexpected argument")
	require.NotContains(t, err.Error(), "secret-half")
}

func TestAskingForHelpReturnsFlagErrHelp(t *testing.T) {
	_, err := load(t, []string{"-h"}, nil)
	require.True(t, errors.Is(err, flag.ErrHelp))
}

func TestLoadFlagsLeavesPositionalArgumentsAndForeignFlagsToTheCaller(t *testing.T) {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	quiet := fs.Bool("quiet", false, "print nothing")

	cfg, err := config.LoadFlags(fs, []string{"--quiet", "--client-id", "id", "extra"}, func(string) string { return "" }, testSections)
	require.NoError(t, err)
	require.True(t, *quiet)
	require.Equal(t, "id", cfg.ClientID)
	require.Equal(t, []string{"extra"}, fs.Args())
}

func TestLoadFlagsRefusesAFlagSetThatAlreadyDefinesASetting(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.String("base-url", "", "")
	_, err := config.LoadFlags(fs, nil, func(string) string { return "" }, testSections)
	require.ErrorContains(t, err, "-base-url is already defined")
}

func TestLoadErrorsNeverQuoteASecret(t *testing.T) {
	path := writeFile(t, t.TempDir(), "oidcproxy.yaml", "client_secret: [hunter2-value]\nencryption_key: {k: hunter3-value}\n")
	_, err := load(t, nil, map[string]string{config.ConfigEnv: path})
	require.Equal(t, []string{"OIDC_PROXY_CLIENT_SECRET", "OIDC_PROXY_ENCRYPTION_KEY"}, settingNames(err))
	require.NotContains(t, err.Error(), "hunter2")
	require.NotContains(t, err.Error(), "hunter3")
}

func TestAProvidersSectionIsLoadedFromEverySourceWithTheSamePrecedence(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "token", "from-a-file\n")
	file := writeFile(t, dir, "oidcproxy.yaml", `
provider: widget
widget_host: file.example
widget_retries: 5
widget_tags: [x, y]
widget_params: {a: "1"}
widget_token_file: token
`)
	env := map[string]string{config.ConfigEnv: file, "OIDC_PROXY_WIDGET_HOST": "env.example", "OIDC_PROXY_WIDGET_WAIT": "5s"}
	args := []string{"--widget-host", "flag.example", "--widget-fast"}

	cfg := mustLoad(t, args, env)

	require.Equal(t, "widget", cfg.Provider)
	w, ok := cfg.ProviderSection().(*widgetConfig)
	require.True(t, ok, "the selected provider's section, as its own type")
	require.Same(t, cfg.ProviderSections["widget"], cfg.ProviderSection())
	require.Equal(t, widgetConfig{Host: "flag.example", Token: "from-a-file", Retries: 5, Fast: true, Wait: 5 * time.Second,
		Tags: []string{"x", "y"}, Params: map[string]string{"a": "1"}}, *w)
	require.IsType(t, &plainConfig{}, cfg.ProviderSections["oidc"], "every provider's section is loaded")
}

func TestASectionsProblemsAreReportedWithEveryOtherOne(t *testing.T) {
	_, err := load(t, []string{"--widget-retries", "many"}, map[string]string{
		"OIDC_PROXY_WIDGET_FAST": "maybe", "OIDC_PROXY_TIMEOUT_SECONDS": "ten",
	})

	require.ElementsMatch(t, []string{"OIDC_PROXY_WIDGET_RETRIES", "OIDC_PROXY_WIDGET_FAST", "OIDC_PROXY_TIMEOUT_SECONDS"}, settingNames(err))
}

func TestAnUnknownYAMLKeyIsRefusedButEverySectionsKeysAreKnown(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "oidcproxy.yaml", "provider: oidc\nwidget_host: h\nwidgit_host: h\n")

	_, err := load(t, nil, map[string]string{config.ConfigEnv: file})

	require.ErrorContains(t, err, `unknown setting "widgit_host"`)
	require.NotContains(t, err.Error(), `"widget_host"`, "a key of another provider than the selected one is a known setting")
}

func TestWithoutSectionsAPresetsSettingIsUnknown(t *testing.T) {
	_, err := loadWith(t, nil, []string{"--widget-host", "h"}, nil)
	require.ErrorContains(t, err, "flag provided but not defined: -widget-host")

	cfg, err := loadWith(t, nil, nil, nil)
	require.NoError(t, err)
	require.Nil(t, cfg.ProviderSections)
	require.Nil(t, cfg.ProviderSection())
}

func TestSectionsThatTheLoaderCannotFillAreRefused(t *testing.T) {
	type clash struct {
		Addr string `env:"LISTEN_ADDR" yaml:"other_addr" flag:"other-addr" help:"Clashes."`
	}
	type unparsable struct {
		Ratio float64 `env:"RATIO" yaml:"ratio" flag:"ratio" help:"Cannot be parsed."`
	}
	cases := map[string]struct {
		section func() any
		want    string
	}{
		"not a pointer":            {func() any { return widgetConfig{} }, "provider bad: its settings section must be a pointer to a struct"},
		"a nil pointer":            {func() any { return (*widgetConfig)(nil) }, "provider bad: its settings section must be a pointer to a struct"},
		"a name that exists":       {func() any { return new(clash) }, "provider bad: OIDC_PROXY_LISTEN_ADDR is already a setting of Config"},
		"a type it cannot parse":   {func() any { return new(unparsable) }, "provider bad: setting OIDC_PROXY_RATIO has unsupported float64"},
		"another provider's names": {func() any { return new(widgetConfig) }, "provider widget: flag --widget-host is already a setting of provider bad"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := loadWith(t, config.Sections{"widget": testSections["widget"], "bad": tc.section}, nil, nil)
			require.ErrorContains(t, err, "config: settings sections: ")
			require.ErrorContains(t, err, tc.want)
		})
	}
}

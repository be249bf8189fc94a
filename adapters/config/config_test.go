package config_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/config"
)

// taggedFields returns the fields of t that are settings (an env tag).
func taggedFields(t reflect.Type) []reflect.StructField {
	var out []reflect.StructField
	for i := range t.NumField() {
		if sf := t.Field(i); sf.Tag.Get("env") != "" {
			out = append(out, sf)
		}
	}
	return out
}

func TestFieldsDescribesEveryStructFieldWithConsistentNames(t *testing.T) {
	// Config's settings in declaration order, then each section's by
	// provider name (oidc has none).
	var structFields []reflect.StructField
	var structs []string
	for _, typ := range []reflect.Type{reflect.TypeFor[config.Config](), reflect.TypeFor[widgetConfig]()} {
		for _, sf := range taggedFields(typ) {
			structFields = append(structFields, sf)
			structs = append(structs, typ.String())
		}
	}
	fields := config.Fields(testSections)
	require.Len(t, fields, len(structFields))
	require.Len(t, taggedFields(reflect.TypeFor[config.Config]()), reflect.TypeFor[config.Config]().NumField()-1,
		"every Config field is a setting but ProviderSections")

	seen := map[string]bool{}
	for i, f := range fields {
		sf := structFields[i]
		require.Equal(t, sf.Name, f.Name, "Fields follows declaration order")
		require.Equal(t, strings.TrimPrefix(structs[i], "config."), f.Struct)
		if f.Struct == "config_test.widgetConfig" {
			require.Equal(t, "widget", f.Provider)
		} else {
			require.Empty(t, f.Provider)
		}
		for _, tag := range []string{"env", "yaml", "flag", "help"} {
			require.NotEmpty(t, sf.Tag.Get(tag), "%s has no %s tag", sf.Name, tag)
		}

		name := strings.TrimPrefix(f.Env, config.EnvPrefix)
		require.Equal(t, strings.ToLower(name), f.YAML, f.Name)
		require.Equal(t, strings.ReplaceAll(strings.ToLower(name), "_", "-"), f.Flag, f.Name)
		require.Contains(t, []string{"string", "bool", "int", "duration", "list", "map"}, f.Type, f.Name)

		// One clear sentence: starts upper case, ends with a period, no
		// second sentence.
		require.Regexp(t, `^[A-Z]`, f.Help, f.Name)
		require.True(t, strings.HasSuffix(f.Help, "."), f.Name)
		require.NotContains(t, strings.TrimSuffix(f.Help, "."), ". ", f.Name)

		if f.Secret {
			require.Equal(t, f.Env+"_FILE", f.FileEnv)
			require.Equal(t, f.YAML+"_file", f.FileYAML)
			require.Equal(t, f.Flag+"-file", f.FileFlag)
			require.Equal(t, "string", f.Type, "secrets are strings so parse errors never quote them")
		} else {
			require.Empty(t, f.FileEnv+f.FileYAML+f.FileFlag, f.Name)
		}

		for _, n := range []string{f.Env, "yaml:" + f.YAML, "flag:" + f.Flag} {
			require.False(t, seen[n], "duplicate name %s", n)
			seen[n] = true
		}
	}
}

func TestTheProviderSettingNamesTheProvidersLoadKnows(t *testing.T) {
	help := func(fields []config.Field) string {
		for _, f := range fields {
			if f.Name == "Provider" {
				return f.Help
			}
		}
		return ""
	}
	require.Equal(t, "Kind of upstream identity provider: oidc or widget.", help(config.Fields(testSections)))
	three := config.Sections{"b": testSections["oidc"], "a": testSections["oidc"], "c": testSections["oidc"]}
	require.Equal(t, "Kind of upstream identity provider: a, b or c.", help(config.Fields(three)))
}

func TestOnlyTheCredentialsAreSecret(t *testing.T) {
	var secrets []string
	for _, f := range config.Fields(nil) {
		if f.Secret {
			secrets = append(secrets, f.Env)
		}
	}
	require.Equal(t, []string{
		"OIDC_PROXY_CLIENT_SECRET", "OIDC_PROXY_DATABASE_URL", "OIDC_PROXY_ENCRYPTION_KEY", "OIDC_PROXY_ADMIN_TOKEN", "OIDC_PROXY_INTROSPECTION_SECRET",
	}, secrets)
}

func TestEveryDefaultIsWhatLoadProduces(t *testing.T) {
	// value reads a field of Config or of its provider's section.
	value := func(cfg config.Config, f config.Field) any {
		v := reflect.ValueOf(cfg)
		if f.Provider != "" {
			v = reflect.ValueOf(cfg.ProviderSections[f.Provider]).Elem()
		}
		return v.FieldByName(f.Name).Interface()
	}
	cfg := mustLoad(t, nil, nil)
	for _, f := range config.Fields(testSections) {
		if f.Default == "" {
			continue
		}
		// Loading the default text through the environment must give the
		// same value as loading nothing: the tag and the loader agree.
		viaEnv := mustLoad(t, nil, map[string]string{f.Env: f.Default})
		require.Equal(t, value(viaEnv, f), value(cfg, f), f.Name)
	}
	require.Equal(t, 3, cfg.ProviderSections["widget"].(*widgetConfig).Retries, "a section's defaults apply too")
}

func TestRedactedHidesSetSecretsAndNothingElse(t *testing.T) {
	cfg := mustLoad(t, nil, map[string]string{
		"OIDC_PROXY_CLIENT_ID":       "proxy-client",
		"OIDC_PROXY_CLIENT_SECRET":   "hunter2",
		"OIDC_PROXY_REQUIRED_SCOPES": "a b",
	})
	red := cfg.Redacted()

	require.Equal(t, config.Redaction, red.ClientSecret)
	require.Empty(t, red.EncryptionKey, "an unset secret stays visibly unset")
	require.Equal(t, "proxy-client", red.ClientID)
	require.Equal(t, []string{"a", "b"}, red.RequiredScopes)
	require.Equal(t, "hunter2", cfg.ClientSecret, "the original is untouched")

	red.RequiredScopes[0] = "changed"
	require.Equal(t, "a", cfg.RequiredScopes[0], "the copy shares no memory")
}

func TestRedactedHidesTheSectionsSecretsInACopy(t *testing.T) {
	cfg := mustLoad(t, nil, map[string]string{
		"OIDC_PROXY_WIDGET_TOKEN": "hunter2",
		"OIDC_PROXY_WIDGET_HOST":  "widget.example",
		"OIDC_PROXY_WIDGET_TAGS":  "a b",
	})
	red := cfg.Redacted()

	widget := red.ProviderSections["widget"].(*widgetConfig)
	require.Equal(t, config.Redaction, widget.Token)
	require.Equal(t, "widget.example", widget.Host)
	require.Equal(t, "hunter2", cfg.ProviderSections["widget"].(*widgetConfig).Token, "the original is untouched")
	widget.Tags[0] = "changed"
	require.Equal(t, "a", cfg.ProviderSections["widget"].(*widgetConfig).Tags[0], "the copy shares no memory")
}

func TestLoggingOrPrintingAConfigShowsTheSelectedProvidersSettingsWithoutSecrets(t *testing.T) {
	env := map[string]string{"OIDC_PROXY_WIDGET_TOKEN": "hunter2", "OIDC_PROXY_WIDGET_HOST": "widget.example"}
	for _, provider := range []string{"widget", "oidc"} {
		env["OIDC_PROXY_PROVIDER"] = provider
		cfg := mustLoad(t, nil, env)
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("starting", "config", cfg)
		printed := buf.String() + fmt.Sprintf("%v", cfg)

		require.NotContains(t, printed, "hunter2")
		if provider == "widget" {
			require.Contains(t, buf.String(), `"widget_token":"[redacted]"`)
			require.Contains(t, printed, "widget_host=widget.example")
		} else {
			require.NotContains(t, printed, "widget_host", "only the selected provider's settings")
		}
	}
}

func TestLoggingOrPrintingAConfigNeverWritesASecret(t *testing.T) {
	cfg := mustLoad(t, nil, map[string]string{
		"OIDC_PROXY_CLIENT_SECRET":  "hunter2",
		"OIDC_PROXY_ENCRYPTION_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
	})
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("starting", "config", cfg)

	require.NotContains(t, buf.String(), "hunter2")
	require.NotContains(t, buf.String(), "AAECAwQF")
	require.Contains(t, buf.String(), `"client_secret":"[redacted]"`)
	require.Contains(t, buf.String(), `"listen_addr":":8000"`)

	printed := fmt.Sprintf("%v %s", cfg, cfg)
	require.NotContains(t, printed, "hunter2")
	require.NotContains(t, printed, "AAECAwQF")
	require.Contains(t, printed, "client_secret=[redacted]")
}

func TestEncryptionKeyBytesAcceptsEveryBase64FormOf32Bytes(t *testing.T) {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(250 + i) // exercises the characters where std and url differ
	}
	tests := []struct {
		name    string
		encoded string
		wantErr string
	}{
		{"standard, padded", base64.StdEncoding.EncodeToString(key), ""},
		{"standard, unpadded", base64.RawStdEncoding.EncodeToString(key), ""},
		{"url, padded", base64.URLEncoding.EncodeToString(key), ""},
		{"url, unpadded", base64.RawURLEncoding.EncodeToString(key), ""},
		{"with a trailing newline", base64.StdEncoding.EncodeToString(key) + "\n", ""},
		{"16 bytes", base64.StdEncoding.EncodeToString(key[:16]), "exactly 32 bytes"},
		{"33 bytes", base64.StdEncoding.EncodeToString(append(key, 1)), "exactly 32 bytes"},
		{"not base64", "this is not base64!", "not valid base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.Config{EncryptionKey: tt.encoded}.EncryptionKeyBytes()
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.NotContains(t, err.Error(), strings.TrimSpace(tt.encoded))
				return
			}
			require.NoError(t, err)
			require.Equal(t, key, got)
		})
	}
}

func TestAnUnsetEncryptionKeyDecodesToNothing(t *testing.T) {
	got, err := config.Config{}.EncryptionKeyBytes()
	require.NoError(t, err)
	require.Nil(t, got)
}

func TestDerivedURLsJoinTheBaseURLAndPaths(t *testing.T) {
	cfg := config.Config{BaseURL: "https://proxy.example.com/", RedirectPath: "/auth/callback", MCPPath: "/mcp"}
	require.Equal(t, "https://proxy.example.com/auth/callback", cfg.RedirectURL())
	require.Equal(t, "https://proxy.example.com/mcp", cfg.Resource())
	require.Equal(t, "https://proxy.example.com", cfg.Issuer(), "without ISSUER_URL the base URL is the issuer")

	cfg.IssuerURL = "https://issuer.example.com/t"
	require.Equal(t, "https://issuer.example.com/t", cfg.Issuer())
}

func TestTheGatewayAcceptsTheBaseURLsOriginAndTheAllowedOnes(t *testing.T) {
	cfg := config.Config{BaseURL: "https://proxy.example.com:8443/prefix/", AllowedOrigins: []string{"https://app.example.com"}}
	require.Equal(t, []string{"https://proxy.example.com:8443", "https://app.example.com"}, cfg.GatewayOrigins())
	cfg.AllowedOrigins = nil
	require.Equal(t, []string{"https://proxy.example.com:8443"}, cfg.GatewayOrigins())
}

func TestTimeoutConvertsSeconds(t *testing.T) {
	require.Equal(t, 15*time.Second, config.Config{TimeoutSeconds: 15}.Timeout())
}

func TestSupportedScopesDefaultToTheOIDCScopesPlusTheRequiredOnes(t *testing.T) {
	cfg := config.Config{RequiredScopes: []string{"email", "api:read"}}
	require.Equal(t, []string{"openid", "profile", "email", "offline_access", "api:read"}, cfg.SupportedScopes())

	cfg.ScopesSupported = []string{"openid", "mcp"}
	require.Equal(t, []string{"openid", "mcp"}, cfg.SupportedScopes())
}

func TestRedirectPatternsParseTheAllowList(t *testing.T) {
	cfg := config.Config{AllowedClientRedirectURIs: []string{"http://localhost:*", "https://*.example.com/cb"}}
	patterns, err := cfg.RedirectPatterns()
	require.NoError(t, err)
	require.Len(t, patterns, 2)
	require.Equal(t, "https://*.example.com/cb", patterns[1].String())

	cfg.AllowedClientRedirectURIs = append(cfg.AllowedClientRedirectURIs, "javascript:*")
	_, err = cfg.RedirectPatterns()
	require.ErrorContains(t, err, "never allowed")
}

func TestLevelMapsLogLevelToSlog(t *testing.T) {
	require.Equal(t, slog.LevelDebug, config.Config{LogLevel: "debug"}.Level())
	require.Equal(t, slog.LevelWarn, config.Config{LogLevel: "warn"}.Level())
	require.Equal(t, slog.LevelInfo, config.Config{LogLevel: "WARN+2"}.Level(), "only the documented names count")
}

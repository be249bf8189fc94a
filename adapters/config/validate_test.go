package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/config"
	"github.com/oidcproxy/oidcproxy/domain"
)

const secretValue = "s3cr3t-client-secret-value"

var serveOptions = config.ValidateOptions{
	KnownProviders:  []string{"oidc", "auth0", "google", "azure"},
	RequireUpstream: true,
}

// validConfig is a production-like configuration that passes Validate,
// loaded through the real loader so the defaults are the shipped ones.
func validConfig(t *testing.T) config.Config {
	t.Helper()
	cfg := mustLoad(t, nil, map[string]string{
		"OIDC_PROXY_BASE_URL":       "https://proxy.example.com",
		"OIDC_PROXY_CLIENT_ID":      "proxy-client",
		"OIDC_PROXY_CLIENT_SECRET":  secretValue,
		"OIDC_PROXY_CONFIG_URL":     "https://idp.example.com/.well-known/openid-configuration",
		"OIDC_PROXY_ENCRYPTION_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		"OIDC_PROXY_MCP_UPSTREAM":   "http://mcp-backend:3000/mcp",
	})
	require.NoError(t, cfg.Validate(serveOptions))
	return cfg
}

func TestValidConfigurationsPass(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*config.Config)
		opts   config.ValidateOptions
	}{
		{"the baseline", func(*config.Config) {}, serveOptions},
		{"http on a loopback host", func(c *config.Config) {
			c.BaseURL, c.IssuerURL = "http://127.0.0.1:8000", "http://localhost:8000"
			c.ConfigURL = "http://[::1]:9999/.well-known/openid-configuration"
		}, serveOptions},
		{"an issuer with a path, distinct from the base URL", func(c *config.Config) { c.IssuerURL = "https://issuer.example.com/tenant-a" }, serveOptions},
		{"a public upstream client without a secret", func(c *config.Config) {
			c.TokenEndpointAuthMethod, c.ClientSecret = domain.AuthNone, ""
		}, serveOptions},
		{"dev mode without upstream settings", func(c *config.Config) { c.ClientID, c.ClientSecret, c.ConfigURL = "", "", "" },
			config.ValidateOptions{RequireUpstream: false}},
		{"auth0 with a domain", func(c *config.Config) {
			c.Provider, c.ConfigURL, c.Auth0Domain, c.Audience = "auth0", "", "example.us.auth0.com", "https://mcp.example.com"
		}, serveOptions},
		{"auth0 with only a discovery URL", func(c *config.Config) { c.Provider, c.Audience = "auth0", "https://mcp.example.com" }, serveOptions},
		{"azure with a tenant", func(c *config.Config) {
			c.Provider, c.ConfigURL, c.AzureTenantID = "azure", "", "0b1d4f6e-1111-4a2b-9c3d-123456789abc"
			c.RequiredScopes = []string{"mcp.access"}
			c.AzureAuthority = "https://login.microsoftonline.us"
		}, serveOptions},
		{"google without a discovery URL", func(c *config.Config) { c.Provider, c.ConfigURL = "google", "" }, serveOptions},
		{"any provider when the registry is not given", func(c *config.Config) { c.Provider = "custom" },
			config.ValidateOptions{RequireUpstream: true}},
		{"ephemeral ports on both listeners", func(c *config.Config) { c.ListenAddr, c.AdminAddr = "127.0.0.1:0", "127.0.0.1:0" }, serveOptions},
		{"the gateway turned off and no encryption key", func(c *config.Config) { c.MCPUpstream, c.EncryptionKey = "", "" }, serveOptions},
		{"extras within their bounds", func(c *config.Config) {
			c.Algorithm = "ES256"
			c.ScopesSupported = []string{"openid", "mcp:tools"}
			c.ExtraAuthorizeParams = map[string]string{"prompt": "consent"}
			c.AllowedClientRedirectURIs = []string{"http://localhost:*", "https://*.example.com/cb"}
			c.Consent, c.LogLevel, c.LogFormat = domain.ConsentRemember, "debug", "text"
		}, serveOptions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig(t)
			tt.mutate(&cfg)
			require.NoError(t, cfg.Validate(tt.opts))
		})
	}
}

func TestEveryValidationRuleRejectsABadValue(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*config.Config)
		setting string
		want    string
	}{
		{"BASE_URL is required", func(c *config.Config) { c.BaseURL, c.IssuerURL = "", "" }, "BASE_URL", "is required"},
		{"BASE_URL must be absolute", func(c *config.Config) { c.BaseURL, c.IssuerURL = "proxy.example.com", "" }, "BASE_URL", "absolute http or https URL"},
		{"BASE_URL must be http(s)", func(c *config.Config) { c.BaseURL, c.IssuerURL = "ftp://proxy.example.com", "" }, "BASE_URL", "absolute http or https URL"},
		{"BASE_URL scheme must be lower case", func(c *config.Config) { c.BaseURL, c.IssuerURL = "HTTPS://proxy.example.com", "" }, "BASE_URL", "absolute http or https URL"},
		{"BASE_URL must use https off loopback", func(c *config.Config) { c.BaseURL, c.IssuerURL = "http://proxy.example.com", "" }, "BASE_URL", "must use https"},
		{"BASE_URL has no query", func(c *config.Config) { c.BaseURL, c.IssuerURL = "https://proxy.example.com?a=b", "" }, "BASE_URL", "query"},
		{"BASE_URL has no fragment", func(c *config.Config) { c.BaseURL, c.IssuerURL = "https://proxy.example.com#top", "" }, "BASE_URL", "fragment"},
		{"BASE_URL has no user information", func(c *config.Config) { c.BaseURL, c.IssuerURL = "https://u:p@proxy.example.com", "" }, "BASE_URL", "user information"},
		{"ISSUER_URL has no trailing slash", func(c *config.Config) { c.IssuerURL = "https://proxy.example.com/" }, "ISSUER_URL", "byte for byte"},
		{"ISSUER_URL must use https off loopback", func(c *config.Config) { c.IssuerURL = "http://issuer.example.com" }, "ISSUER_URL", "must use https"},
		{"PROVIDER is required", func(c *config.Config) { c.Provider = "" }, "PROVIDER", "is required"},
		{"PROVIDER must be registered", func(c *config.Config) { c.Provider = "okta" }, "PROVIDER", "known providers: oidc, auth0, google, azure"},
		{"CLIENT_ID is required upstream", func(c *config.Config) { c.ClientID = "" }, "CLIENT_ID", "is required"},
		{"CLIENT_SECRET is required for a confidential client", func(c *config.Config) { c.ClientSecret = "" }, "CLIENT_SECRET", "is required unless"},
		{"CONFIG_URL is required for oidc", func(c *config.Config) { c.ConfigURL = "" }, "CONFIG_URL", "is required for provider oidc"},
		{"CONFIG_URL must use https off loopback", func(c *config.Config) { c.ConfigURL = "http://idp.example.com/.well-known/openid-configuration" }, "CONFIG_URL", "must use https"},
		{"auth0 needs a domain or a discovery URL", func(c *config.Config) { c.Provider, c.ConfigURL, c.Audience = "auth0", "", "https://api" }, "AUTH0_DOMAIN", "is required for provider auth0"},
		{"auth0 needs an audience", func(c *config.Config) { c.Provider = "auth0" }, "AUDIENCE", "is required for provider auth0"},
		{"azure needs an API scope", func(c *config.Config) { c.Provider, c.AzureTenantID = "azure", "common" }, "REQUIRED_SCOPES", "is required for provider azure"},
		{"AUTH0_DOMAIN is a bare host", func(c *config.Config) { c.Auth0Domain = "https://example.auth0.com/" }, "AUTH0_DOMAIN", "bare host name"},
		{"azure needs a tenant", func(c *config.Config) { c.Provider, c.RequiredScopes = "azure", []string{"mcp.access"} }, "AZURE_TENANT_ID", "is required for provider azure"},
		{"AZURE_TENANT_ID cannot rewrite the URL", func(c *config.Config) { c.AzureTenantID = "common/../evil" }, "AZURE_TENANT_ID", "tenant ID"},
		{"AZURE_AUTHORITY is a URL", func(c *config.Config) { c.AzureAuthority = "login.microsoftonline.us" }, "AZURE_AUTHORITY", "absolute http or https URL"},
		{"TOKEN_ENDPOINT_AUTH_METHOD is an enum", func(c *config.Config) { c.TokenEndpointAuthMethod = "private_key_jwt" }, "TOKEN_ENDPOINT_AUTH_METHOD", "not one of"},
		{"TIMEOUT_SECONDS is at least 1", func(c *config.Config) { c.TimeoutSeconds = 0 }, "TIMEOUT_SECONDS", "between 1 and 300"},
		{"TIMEOUT_SECONDS is at most 300", func(c *config.Config) { c.TimeoutSeconds = 301 }, "TIMEOUT_SECONDS", "between 1 and 300"},
		{"ALGORITHM is never none", func(c *config.Config) { c.Algorithm = "none" }, "ALGORITHM", "asymmetric JWS algorithm"},
		{"ALGORITHM is never HMAC", func(c *config.Config) { c.Algorithm = "HS256" }, "ALGORITHM", "asymmetric JWS algorithm"},
		{"REQUIRED_SCOPES follow the scope grammar", func(c *config.Config) { c.RequiredScopes = []string{`a"b`} }, "REQUIRED_SCOPES", "not a valid scope"},
		{"SCOPES_SUPPORTED follow the scope grammar", func(c *config.Config) { c.ScopesSupported = []string{`a\b`} }, "SCOPES_SUPPORTED", "not a valid scope"},
		{"EXTRA_AUTHORIZE_PARAMS cannot override PKCE", func(c *config.Config) { c.ExtraAuthorizeParams = map[string]string{"code_challenge": "x"} }, "EXTRA_AUTHORIZE_PARAMS", "cannot be overridden"},
		{"EXTRA_TOKEN_PARAMS cannot override PKCE", func(c *config.Config) { c.ExtraTokenParams = map[string]string{"code_verifier": "x"} }, "EXTRA_TOKEN_PARAMS", "cannot be overridden"},
		{"EXTRA_TOKEN_PARAMS have names", func(c *config.Config) { c.ExtraTokenParams = map[string]string{"": "x"} }, "EXTRA_TOKEN_PARAMS", "name is empty"},
		{"REDIRECT_PATH is required", func(c *config.Config) { c.RedirectPath = "" }, "REDIRECT_PATH", "is required"},
		{"REDIRECT_PATH starts with a slash", func(c *config.Config) { c.RedirectPath = "auth/callback" }, "REDIRECT_PATH", `start with "/"`},
		{"REDIRECT_PATH is not the root", func(c *config.Config) { c.RedirectPath = "/" }, "REDIRECT_PATH", "every endpoint"},
		{"REDIRECT_PATH is clean", func(c *config.Config) { c.RedirectPath = "/auth/callback/" }, "REDIRECT_PATH", "clean path"},
		{"REDIRECT_PATH needs no encoding", func(c *config.Config) { c.RedirectPath = "/auth/call back" }, "REDIRECT_PATH", "percent-encoding"},
		{"REDIRECT_PATH is not /token", func(c *config.Config) { c.RedirectPath = "/token" }, "REDIRECT_PATH", "collides with the proxy's own endpoint /token"},
		{"REDIRECT_PATH is not below /.well-known", func(c *config.Config) { c.RedirectPath = "/.well-known/cb" }, "REDIRECT_PATH", "/.well-known"},
		{"REDIRECT_PATH is outside MCP_PATH", func(c *config.Config) { c.RedirectPath = "/mcp/callback" }, "REDIRECT_PATH", "outside OIDC_PROXY_MCP_PATH"},
		{"MCP_PATH is not the root", func(c *config.Config) { c.MCPPath = "/" }, "MCP_PATH", "every endpoint"},
		{"MCP_PATH does not contain an endpoint", func(c *config.Config) { c.MCPPath = "/.well-known" }, "MCP_PATH", "collides"},
		{"MCP_PATH is not /authorize", func(c *config.Config) { c.MCPPath = "/authorize" }, "MCP_PATH", "collides"},
		{"MCP_PATH has no dot-segments", func(c *config.Config) { c.MCPPath = "/x/../mcp" }, "MCP_PATH", "clean path"},
		{"ALLOWED_CLIENT_REDIRECT_URIS parse", func(c *config.Config) { c.AllowedClientRedirectURIs = []string{"https://a*.example.com/cb"} }, "ALLOWED_CLIENT_REDIRECT_URIS", "leading"},
		{"ALLOWED_CLIENT_REDIRECT_URIS never allow javascript", func(c *config.Config) { c.AllowedClientRedirectURIs = []string{"javascript:*"} }, "ALLOWED_CLIENT_REDIRECT_URIS", "never allowed"},
		{"CONSENT is an enum", func(c *config.Config) { c.Consent = "never" }, "CONSENT", "not one of always, remember, off"},
		{"MAX_BODY_BYTES is positive", func(c *config.Config) { c.MaxBodyBytes = 0 }, "MAX_BODY_BYTES", "between 1 and"},
		{"GATEWAY_BODY_TIMEOUT is at least a second", func(c *config.Config) { c.GatewayBodyTimeout = 0 }, "GATEWAY_BODY_TIMEOUT", "between 1s and 10m0s"},
		{"GATEWAY_BODY_TIMEOUT is at most ten minutes", func(c *config.Config) { c.GatewayBodyTimeout = time.Hour }, "GATEWAY_BODY_TIMEOUT", "between 1s and 10m0s"},
		{"MCP_UPSTREAM_IDLE_TIMEOUT is not zero (forever)", func(c *config.Config) { c.MCPUpstreamIdleTimeout = 0 }, "MCP_UPSTREAM_IDLE_TIMEOUT", "between 100ms and 10m0s"},
		{"MCP_UPSTREAM_IDLE_TIMEOUT is at most ten minutes", func(c *config.Config) { c.MCPUpstreamIdleTimeout = time.Hour }, "MCP_UPSTREAM_IDLE_TIMEOUT", "between 100ms and 10m0s"},
		{"USER_HEADER is required", func(c *config.Config) { c.UserHeader = "" }, "USER_HEADER", "must name a header"},
		{"USER_HEADER is a token", func(c *config.Config) { c.UserHeader = "X User" }, "USER_HEADER", "not a valid HTTP header name"},
		{"EMAIL_HEADER is not Authorization", func(c *config.Config) { c.EmailHeader = "Authorization" }, "EMAIL_HEADER", "must not overwrite"},
		{"UPSTREAM_TOKEN_HEADER differs from USER_HEADER", func(c *config.Config) { c.UpstreamTokenHeader = "x-forwarded-user" }, "UPSTREAM_TOKEN_HEADER", "must differ"},
		{"ALLOWED_ORIGINS are origins", func(c *config.Config) { c.AllowedOrigins = []string{"https://app.example.com/path"} }, "ALLOWED_ORIGINS", "must be an origin"},
		{"STORE_PATH is required", func(c *config.Config) { c.StorePath = "" }, "STORE_PATH", "is required"},
		{"ENCRYPTION_KEY is base64", func(c *config.Config) { c.EncryptionKey = "not base64 at all!" }, "ENCRYPTION_KEY", "not valid base64"},
		{"ENCRYPTION_KEY is 32 bytes", func(c *config.Config) { c.EncryptionKey = "AAECAwQFBgcICQoLDA0ODw==" }, "ENCRYPTION_KEY", "exactly 32 bytes"},
		{"ACCESS_TOKEN_TTL is positive", func(c *config.Config) { c.AccessTokenTTL = 0 }, "ACCESS_TOKEN_TTL", "must be positive"},
		{"ACCESS_TOKEN_TTL is at most a day", func(c *config.Config) { c.AccessTokenTTL = 25 * time.Hour }, "ACCESS_TOKEN_TTL", "at most 24h"},
		{"REFRESH_TOKEN_TTL is positive", func(c *config.Config) { c.RefreshTokenTTL = -time.Hour }, "REFRESH_TOKEN_TTL", "must be positive"},
		{"REFRESH_TOKEN_TTL outlives the access token", func(c *config.Config) { c.RefreshTokenTTL = 30 * time.Minute }, "REFRESH_TOKEN_TTL", "not be shorter"},
		{"MCP_UPSTREAM is an absolute URL", func(c *config.Config) { c.MCPUpstream = "mcp-backend:3000" }, "MCP_UPSTREAM", "absolute http or https URL"},
		{"MCP_UPSTREAM is http(s)", func(c *config.Config) { c.MCPUpstream = "unix:///run/mcp.sock" }, "MCP_UPSTREAM", "absolute http or https URL"},
		{"LISTEN_ADDR is host:port", func(c *config.Config) { c.ListenAddr = "8000" }, "LISTEN_ADDR", "host:port"},
		{"ADMIN_ADDR has a numeric port", func(c *config.Config) { c.AdminAddr = "localhost:admin" }, "ADMIN_ADDR", "numeric port"},
		{"ADMIN_ADDR does not share the listen port", func(c *config.Config) { c.AdminAddr = "127.0.0.1:8000" }, "ADMIN_ADDR", "same port"},
		{"LOG_LEVEL is an enum", func(c *config.Config) { c.LogLevel = "verbose" }, "LOG_LEVEL", "not one of debug, info, warn, error"},
		{"LOG_FORMAT is an enum", func(c *config.Config) { c.LogFormat = "xml" }, "LOG_FORMAT", "not one of json, text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig(t)
			tt.mutate(&cfg)
			err := cfg.Validate(serveOptions)
			require.Error(t, err)
			require.Equal(t, []string{config.EnvPrefix + tt.setting}, settingNames(err))
			require.ErrorContains(t, err, config.EnvPrefix+tt.setting+": ")
			require.ErrorContains(t, err, tt.want)
			require.NotContains(t, err.Error(), secretValue)
		})
	}
}

func TestAConfigurationWithManyProblemsReportsThemAllInOneError(t *testing.T) {
	cfg := validConfig(t)
	cfg.BaseURL, cfg.IssuerURL = "http://proxy.example.com", ""
	cfg.ClientID = ""
	cfg.TimeoutSeconds = 0
	cfg.MCPPath = "/token"
	cfg.AccessTokenTTL = 48 * time.Hour
	cfg.Consent = "sometimes"
	cfg.EncryptionKey = "tooshort"
	cfg.LogFormat = "xml"

	err := cfg.Validate(serveOptions)
	require.Error(t, err)
	want := []string{"BASE_URL", "CLIENT_ID", "TIMEOUT_SECONDS", "MCP_PATH", "ACCESS_TOKEN_TTL", "CONSENT", "ENCRYPTION_KEY", "LOG_FORMAT"}
	for i := range want {
		want[i] = config.EnvPrefix + want[i]
	}
	require.ElementsMatch(t, want, settingNames(err))
	require.ErrorContains(t, err, "(8 problems)")
	// One problem per line, each starting with the setting's name.
	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, 9)
	for _, line := range lines[1:] {
		require.True(t, strings.HasPrefix(line, config.EnvPrefix), line)
	}
}

func TestValidationErrorsNeverContainSecretValues(t *testing.T) {
	cfg := validConfig(t)
	cfg.EncryptionKey = "hunter2-not-a-key"
	cfg.MCPUpstream = "ftp://user:hunter3-password@backend"
	cfg.BaseURL, cfg.IssuerURL = "http://user:hunter4-password@proxy.example.com", ""

	err := cfg.Validate(serveOptions)
	require.Error(t, err)
	for _, s := range []string{"hunter2", "hunter3", "hunter4", secretValue} {
		require.NotContains(t, err.Error(), s)
	}
}

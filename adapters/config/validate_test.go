package config_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/config"
	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/internal/ratelimit"
)

const secretValue = "s3cr3t-client-secret-value"

var serveOptions = config.ValidateOptions{RequireUpstream: true}

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
		{"a PostgreSQL store with its own encryption key", func(c *config.Config) {
			c.DatabaseURL = "postgres://app:" + secretValue + "@db.example.com:5432/oidcproxy?sslmode=verify-full"
		}, serveOptions},
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
		{"another provider that Load had a section for", func(c *config.Config) { c.Provider = "widget" }, serveOptions},
		{"any provider when Load had no sections", func(c *config.Config) { c.Provider, c.ProviderSections = "custom", nil },
			serveOptions},
		{"ephemeral ports on both listeners", func(c *config.Config) { c.ListenAddr, c.AdminAddr = "127.0.0.1:0", "127.0.0.1:0" }, serveOptions},
		{"an admin listener on localhost without a token", func(c *config.Config) { c.AdminAddr = "localhost:9090" }, serveOptions},
		{"an admin listener on IPv6 loopback without a token", func(c *config.Config) { c.AdminAddr = "[::1]:9090" }, serveOptions},
		{"an admin listener on every interface with a token", func(c *config.Config) { c.AdminAddr, c.AdminToken = "0.0.0.0:9090", "admin-token" }, serveOptions},
		{"request bodies within their time bounds", func(c *config.Config) { c.RequestBodyTimeout = 100 * time.Millisecond }, serveOptions},
		{"every abuse limit off", func(c *config.Config) {
			c.RateLimitRegister, c.RateLimitCIMD, c.RateLimitAuthorize, c.RateLimitToken = 0, 0, 0, 0
			c.RateLimitRevoke, c.RateLimitIntrospect, c.RateLimitGateway = 0, 0, 0
			// A burst is not read while its limit is off.
			c.RateLimitRegisterBurst, c.RateLimitGatewayBurst = 0, -1
			c.MaxClients, c.UnusedClientTTL = 0, 0
		}, serveOptions},
		{"trusted proxies and the Forwarded header", func(c *config.Config) {
			c.TrustedProxies, c.TrustedProxyHeader = []string{"10.0.0.0/8", "192.0.2.7", "fd00::/8"}, "forwarded"
		}, serveOptions},
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
		{"PROVIDER must be registered", func(c *config.Config) { c.Provider = "okta" }, "PROVIDER", `unknown provider "okta"; known providers: oidc, widget`},
		{"CLIENT_ID is required upstream", func(c *config.Config) { c.ClientID = "" }, "CLIENT_ID", "is required"},
		{"CLIENT_SECRET is required for a confidential client", func(c *config.Config) { c.ClientSecret = "" }, "CLIENT_SECRET", "is required unless"},
		{"CONFIG_URL must use https off loopback", func(c *config.Config) { c.ConfigURL = "http://idp.example.com/.well-known/openid-configuration" }, "CONFIG_URL", "must use https"},
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
		{"CLIENT_HEADER is required", func(c *config.Config) { c.ClientHeader = "" }, "CLIENT_HEADER", "must name a header"},
		{"CLIENT_HEADER differs from USER_HEADER", func(c *config.Config) { c.ClientHeader = "X-Forwarded-User" }, "CLIENT_HEADER", "must differ"},
		{"TRUSTED_ID_JAG_ISSUERS needs ID_JAG_CLIENTS", func(c *config.Config) { c.TrustedIDJAGIssuers = []string{"https://idp.example"} }, "ID_JAG_CLIENTS", "is required"},
		{"ID_JAG_CLIENTS needs TRUSTED_ID_JAG_ISSUERS", func(c *config.Config) { c.IDJAGClients = []string{"agent"} }, "TRUSTED_ID_JAG_ISSUERS", "is required"},
		{"TRUSTED_ID_JAG_ISSUERS use https", func(c *config.Config) {
			c.TrustedIDJAGIssuers, c.IDJAGClients = []string{"http://idp.example"}, []string{"agent"}
		}, "TRUSTED_ID_JAG_ISSUERS", "issuer identifier"},
		{"TRUSTED_ID_JAG_ISSUERS have no query", func(c *config.Config) {
			c.TrustedIDJAGIssuers, c.IDJAGClients = []string{"https://idp.example?tenant=1"}, []string{"agent"}
		}, "TRUSTED_ID_JAG_ISSUERS", "issuer identifier"},
		{"ID_JAG_CLIENTS are not empty", func(c *config.Config) {
			c.TrustedIDJAGIssuers, c.IDJAGClients = []string{"https://idp.example"}, []string{" "}
		}, "ID_JAG_CLIENTS", "empty"},
		{"ALLOWED_ORIGINS are origins", func(c *config.Config) { c.AllowedOrigins = []string{"https://app.example.com/path"} }, "ALLOWED_ORIGINS", "must be an origin"},
		{"STORE_PATH is required", func(c *config.Config) { c.StorePath = "" }, "STORE_PATH", "is required"},
		{"RATE_LIMIT_TOKEN is not negative", func(c *config.Config) { c.RateLimitToken = -1 }, "RATE_LIMIT_TOKEN", "between 0 (off) and 1000000"},
		{"RATE_LIMIT_GATEWAY has a ceiling", func(c *config.Config) { c.RateLimitGateway = 1_000_001 }, "RATE_LIMIT_GATEWAY", "between 0 (off) and 1000000"},
		{"RATE_LIMIT_REGISTER_BURST is at least 1", func(c *config.Config) { c.RateLimitRegisterBurst = 0 }, "RATE_LIMIT_REGISTER_BURST", "between 1 and 1000000 while"},
		{"RATE_LIMIT_CIMD_BURST has a ceiling", func(c *config.Config) { c.RateLimitCIMDBurst = 1_000_001 }, "RATE_LIMIT_CIMD_BURST", "between 1 and 1000000"},
		{"RATE_LIMIT_AUTHORIZE_BURST is at least 1", func(c *config.Config) { c.RateLimitAuthorizeBurst = -1 }, "RATE_LIMIT_AUTHORIZE_BURST", "between 1 and"},
		{"RATE_LIMIT_REVOKE_BURST is at least 1", func(c *config.Config) { c.RateLimitRevokeBurst = 0 }, "RATE_LIMIT_REVOKE_BURST", "between 1 and"},
		{"RATE_LIMIT_INTROSPECT_BURST is at least 1", func(c *config.Config) { c.RateLimitIntrospectBurst = 0 }, "RATE_LIMIT_INTROSPECT_BURST", "between 1 and"},
		{"RATE_LIMIT_TOKEN_BURST is at least 1", func(c *config.Config) { c.RateLimitTokenBurst = 0 }, "RATE_LIMIT_TOKEN_BURST", "between 1 and"},
		{"RATE_LIMIT_GATEWAY_BURST is at least 1", func(c *config.Config) { c.RateLimitGatewayBurst = 0 }, "RATE_LIMIT_GATEWAY_BURST", "between 1 and"},
		{"TRUSTED_PROXIES are prefixes or addresses", func(c *config.Config) { c.TrustedProxies = []string{"10.0.0.0/8", "lb.internal"} }, "TRUSTED_PROXIES", `"lb.internal" is neither a CIDR prefix nor an IP address`},
		{"TRUSTED_PROXIES prefixes are valid", func(c *config.Config) { c.TrustedProxies = []string{"10.0.0.0/40"} }, "TRUSTED_PROXIES", "not a CIDR prefix"},
		{"TRUSTED_PROXY_HEADER is one of two", func(c *config.Config) { c.TrustedProxyHeader = "X-Real-IP" }, "TRUSTED_PROXY_HEADER", "is not one of X-Forwarded-For, Forwarded"},
		{"MAX_CLIENTS is not negative", func(c *config.Config) { c.MaxClients = -1 }, "MAX_CLIENTS", "between 0 (no bound)"},
		{"UNUSED_CLIENT_TTL is not negative", func(c *config.Config) { c.UnusedClientTTL = -time.Hour }, "UNUSED_CLIENT_TTL", "at least 1h0m0s"},
		{"UNUSED_CLIENT_TTL outlasts a first sign-in", func(c *config.Config) { c.UnusedClientTTL = 10 * time.Minute }, "UNUSED_CLIENT_TTL", "at least 1h0m0s"},
		{"DATABASE_URL is a postgres URL", func(c *config.Config) { c.DatabaseURL = "mysql://app:" + secretValue + "@db/x" }, "DATABASE_URL", "must be a URL such as postgres://"},
		{"DATABASE_URL needs an explicit ENCRYPTION_KEY", func(c *config.Config) {
			c.DatabaseURL, c.EncryptionKey = "postgres://app:"+secretValue+"@db.example.com/oidcproxy", ""
		}, "ENCRYPTION_KEY", "is required with OIDC_PROXY_DATABASE_URL"},
		{"DATABASE_URL excludes STORE_PATH", func(c *config.Config) {
			c.DatabaseURL, c.StorePath = "postgres://app:"+secretValue+"@db.example.com/oidcproxy", "/var/lib/oidcproxy/oidcproxy.db"
		}, "STORE_PATH", "must not be set together with OIDC_PROXY_DATABASE_URL"},
		{"DATABASE_MAX_CONNS is positive", func(c *config.Config) { c.DatabaseMaxConns = 0 }, "DATABASE_MAX_CONNS", "between 1 and 1000"},
		{"DATABASE_TIMEOUT is not tiny", func(c *config.Config) { c.DatabaseTimeout = time.Millisecond }, "DATABASE_TIMEOUT", "between 100ms and 5m0s"},
		{"ENCRYPTION_KEY is base64", func(c *config.Config) { c.EncryptionKey = "not base64 at all!" }, "ENCRYPTION_KEY", "not valid base64"},
		{"ENCRYPTION_KEY is 32 bytes", func(c *config.Config) { c.EncryptionKey = "AAECAwQFBgcICQoLDA0ODw==" }, "ENCRYPTION_KEY", "exactly 32 bytes"},
		{"ACCESS_TOKEN_TTL is positive", func(c *config.Config) { c.AccessTokenTTL = 0 }, "ACCESS_TOKEN_TTL", "must be positive"},
		{"ACCESS_TOKEN_TTL is at most a day", func(c *config.Config) { c.AccessTokenTTL = 25 * time.Hour }, "ACCESS_TOKEN_TTL", "at most 24h"},
		{"REFRESH_TOKEN_TTL is positive", func(c *config.Config) { c.RefreshTokenTTL = -time.Hour }, "REFRESH_TOKEN_TTL", "must be positive"},
		{"REFRESH_TOKEN_TTL outlives the access token", func(c *config.Config) { c.RefreshTokenTTL = 30 * time.Minute }, "REFRESH_TOKEN_TTL", "not be shorter"},
		{"REFRESH_REUSE_GRACE is not negative", func(c *config.Config) { c.RefreshReuseGrace = -time.Second }, "REFRESH_REUSE_GRACE", "must not be negative"},
		{"REFRESH_REUSE_GRACE is at most ten minutes", func(c *config.Config) { c.RefreshReuseGrace = 11 * time.Minute }, "REFRESH_REUSE_GRACE", "at most 10m"},
		{"MCP_UPSTREAM is an absolute URL", func(c *config.Config) { c.MCPUpstream = "mcp-backend:3000" }, "MCP_UPSTREAM", "absolute http or https URL"},
		{"MCP_UPSTREAM is http(s)", func(c *config.Config) { c.MCPUpstream = "unix:///run/mcp.sock" }, "MCP_UPSTREAM", "absolute http or https URL"},
		{"LISTEN_ADDR is host:port", func(c *config.Config) { c.ListenAddr = "8000" }, "LISTEN_ADDR", "host:port"},
		{"ADMIN_ADDR has a numeric port", func(c *config.Config) { c.AdminAddr = "localhost:admin" }, "ADMIN_ADDR", "numeric port"},
		{"ADMIN_ADDR does not share the listen port", func(c *config.Config) { c.AdminAddr = "127.0.0.1:8000" }, "ADMIN_ADDR", "same port"},
		{"ADMIN_ADDR on every interface needs a token", func(c *config.Config) { c.AdminAddr = "0.0.0.0:9090" }, "ADMIN_ADDR", "ADMIN_TOKEN is required"},
		{"ADMIN_ADDR with an empty host needs a token", func(c *config.Config) { c.AdminAddr = ":9090" }, "ADMIN_ADDR", "ADMIN_TOKEN is required"},
		{"ADMIN_ADDR on a private address needs a token", func(c *config.Config) { c.AdminAddr = "10.0.0.5:9090" }, "ADMIN_ADDR", "not a loopback address"},
		{"ADMIN_TOKEN is a bearer token", func(c *config.Config) { c.AdminToken = "REPLACE WITH: openssl rand -base64 32" }, "ADMIN_TOKEN", "must be a bearer token"},
		{"ADMIN_ADDR on a host name needs a token", func(c *config.Config) { c.AdminAddr = "admin.internal:9090" }, "ADMIN_ADDR", "not a loopback address"},
		{"REQUEST_BODY_TIMEOUT is positive", func(c *config.Config) { c.RequestBodyTimeout = 0 }, "REQUEST_BODY_TIMEOUT", "between 100ms and 5m0s"},
		{"REQUEST_BODY_TIMEOUT is bounded", func(c *config.Config) { c.RequestBodyTimeout = time.Hour }, "REQUEST_BODY_TIMEOUT", "between 100ms and 5m0s"},
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

func TestTheSelectedProvidersRulesJoinTheOtherProblems(t *testing.T) {
	var seen []config.Config
	opts := config.ValidateOptions{RequireUpstream: true, Provider: func(c config.Config) error {
		seen = append(seen, c)
		w := c.ProviderSection().(*widgetConfig)
		if w.Host != "" {
			return nil
		}
		return errors.Join(
			&config.SettingError{Setting: config.EnvPrefix + "WIDGET_HOST", Problem: "is required for provider widget"},
			errors.New("the widget is broken"))
	}}
	cfg := validConfig(t)
	cfg.Provider = "widget"
	cfg.LogFormat = "xml"

	err := cfg.Validate(opts)

	require.Len(t, seen, 1)
	require.ElementsMatch(t, []string{"OIDC_PROXY_WIDGET_HOST", "OIDC_PROXY_PROVIDER", "OIDC_PROXY_LOG_FORMAT"}, settingNames(err))
	require.ErrorContains(t, err, "(3 problems)")
	require.ErrorContains(t, err, "OIDC_PROXY_WIDGET_HOST: is required for provider widget")
	require.ErrorContains(t, err, "OIDC_PROXY_PROVIDER: the widget is broken")

	cfg.ProviderSections["widget"].(*widgetConfig).Host = "widget.example"
	cfg.LogFormat = "json"
	require.NoError(t, cfg.Validate(opts))
}

func TestTheProvidersRulesRunOnlyForAKnownProviderAndUpstream(t *testing.T) {
	calls := 0
	provider := func(config.Config) error { calls++; return errors.New("refused") }
	cfg := validConfig(t)

	require.NoError(t, cfg.Validate(config.ValidateOptions{Provider: provider}), "not without RequireUpstream")
	cfg.Provider = "okta"
	err := cfg.Validate(config.ValidateOptions{RequireUpstream: true, Provider: provider})
	require.Equal(t, []string{"OIDC_PROXY_PROVIDER"}, settingNames(err))
	require.Zero(t, calls, "an unknown provider has no rules to run")
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

func TestTheAbuseLimitsAreOnByDefault(t *testing.T) {
	cfg := validConfig(t)
	require.Equal(t, config.RateLimits{
		Register:   ratelimit.Limit{PerMinute: 30, Burst: 20},
		CIMD:       ratelimit.Limit{PerMinute: 30, Burst: 10},
		Authorize:  ratelimit.Limit{PerMinute: 300, Burst: 100},
		Token:      ratelimit.Limit{PerMinute: 600, Burst: 200},
		Revoke:     ratelimit.Limit{PerMinute: 120, Burst: 60},
		Introspect: ratelimit.Limit{PerMinute: 3000, Burst: 600},
		Gateway:    ratelimit.Limit{PerMinute: 1200, Burst: 300},
	}, cfg.RateLimits())
	require.Equal(t, 10000, cfg.MaxClients)
	require.Equal(t, 24*time.Hour, cfg.UnusedClientTTL)

	r, err := cfg.ClientIP()
	require.NoError(t, err)
	req := httptest.NewRequest(http.MethodGet, "/token", nil)
	req.RemoteAddr = "10.1.2.3:443"
	req.Header.Set("X-Forwarded-For", "198.51.100.1")
	require.Equal(t, netip.MustParseAddr("10.1.2.3"), r.ClientIP(req), "no proxy is trusted by default")

	cfg.TrustedProxies = []string{"10.0.0.0/8"}
	r, err = cfg.ClientIP()
	require.NoError(t, err)
	require.Equal(t, netip.MustParseAddr("198.51.100.1"), r.ClientIP(req))
}

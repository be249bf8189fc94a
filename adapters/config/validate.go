package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/oidcproxy/oidcproxy/domain"
)

// SettingError is one problem with one setting. Load and Validate join
// them (errors.Join), so callers can list every problem.
type SettingError struct {
	// Setting is the environment variable, e.g. OIDC_PROXY_BASE_URL.
	Setting string
	// Problem says what is wrong; it never quotes a secret.
	Problem string
}

func (e *SettingError) Error() string { return e.Setting + ": " + e.Problem }

// ValidateOptions carries what Validate cannot know by itself.
type ValidateOptions struct {
	// KnownProviders are the names in the provider registry. When empty,
	// any non-empty PROVIDER is accepted.
	KnownProviders []string
	// RequireUpstream demands the upstream client settings (CLIENT_ID,
	// CLIENT_SECRET, discovery). False for `oidcproxy dev`, which runs its
	// own in-process provider.
	RequireUpstream bool
}

// The provider names whose preset settings Validate knows.
const (
	providerOIDC  = "oidc"
	providerAuth0 = "auth0"
	providerAzure = "azure"
)

// Bounds that keep a mistyped value from producing an unsafe deployment.
const (
	maxAccessTokenTTL = 24 * time.Hour
	maxTimeoutSeconds = 300
)

// reservedPaths are the proxy's own endpoints. REDIRECT_PATH and MCP_PATH
// must neither equal one, nor lie below one, nor contain one, because the
// gateway routes its whole subtree.
var reservedPaths = []string{
	"/authorize", "/token", "/register", "/consent", "/revoke", "/introspect",
	"/jwks.json", "/.well-known", "/healthz", "/readyz",
}

// reservedAuthorizeParams and reservedTokenParams are protocol parameters
// the proxy sets itself; letting EXTRA_*_PARAMS override them would break
// PKCE, state or client authentication toward the upstream.
var (
	reservedAuthorizeParams = []string{
		"response_type", "client_id", "redirect_uri", "state", "nonce",
		"code_challenge", "code_challenge_method", "scope",
	}
	reservedTokenParams = []string{
		"grant_type", "code", "code_verifier", "redirect_uri", "client_id",
		"client_secret", "refresh_token", "client_assertion", "client_assertion_type",
	}
)

// jwsAlgorithms are the asymmetric JWS algorithms an upstream access token
// may be signed with; "none" and the HMAC family cannot be verified with a
// provider's public keys.
var jwsAlgorithms = []string{
	"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512", "EdDSA",
}

var (
	validLogLevels  = map[string]bool{"debug": true, "info": true, "warn": true, "error": true}
	validLogFormats = map[string]bool{"json": true, "text": true}
	validAuthMethod = map[domain.AuthMethod]bool{
		domain.AuthClientSecretBasic: true, domain.AuthClientSecretPost: true, domain.AuthNone: true,
	}
)

// Validate reports every problem at once (errors.Join of *SettingError), so
// an operator fixes the file in one pass. Messages name each setting by its
// environment variable and never contain a secret value.
func (c Config) Validate(opts ValidateOptions) error {
	v := &validator{}

	v.url("BASE_URL", c.BaseURL, true)
	// ISSUER_URL defaults to BASE_URL; checking an unchanged copy would
	// report every BASE_URL problem twice.
	if issuer := c.Issuer(); c.IssuerURL != "" && issuer != c.base() {
		if v.url("ISSUER_URL", issuer, true) && strings.HasSuffix(issuer, "/") {
			v.add("ISSUER_URL", "must not end with a slash: clients compare the issuer byte for byte with the metadata "+
				"and the iss parameter (RFC 8414, RFC 9207), and some strip the slash or append paths to it")
		}
	}

	v.provider(c, opts)
	v.enumAuthMethod(c.TokenEndpointAuthMethod)
	if c.TimeoutSeconds < 1 || c.TimeoutSeconds > maxTimeoutSeconds {
		v.add("TIMEOUT_SECONDS", "must be between 1 and %d, got %d", maxTimeoutSeconds, c.TimeoutSeconds)
	}
	if c.Algorithm != "" && !slices.Contains(jwsAlgorithms, c.Algorithm) {
		v.add("ALGORITHM", "%q is not an asymmetric JWS algorithm; use one of %s", c.Algorithm, strings.Join(jwsAlgorithms, ", "))
	}
	v.scopes("REQUIRED_SCOPES", c.RequiredScopes)
	v.scopes("SCOPES_SUPPORTED", c.ScopesSupported)
	v.params("EXTRA_AUTHORIZE_PARAMS", c.ExtraAuthorizeParams, reservedAuthorizeParams)
	v.params("EXTRA_TOKEN_PARAMS", c.ExtraTokenParams, reservedTokenParams)

	redirectOK := v.routePath("REDIRECT_PATH", c.RedirectPath)
	mcpOK := v.routePath("MCP_PATH", c.MCPPath)
	if redirectOK && mcpOK && overlaps(c.RedirectPath, c.MCPPath) {
		v.add("REDIRECT_PATH", "must lie outside OIDC_PROXY_MCP_PATH (%s): the gateway would demand a bearer token on the callback", c.MCPPath)
	}
	for _, raw := range c.AllowedClientRedirectURIs {
		if _, err := domain.ParseRedirectPattern(raw); err != nil {
			v.add("ALLOWED_CLIENT_REDIRECT_URIS", "%v", err)
		}
	}
	if !c.Consent.Valid() {
		v.add("CONSENT", "%q is not one of always, remember, off", c.Consent)
	}
	v.gateway(c)

	if c.StorePath == "" {
		v.add("STORE_PATH", "is required")
	}
	if _, err := c.EncryptionKeyBytes(); err != nil {
		problem := "is not valid base64"
		if errors.Is(err, errEncryptionKeyLength) {
			problem = "does not decode to exactly 32 bytes"
		}
		v.add("ENCRYPTION_KEY", "%s; generate a key with `openssl rand -base64 32`", problem)
	}
	v.durations(c)

	if c.MCPUpstream != "" {
		v.url("MCP_UPSTREAM", c.MCPUpstream, false)
	}
	listenOK := v.hostPort("LISTEN_ADDR", c.ListenAddr)
	adminOK := v.hostPort("ADMIN_ADDR", c.AdminAddr)
	if listenOK && adminOK && addrsCollide(c.ListenAddr, c.AdminAddr) {
		v.add("ADMIN_ADDR", "must not use the same port as OIDC_PROXY_LISTEN_ADDR (%s)", c.ListenAddr)
	}

	if !validLogLevels[c.LogLevel] {
		v.add("LOG_LEVEL", "%q is not one of debug, info, warn, error", c.LogLevel)
	}
	if !validLogFormats[c.LogFormat] {
		v.add("LOG_FORMAT", "%q is not one of json, text", c.LogFormat)
	}

	if len(v.errs) == 0 {
		return nil
	}
	return fmt.Errorf("config: invalid configuration (%s):\n%w", problems(len(v.errs)), errors.Join(v.errs...))
}

// problems renders a problem count for the first line of a joined error.
func problems(n int) string {
	if n == 1 {
		return "1 problem"
	}
	return strconv.Itoa(n) + " problems"
}

type validator struct{ errs []error }

// add records a problem with the setting whose name follows EnvPrefix.
func (v *validator) add(name, format string, args ...any) {
	v.errs = append(v.errs, &SettingError{Setting: EnvPrefix + name, Problem: fmt.Sprintf(format, args...)})
}

// url checks an absolute http(s) URL without user information, query or
// fragment; secure demands https unless the host is a loopback address. The
// value is never quoted: a URL can carry a password. It reports whether the
// URL passed.
func (v *validator) url(name, raw string, secure bool) bool {
	n := len(v.errs)
	if raw == "" {
		v.add(name, "is required")
		return false
	}
	u, err := url.Parse(raw)
	// The prefix check (not u.Scheme, which url.Parse lower-cases) keeps
	// "HTTPS://" out, since the issuer is compared byte for byte.
	if err != nil || !(strings.HasPrefix(raw, "https://") || strings.HasPrefix(raw, "http://")) ||
		u.Host == "" || u.Hostname() == "" {
		v.add(name, "must be an absolute http or https URL such as https://proxy.example.com")
		return false
	}
	if u.User != nil {
		v.add(name, "must not contain user information")
	}
	if u.RawQuery != "" || u.ForceQuery {
		v.add(name, "must not contain a query")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		v.add(name, "must not contain a fragment")
	}
	if secure && u.Scheme == "http" && !domain.IsLoopbackHost(u.Hostname()) {
		v.add(name, "must use https unless the host is a loopback address such as localhost or 127.0.0.1")
	}
	return len(v.errs) == n
}

func (v *validator) provider(c Config, opts ValidateOptions) {
	switch {
	case c.Provider == "":
		v.add("PROVIDER", "is required")
	case len(opts.KnownProviders) > 0 && !slices.Contains(opts.KnownProviders, c.Provider):
		v.add("PROVIDER", "unknown provider %q; known providers: %s", c.Provider, strings.Join(opts.KnownProviders, ", "))
	}
	if c.ConfigURL != "" {
		v.url("CONFIG_URL", c.ConfigURL, true)
	}
	if c.Auth0Domain != "" {
		if u, err := url.Parse("https://" + c.Auth0Domain); err != nil || u.Host != c.Auth0Domain ||
			u.Hostname() == "" || u.Path != "" || u.User != nil {
			v.add("AUTH0_DOMAIN", "must be a bare host name such as example.us.auth0.com, without scheme or path")
		}
	}
	if c.AzureTenantID != "" && !isTenantID(c.AzureTenantID) {
		v.add("AZURE_TENANT_ID", "must be a tenant ID, a domain name, or one of common, organizations, consumers")
	}
	if c.AzureAuthority != "" {
		v.url("AZURE_AUTHORITY", c.AzureAuthority, true)
	}

	if !opts.RequireUpstream {
		return
	}
	if c.ClientID == "" {
		v.add("CLIENT_ID", "is required: the client ID of the proxy's client at the upstream provider")
	}
	if c.ClientSecret == "" && c.TokenEndpointAuthMethod != domain.AuthNone {
		v.add("CLIENT_SECRET", "is required unless OIDC_PROXY_TOKEN_ENDPOINT_AUTH_METHOD is none (also settable through OIDC_PROXY_CLIENT_SECRET_FILE)")
	}
	switch c.Provider {
	case providerOIDC:
		if c.ConfigURL == "" {
			v.add("CONFIG_URL", "is required for provider oidc: the upstream's discovery URL, such as https://idp.example.com/.well-known/openid-configuration")
		}
	case providerAuth0:
		if c.Auth0Domain == "" && c.ConfigURL == "" {
			v.add("AUTH0_DOMAIN", "is required for provider auth0 unless OIDC_PROXY_CONFIG_URL is set")
		}
		if c.Audience == "" {
			v.add("AUDIENCE", "is required for provider auth0: without an API audience Auth0 issues opaque access tokens that cannot be verified")
		}
	case providerAzure:
		if c.AzureTenantID == "" {
			v.add("AZURE_TENANT_ID", "is required for provider azure")
		}
		if len(c.RequiredScopes) == 0 {
			v.add("REQUIRED_SCOPES", "is required for provider azure: name at least one scope of your app's API (e.g. mcp.access), or Entra issues a Graph token that cannot be verified")
		}
	}
}

// isTenantID accepts what Entra puts in the authority path: a GUID, a
// domain or a well-known name. Anything else could rewrite the URL.
func isTenantID(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return !strings.HasPrefix(s, ".") && !strings.Contains(s, "..")
}

func (v *validator) enumAuthMethod(m domain.AuthMethod) {
	if !validAuthMethod[m] {
		v.add("TOKEN_ENDPOINT_AUTH_METHOD", "%q is not one of client_secret_basic, client_secret_post, none", m)
	}
}

// scopes checks each entry against the RFC 6749 3.3 scope-token grammar.
func (v *validator) scopes(name string, scopes []string) {
	for _, s := range scopes {
		ok := s != ""
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
				ok = false
			}
		}
		if !ok {
			v.add(name, "%q is not a valid scope (printable ASCII without spaces, quotes or backslashes)", s)
		}
	}
}

func (v *validator) params(name string, params map[string]string, reserved []string) {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys) // stable messages
	for _, k := range keys {
		switch {
		case k == "":
			v.add(name, "a parameter name is empty")
		case slices.Contains(reserved, k):
			v.add(name, "parameter %q is set by the proxy itself and cannot be overridden", k)
		}
	}
}

// routePath checks a path the proxy serves and reports whether it passed.
func (v *validator) routePath(name, p string) bool {
	n := len(v.errs)
	switch {
	case p == "":
		v.add(name, "is required")
	case !strings.HasPrefix(p, "/"):
		v.add(name, "must start with \"/\"")
	case p == "/":
		v.add(name, "must not be \"/\", which would cover every endpoint of the proxy")
	case !isPathChars(p):
		v.add(name, "%q contains a character that would need percent-encoding", p)
	case path.Clean(p) != p:
		v.add(name, "%q must be a clean path, without a trailing slash, \"//\" or dot-segments", p)
	default:
		for _, r := range reservedPaths {
			if overlaps(p, r) {
				v.add(name, "%q collides with the proxy's own endpoint %s", p, r)
				break
			}
		}
	}
	return len(v.errs) == n
}

// overlaps reports whether a equals b or one lies below the other.
func overlaps(a, b string) bool {
	return a == b || strings.HasPrefix(a, b+"/") || strings.HasPrefix(b, a+"/")
}

// isPathChars allows the RFC 3986 pchar characters and "/", without "%":
// routes are matched on decoded paths, so encoded ones would never match.
func isPathChars(p string) bool {
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-._~!$&'()*+,;=:@/", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func (v *validator) durations(c Config) {
	switch {
	case c.AccessTokenTTL <= 0:
		v.add("ACCESS_TOKEN_TTL", "must be positive, got %s", c.AccessTokenTTL)
	case c.AccessTokenTTL > maxAccessTokenTTL:
		v.add("ACCESS_TOKEN_TTL", "must be at most %s (a stolen access token cannot be revoked at the resource server), got %s",
			maxAccessTokenTTL, c.AccessTokenTTL)
	}
	switch {
	case c.RefreshTokenTTL <= 0:
		v.add("REFRESH_TOKEN_TTL", "must be positive, got %s", c.RefreshTokenTTL)
	case c.AccessTokenTTL > 0 && c.RefreshTokenTTL < c.AccessTokenTTL:
		v.add("REFRESH_TOKEN_TTL", "must not be shorter than OIDC_PROXY_ACCESS_TOKEN_TTL (%s), got %s", c.AccessTokenTTL, c.RefreshTokenTTL)
	}
}

// maxBodyBytes bounds MAX_BODY_BYTES: MCP messages are JSON-RPC, not uploads.
const maxBodyBytes = 64 << 20

// Bounds of the gateway's timeouts. A body timeout of more than 10 minutes
// would let slow clients hold connections at will again; an idle timeout
// under 100ms would make nearly every request dial, and one over 10 minutes
// outlives the keep-alive of every common server (and a zero value would
// mean "forever" to net/http).
const (
	maxGatewayBodyTimeout  = 10 * time.Minute
	minUpstreamIdleTimeout = 100 * time.Millisecond
	maxUpstreamIdleTimeout = 10 * time.Minute
)

// headersNeverSet are headers the gateway must not be told to overwrite.
var headersNeverSet = []string{"authorization", "cookie", "host", "content-length", "content-type",
	"transfer-encoding", "connection", "mcp-session-id", "mcp-protocol-version", "origin"}

// gateway checks the gateway's settings.
func (v *validator) gateway(c Config) {
	if c.MaxBodyBytes < 1 || c.MaxBodyBytes > maxBodyBytes {
		v.add("MAX_BODY_BYTES", "must be between 1 and %d, got %d", maxBodyBytes, c.MaxBodyBytes)
	}
	if c.GatewayBodyTimeout < time.Second || c.GatewayBodyTimeout > maxGatewayBodyTimeout {
		v.add("GATEWAY_BODY_TIMEOUT", "must be between 1s and %s, got %s", maxGatewayBodyTimeout, c.GatewayBodyTimeout)
	}
	if c.MCPUpstreamIdleTimeout < minUpstreamIdleTimeout || c.MCPUpstreamIdleTimeout > maxUpstreamIdleTimeout {
		v.add("MCP_UPSTREAM_IDLE_TIMEOUT", "must be between %s and %s, got %s", minUpstreamIdleTimeout, maxUpstreamIdleTimeout, c.MCPUpstreamIdleTimeout)
	}
	if c.UserHeader == "" {
		v.add("USER_HEADER", "must name a header: the MCP server needs to know who is calling")
	}
	names := map[string]string{"USER_HEADER": c.UserHeader, "EMAIL_HEADER": c.EmailHeader, "UPSTREAM_TOKEN_HEADER": c.UpstreamTokenHeader}
	seen := map[string]string{}
	for _, setting := range []string{"USER_HEADER", "EMAIL_HEADER", "UPSTREAM_TOKEN_HEADER"} {
		h := names[setting]
		if h == "" {
			continue
		}
		if !isHeaderName(h) {
			v.add(setting, "%q is not a valid HTTP header name", h)
			continue
		}
		if slices.Contains(headersNeverSet, strings.ToLower(h)) {
			v.add(setting, "%q is a header the gateway must not overwrite", h)
		}
		if other, dup := seen[strings.ToLower(h)]; dup {
			v.add(setting, "must differ from OIDC_PROXY_%s", other)
		}
		seen[strings.ToLower(h)] = setting
	}
	for _, o := range c.AllowedOrigins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") ||
			u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			v.add("ALLOWED_ORIGINS", "%q must be an origin such as https://app.example.com (scheme, host and port only)", o)
		}
	}
}

// isHeaderName reports whether s is an RFC 9110 token.
func isHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return s != ""
}

// hostPort checks a listen address and reports whether it passed.
func (v *validator) hostPort(name, addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		v.add(name, "%q must be host:port with a numeric port, such as :8000 or 127.0.0.1:9090", addr)
		return false
	}
	return true
}

// addrsCollide reports whether two valid listen addresses would bind the
// same port on a shared interface. Port 0 picks a free port and never
// collides.
func addrsCollide(a, b string) bool {
	ha, pa, _ := net.SplitHostPort(a)
	hb, pb, _ := net.SplitHostPort(b)
	if pa != pb || pa == "0" {
		return false
	}
	wildcard := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || wildcard(ha) || wildcard(hb)
}

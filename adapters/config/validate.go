package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/internal/clientip"
	"github.com/oidcproxy/oidcproxy/internal/ratelimit"
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
	// RequireUpstream demands the upstream client settings (CLIENT_ID,
	// CLIENT_SECRET, the provider's own). False for the commands that
	// never reach the upstream provider.
	RequireUpstream bool
	// Provider checks the settings of the provider PROVIDER selects: its
	// own section (Config.ProviderSection) together with the settings
	// every provider shares. The configuration cannot import the
	// providers, so the composition root passes their rules. It runs with
	// RequireUpstream only, for a PROVIDER that Load had a section for (or
	// any PROVIDER when Load had none). Its problems join the others: a
	// *SettingError under its setting, any other error under PROVIDER.
	// Nil skips the provider's own rules.
	Provider func(Config) error
}

// Bounds that keep a mistyped value from producing an unsafe deployment.
const (
	maxAccessTokenTTL = 24 * time.Hour
	// maxRefreshReuseGrace bounds the retry window: a retry follows a
	// lost response within seconds, and every second of the window is a
	// second in which a stolen rotated token still buys a new pair.
	maxRefreshReuseGrace = 10 * time.Minute
	maxTimeoutSeconds    = 300
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
	v.idJAG(c)

	if c.StorePath == "" {
		v.add("STORE_PATH", "is required")
	}
	v.database(c)
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
	if c.AdminToken != "" && !isBearerToken(c.AdminToken) {
		// Also what makes a copied placeholder ("REPLACE WITH: …") fail
		// instead of becoming a token everyone knows.
		v.add("ADMIN_TOKEN", "must be a bearer token (letters, digits and -._~+/, then optional =), such as the output of `openssl rand -base64 32`")
	}
	if adminOK && c.AdminToken == "" && !isLoopbackAddr(c.AdminAddr) {
		// Without a token the key and backup endpoints trust the peer's
		// address; beyond loopback that is anyone who can reach the port.
		v.add("ADMIN_ADDR", "%q is not a loopback address, so OIDC_PROXY_ADMIN_TOKEN is required: the admin listener "+
			"rotates signing keys and streams backups of the store (set a token, or bind 127.0.0.1)", c.AdminAddr)
	}
	if c.RequestBodyTimeout < minRequestBodyTimeout || c.RequestBodyTimeout > maxRequestBodyTimeout {
		v.add("REQUEST_BODY_TIMEOUT", "must be between %s and %s, got %s", minRequestBodyTimeout, maxRequestBodyTimeout, c.RequestBodyTimeout)
	}

	v.abuseLimits(c)

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

// DefaultStorePath is STORE_PATH's default: a STORE_PATH that differs from
// it was set on purpose.
const DefaultStorePath = "oidcproxy.db"

// Bounds of the PostgreSQL settings.
const (
	maxDatabaseConns   = 1000
	minDatabaseTimeout = 100 * time.Millisecond
	maxDatabaseTimeout = 5 * time.Minute
)

// database checks the PostgreSQL settings. The URL is never quoted: it may
// hold a password.
func (v *validator) database(c Config) {
	if c.DatabaseMaxConns < 1 || c.DatabaseMaxConns > maxDatabaseConns {
		v.add("DATABASE_MAX_CONNS", "must be between 1 and %d, got %d", maxDatabaseConns, c.DatabaseMaxConns)
	}
	if c.DatabaseTimeout < minDatabaseTimeout || c.DatabaseTimeout > maxDatabaseTimeout {
		v.add("DATABASE_TIMEOUT", "must be between %s and %s, got %s", minDatabaseTimeout, maxDatabaseTimeout, c.DatabaseTimeout)
	}
	if c.DatabaseURL == "" {
		return
	}
	raw := strings.TrimSpace(c.DatabaseURL)
	if _, err := url.Parse(raw); err != nil || !(strings.HasPrefix(raw, "postgres://") || strings.HasPrefix(raw, "postgresql://")) {
		v.add("DATABASE_URL", "must be a URL such as postgres://user:password@host:5432/database?sslmode=verify-full (the value is not shown: it may hold a password)")
	}
	if c.EncryptionKey == "" {
		v.add("ENCRYPTION_KEY", "is required with OIDC_PROXY_DATABASE_URL: every instance must seal and sign with the same key, "+
			"and a key file generated next to one instance cannot be shared with the others; generate one with `openssl rand -base64 32`")
	}
	// Refused rather than ignored: an instance started with both, next to
	// instances started with one, would split the state between two stores.
	if c.StorePath != DefaultStorePath {
		v.add("STORE_PATH", "must not be set together with OIDC_PROXY_DATABASE_URL: the store is either the PostgreSQL database or the bbolt file; "+
			"to move the data from one to the other, copy it while no instance runs")
	}
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

// provider checks PROVIDER, the upstream settings every provider shares,
// and, through opts.Provider, the selected provider's own. The
// configuration knows no provider by name: the names are those Load had a
// section for.
func (v *validator) provider(c Config, opts ValidateOptions) {
	_, known := c.ProviderSections[c.Provider]
	known = known || c.ProviderSections == nil
	switch {
	case c.Provider == "":
		v.add("PROVIDER", "is required")
	case !known:
		names := slices.Sorted(maps.Keys(c.ProviderSections))
		v.add("PROVIDER", "unknown provider %q; known providers: %s", c.Provider, strings.Join(names, ", "))
	}
	if c.ConfigURL != "" {
		v.url("CONFIG_URL", c.ConfigURL, true)
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
	if opts.Provider != nil && c.Provider != "" && known {
		v.join(opts.Provider(c))
	}
}

// join records every problem of an error tree: a *SettingError as it is,
// any other error as a problem with PROVIDER.
func (v *validator) join(err error) {
	switch e := err.(type) {
	case nil:
	case *SettingError:
		v.errs = append(v.errs, e)
	case interface{ Unwrap() []error }:
		for _, inner := range e.Unwrap() {
			v.join(inner)
		}
	default:
		v.add("PROVIDER", "%v", err)
	}
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
	switch {
	case c.RefreshReuseGrace < 0:
		v.add("REFRESH_REUSE_GRACE", "must not be negative (0 turns the retry window off), got %s", c.RefreshReuseGrace)
	case c.RefreshReuseGrace > maxRefreshReuseGrace:
		v.add("REFRESH_REUSE_GRACE", "must be at most %s (a stolen rotated refresh token works within it), got %s",
			maxRefreshReuseGrace, c.RefreshReuseGrace)
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
	if c.ClientHeader == "" {
		v.add("CLIENT_HEADER", "must name a header: the MCP server needs to know which machine is calling")
	}
	names := map[string]string{
		"USER_HEADER": c.UserHeader, "EMAIL_HEADER": c.EmailHeader, "CLIENT_HEADER": c.ClientHeader,
		"UPSTREAM_TOKEN_HEADER": c.UpstreamTokenHeader,
	}
	seen := map[string]string{}
	for _, setting := range []string{"USER_HEADER", "EMAIL_HEADER", "CLIENT_HEADER", "UPSTREAM_TOKEN_HEADER"} {
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

// idJAG checks the settings of enterprise-managed authorization: both or
// neither, issuers that are issuer identifiers (https, or http on a
// loopback host for development; no query or fragment, RFC 8414 2).
func (v *validator) idJAG(c Config) {
	switch {
	case len(c.TrustedIDJAGIssuers) > 0 && len(c.IDJAGClients) == 0:
		v.add("ID_JAG_CLIENTS", "is required with OIDC_PROXY_TRUSTED_ID_JAG_ISSUERS: list the clients that may trade an ID-JAG for an access token")
	case len(c.TrustedIDJAGIssuers) == 0 && len(c.IDJAGClients) > 0:
		v.add("TRUSTED_ID_JAG_ISSUERS", "is required with OIDC_PROXY_ID_JAG_CLIENTS: list the identity providers whose ID-JAGs are trusted")
	}
	for _, iss := range c.TrustedIDJAGIssuers {
		u, err := url.Parse(iss)
		if err != nil || !u.IsAbs() || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.Contains(iss, "#") ||
			!(u.Scheme == "https" || (u.Scheme == "http" && domain.IsLoopbackHost(u.Hostname()))) {
			v.add("TRUSTED_ID_JAG_ISSUERS", "%q must be an issuer identifier: an https URL (http only on a loopback host) without query or fragment", iss)
		}
	}
	for _, id := range c.IDJAGClients {
		if strings.TrimSpace(id) == "" || len(id) > domain.MaxClientIDURLLength {
			v.add("ID_JAG_CLIENTS", "holds an empty or overlong client id")
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

// Bounds of REQUEST_BODY_TIMEOUT: OAuth requests are a few hundred bytes,
// so even a slow mobile link sends one in well under a second.
const (
	minRequestBodyTimeout = 100 * time.Millisecond
	maxRequestBodyTimeout = 5 * time.Minute
)

// isBearerToken reports whether s has the RFC 6750 2.1 b64token syntax,
// the only form a client can send in "Authorization: Bearer".
func isBearerToken(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~+/", c) >= 0) {
			return false
		}
	}
	return true
}

// isLoopbackAddr reports whether a valid listen address binds loopback
// only: a loopback IP literal, or "localhost". An empty host or any other
// name may bind (or resolve to) every interface.
func isLoopbackAddr(addr string) bool {
	host, _, _ := net.SplitHostPort(addr)
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
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

// Bounds of the registration hygiene settings: a client is swept no
// sooner than an hour after it registered, well past the ten minutes its
// first sign-in may take, and the client bound stays within what a store
// holds comfortably.
const (
	minUnusedClientTTL = time.Hour
	maxClients         = 10_000_000
)

// abuseLimits checks the rate limits, the trusted proxies and the
// registration hygiene settings.
func (v *validator) abuseLimits(c Config) {
	for _, l := range []struct {
		name        string
		rate, burst int
	}{
		{"RATE_LIMIT_REGISTER", c.RateLimitRegister, c.RateLimitRegisterBurst},
		{"RATE_LIMIT_CIMD", c.RateLimitCIMD, c.RateLimitCIMDBurst},
		{"RATE_LIMIT_AUTHORIZE", c.RateLimitAuthorize, c.RateLimitAuthorizeBurst},
		{"RATE_LIMIT_TOKEN", c.RateLimitToken, c.RateLimitTokenBurst},
		{"RATE_LIMIT_REVOKE", c.RateLimitRevoke, c.RateLimitRevokeBurst},
		{"RATE_LIMIT_INTROSPECT", c.RateLimitIntrospect, c.RateLimitIntrospectBurst},
		{"RATE_LIMIT_GATEWAY", c.RateLimitGateway, c.RateLimitGatewayBurst},
	} {
		switch {
		case l.rate < 0 || l.rate > ratelimit.MaxPerMinute:
			v.add(l.name, "must be between 0 (off) and %d requests a minute, got %d", ratelimit.MaxPerMinute, l.rate)
		case l.rate > 0 && (l.burst < 1 || l.burst > ratelimit.MaxBurst):
			v.add(l.name+"_BURST", "must be between 1 and %d while OIDC_PROXY_%s is on, got %d", ratelimit.MaxBurst, l.name, l.burst)
		}
	}
	if _, err := clientip.ParsePrefixes(c.TrustedProxies); err != nil {
		v.add("TRUSTED_PROXIES", "%v", err)
	}
	if _, err := clientip.ParseHeader(c.TrustedProxyHeader); err != nil {
		v.add("TRUSTED_PROXY_HEADER", "%v", err)
	}
	if c.MaxClients < 0 || c.MaxClients > maxClients {
		v.add("MAX_CLIENTS", "must be between 0 (no bound) and %d, got %d", maxClients, c.MaxClients)
	}
	if c.UnusedClientTTL < 0 || (c.UnusedClientTTL > 0 && c.UnusedClientTTL < minUnusedClientTTL) {
		v.add("UNUSED_CLIENT_TTL", "must be 0 (keep unused clients) or at least %s, got %s", minUnusedClientTTL, c.UnusedClientTTL)
	}
}

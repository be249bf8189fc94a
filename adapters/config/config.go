package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/internal/clientip"
	"github.com/oidcproxy/oidcproxy/internal/ratelimit"
)

// EnvPrefix starts the name of every environment variable oidcproxy reads.
const EnvPrefix = "OIDC_PROXY_"

// ConfigEnv and ConfigFlag name the YAML configuration file.
const (
	ConfigEnv  = EnvPrefix + "CONFIG"
	ConfigFlag = "config"
)

// Redaction is what Redacted puts in place of a secret that is set.
const Redaction = "[redacted]"

// Config holds every oidcproxy setting but the provider presets' own, which
// live in their sections (ProviderSections). The struct tags drive loading,
// help output and documentation (see the package documentation); each
// field's help tag is its documentation. Secrets are redacted by String,
// LogValue and Redacted.
type Config struct {
	ListenAddr string `env:"LISTEN_ADDR" yaml:"listen_addr" flag:"listen-addr" default:":8000" help:"Address (host:port) of the public HTTP listener."`
	BaseURL    string `env:"BASE_URL" yaml:"base_url" flag:"base-url" help:"Public URL at which clients reach the proxy, from which its endpoint, callback and resource URLs are built."`
	IssuerURL  string `env:"ISSUER_URL" yaml:"issuer_url" flag:"issuer-url" help:"Issuer identifier published in metadata, tokens and the iss parameter, defaulting to BASE_URL."`

	Provider                string            `env:"PROVIDER" yaml:"provider" flag:"provider" default:"oidc" help:"Kind of upstream identity provider: {providers}."`
	ConfigURL               string            `env:"CONFIG_URL" yaml:"config_url" flag:"config-url" help:"OpenID Connect discovery URL of the upstream provider, which also overrides a preset's own discovery URL."`
	ClientID                string            `env:"CLIENT_ID" yaml:"client_id" flag:"client-id" help:"Client ID of the proxy's pre-registered client at the upstream provider."`
	ClientSecret            string            `env:"CLIENT_SECRET" yaml:"client_secret" flag:"client-secret" secret:"true" help:"Client secret of the proxy's client at the upstream provider."`
	Strict                  bool              `env:"STRICT" yaml:"strict" flag:"strict" default:"true" help:"Whether upstream discovery documents and tokens get strict OpenID Connect validation."`
	Audience                string            `env:"AUDIENCE" yaml:"audience" flag:"audience" help:"Audience requested from the upstream provider and required in its access tokens."`
	TimeoutSeconds          int               `env:"TIMEOUT_SECONDS" yaml:"timeout_seconds" flag:"timeout-seconds" default:"10" help:"Timeout in seconds for each request to the upstream provider, from 1 to 300."`
	Algorithm               string            `env:"ALGORITHM" yaml:"algorithm" flag:"algorithm" help:"JWS algorithm required on upstream access tokens, where empty accepts those the provider advertises."`
	RequiredScopes          []string          `env:"REQUIRED_SCOPES" yaml:"required_scopes" flag:"required-scopes" help:"Scopes requested upstream and required in the upstream access token, separated by commas or spaces."`
	RedirectPath            string            `env:"REDIRECT_PATH" yaml:"redirect_path" flag:"redirect-path" default:"/auth/callback" help:"Path of the proxy's callback, below BASE_URL, as registered at the upstream provider."`
	TokenEndpointAuthMethod domain.AuthMethod `env:"TOKEN_ENDPOINT_AUTH_METHOD" yaml:"token_endpoint_auth_method" flag:"token-endpoint-auth-method" default:"client_secret_basic" help:"How the proxy authenticates at the upstream token endpoint: client_secret_basic, client_secret_post or none."`

	ExtraAuthorizeParams map[string]string `env:"EXTRA_AUTHORIZE_PARAMS" yaml:"extra_authorize_params" flag:"extra-authorize-params" help:"Extra parameters for the upstream authorization request, as k=v pairs separated by commas (a mapping in YAML)."`
	ExtraTokenParams     map[string]string `env:"EXTRA_TOKEN_PARAMS" yaml:"extra_token_params" flag:"extra-token-params" help:"Extra parameters for upstream token requests, as k=v pairs separated by commas (a mapping in YAML)."`
	UserinfoClaims       bool              `env:"USERINFO_CLAIMS" yaml:"userinfo_claims" flag:"userinfo-claims" default:"false" help:"Whether the claims the access policy reads (its group_claims, and the scalar claims conditions read) are also taken from the upstream userinfo endpoint, for providers that put groups or roles there and not in the ID token."`
	ForwardResource      bool              `env:"FORWARD_RESOURCE" yaml:"forward_resource" flag:"forward-resource" default:"false" help:"Whether the client's RFC 8707 resource parameter is forwarded to the upstream provider."`

	AllowedClientRedirectURIs []string           `env:"ALLOWED_CLIENT_REDIRECT_URIS" yaml:"allowed_client_redirect_uris" flag:"allowed-client-redirect-uris" help:"Comma-separated patterns (with *) that every client redirect URI must match, where empty adds no restriction beyond the registration rules."`
	ScopesSupported           []string           `env:"SCOPES_SUPPORTED" yaml:"scopes_supported" flag:"scopes-supported" help:"Scopes MCP clients may request, separated by commas or spaces, where empty means openid, profile, email, offline_access and REQUIRED_SCOPES."`
	CIMDEnabled               bool               `env:"CIMD_ENABLED" yaml:"cimd_enabled" flag:"cimd-enabled" default:"true" help:"Whether MCP clients may use an https URL as their client_id, whose Client ID Metadata Document the proxy fetches (behind SSRF guards) instead of requiring registration."`
	CIMDAllowPrivateNetwork   bool               `env:"CIMD_ALLOW_PRIVATE_NETWORK" yaml:"cimd_allow_private_network" flag:"cimd-allow-private-network" default:"false" help:"Whether Client ID Metadata Documents may be fetched from loopback and private addresses and IP-literal hosts (https is still required): for development and tests only."`
	Consent                   domain.ConsentMode `env:"CONSENT" yaml:"consent" flag:"consent" default:"always" help:"When the consent page is shown: always, remember (skipped for a client this browser approved) or off."`

	StorePath         string        `env:"STORE_PATH" yaml:"store_path" flag:"store-path" default:"oidcproxy.db" help:"Path of the bbolt database file."`
	DatabaseURL       string        `env:"DATABASE_URL" yaml:"database_url" flag:"database-url" secret:"true" help:"PostgreSQL connection URL (postgres://user:password@host:5432/database?sslmode=verify-full) of a database that every instance shares, used instead of the bbolt file; requires ENCRYPTION_KEY and excludes STORE_PATH."`
	DatabaseMaxConns  int           `env:"DATABASE_MAX_CONNS" yaml:"database_max_conns" flag:"database-max-conns" default:"10" help:"Most connections one instance opens to the PostgreSQL database, from 1 to 1000."`
	DatabaseTimeout   time.Duration `env:"DATABASE_TIMEOUT" yaml:"database_timeout" flag:"database-timeout" default:"5s" help:"Bound on connecting to PostgreSQL and on each store call, also enforced by the server as statement_timeout, as a Go duration from 100ms to 5m."`
	EncryptionKey     string        `env:"ENCRYPTION_KEY" yaml:"encryption_key" flag:"encryption-key" secret:"true" help:"Base64 of the 32-byte key that seals upstream tokens and signing keys at rest, where empty creates a key file next to the store."`
	AccessTokenTTL    time.Duration `env:"ACCESS_TOKEN_TTL" yaml:"access_token_ttl" flag:"access-token-ttl" default:"1h" help:"Lifetime of the access tokens the proxy issues, as a Go duration of at most 24h."`
	RefreshTokenTTL   time.Duration `env:"REFRESH_TOKEN_TTL" yaml:"refresh_token_ttl" flag:"refresh-token-ttl" default:"720h" help:"Lifetime of the refresh tokens the proxy issues, as a Go duration no shorter than ACCESS_TOKEN_TTL."`
	RefreshReuseGrace time.Duration `env:"REFRESH_REUSE_GRACE" yaml:"refresh_reuse_grace" flag:"refresh-reuse-grace" default:"60s" help:"How long after a refresh a client may present the rotated refresh token again, while the new one is unused, and get a new pair instead of losing its grant (a retry after a lost response), as a Go duration of at most 10m, where 0 revokes the grant on any reuse."`

	PolicyFile string `env:"POLICY_FILE" yaml:"policy_file" flag:"policy-file" help:"Path of the access policy file (YAML, see docs/policy.md) that decides who may sign in and which MCP requests a caller may make, where empty admits everyone the identity provider signs in and allows every request."`

	MCPUpstream string `env:"MCP_UPSTREAM" yaml:"mcp_upstream" flag:"mcp-upstream" help:"URL of the MCP server that the gateway forwards authenticated requests to, where empty turns the gateway off."`
	MCPPath     string `env:"MCP_PATH" yaml:"mcp_path" flag:"mcp-path" default:"/mcp" help:"Path of the protected MCP endpoint below BASE_URL, which also makes the resource URL."`
	AdminAddr   string `env:"ADMIN_ADDR" yaml:"admin_addr" flag:"admin-addr" default:"127.0.0.1:9090" help:"Address (host:port) of the admin listener serving health checks, metrics, key administration and backups; an address other than a loopback one requires ADMIN_TOKEN."`
	AdminToken  string `env:"ADMIN_TOKEN" yaml:"admin_token" flag:"admin-token" secret:"true" help:"Bearer token required by the admin listener's key and backup endpoints, where empty allows them from loopback addresses only (and then ADMIN_ADDR must be a loopback address)."`

	RequestBodyTimeout time.Duration `env:"REQUEST_BODY_TIMEOUT" yaml:"request_body_timeout" flag:"request-body-timeout" default:"10s" help:"Time a client has to send a request body to the authorization server or the admin listener once its headers arrived, as a Go duration from 100ms to 5m; a slower client gets 408 and a closed connection (the gateway has its own limit)."`

	AllowedOrigins         []string      `env:"ALLOWED_ORIGINS" yaml:"allowed_origins" flag:"allowed-origins" help:"Origins (scheme://host[:port]) whose browser requests the gateway accepts, besides BASE_URL's own; requests without an Origin header always pass."`
	UserHeader             string        `env:"USER_HEADER" yaml:"user_header" flag:"user-header" default:"X-Forwarded-User" help:"Header in which the gateway tells the MCP server the user's subject."`
	EmailHeader            string        `env:"EMAIL_HEADER" yaml:"email_header" flag:"email-header" default:"X-Forwarded-Email" help:"Header in which the gateway tells the MCP server the user's verified email, where empty sends none."`
	ClientHeader           string        `env:"CLIENT_HEADER" yaml:"client_header" flag:"client-header" default:"X-Forwarded-Client" help:"Header in which the gateway tells the MCP server the client id of a machine client acting for itself (client_credentials), which gets this header instead of USER_HEADER and EMAIL_HEADER."`
	UpstreamTokenHeader    string        `env:"UPSTREAM_TOKEN_HEADER" yaml:"upstream_token_header" flag:"upstream-token-header" help:"Header in which the gateway forwards the identity provider's access token to the MCP server, where empty (the default) never forwards it."`
	MaxBodyBytes           int           `env:"MAX_BODY_BYTES" yaml:"max_body_bytes" flag:"max-body-bytes" default:"4194304" help:"Largest request body the gateway forwards to the MCP server, in bytes."`
	GatewayBodyTimeout     time.Duration `env:"GATEWAY_BODY_TIMEOUT" yaml:"gateway_body_timeout" flag:"gateway-body-timeout" default:"30s" help:"Time a client may take to send a request body to the gateway, as a Go duration, after which it gets a 408 and its connection is closed; responses and event streams are never cut by it."`
	MCPUpstreamIdleTimeout time.Duration `env:"MCP_UPSTREAM_IDLE_TIMEOUT" yaml:"mcp_upstream_idle_timeout" flag:"mcp-upstream-idle-timeout" default:"4s" help:"How long the gateway keeps an idle connection to the MCP server for reuse, as a Go duration, which must be shorter than the server's own keep-alive timeout (5s for Node.js and uvicorn, 2s for gunicorn)."`

	// ProviderSections holds every registered provider's own settings, by
	// provider name, as Load filled them from the same sources and with the
	// same rules as the fields above (see Sections); ProviderSection
	// returns the one PROVIDER selects. It has no tags: it is not a
	// setting. Nil when Load was given no sections.
	ProviderSections map[string]any

	TelemetryPublicEndpoint bool `env:"TELEMETRY_PUBLIC_ENDPOINT" yaml:"telemetry_public_endpoint" flag:"telemetry-public-endpoint" default:"false" help:"Whether every request starts a new trace, linking rather than continuing the caller's traceparent: set it when the proxy faces the internet."`

	TrustedProxies     []string `env:"TRUSTED_PROXIES" yaml:"trusted_proxies" flag:"trusted-proxies" help:"CIDR prefixes or addresses of the reverse proxies in front of the proxy (such as 10.0.0.0/8), whose TRUSTED_PROXY_HEADER names the client address that rate limits and audit records use; from any other peer the header is ignored, and empty trusts no proxy."`
	TrustedProxyHeader string   `env:"TRUSTED_PROXY_HEADER" yaml:"trusted_proxy_header" flag:"trusted-proxy-header" default:"X-Forwarded-For" help:"The forwarding header the trusted proxies write, read from the right past the trusted hops: X-Forwarded-For or Forwarded (RFC 7239)."`

	RateLimitRegister        int `env:"RATE_LIMIT_REGISTER" yaml:"rate_limit_register" flag:"rate-limit-register" default:"30" help:"Client registrations (POST /register) each client address may make per minute, in this instance, where 0 turns the limit off."`
	RateLimitRegisterBurst   int `env:"RATE_LIMIT_REGISTER_BURST" yaml:"rate_limit_register_burst" flag:"rate-limit-register-burst" default:"20" help:"Client registrations a client address may make at once, before RATE_LIMIT_REGISTER applies."`
	RateLimitCIMD            int `env:"RATE_LIMIT_CIMD" yaml:"rate_limit_cimd" flag:"rate-limit-cimd" default:"30" help:"Client ID Metadata Document fetches each client address may trigger per minute (an /authorize or /token whose client_id URL is not cached), in this instance, where 0 turns the limit off."`
	RateLimitCIMDBurst       int `env:"RATE_LIMIT_CIMD_BURST" yaml:"rate_limit_cimd_burst" flag:"rate-limit-cimd-burst" default:"10" help:"Client ID Metadata Document fetches a client address may trigger at once, before RATE_LIMIT_CIMD applies."`
	RateLimitAuthorize       int `env:"RATE_LIMIT_AUTHORIZE" yaml:"rate_limit_authorize" flag:"rate-limit-authorize" default:"300" help:"Requests each client address may make per minute to each sign-in page (/authorize, /consent and the callback, each counted apart), in this instance, where 0 turns the limit off."`
	RateLimitAuthorizeBurst  int `env:"RATE_LIMIT_AUTHORIZE_BURST" yaml:"rate_limit_authorize_burst" flag:"rate-limit-authorize-burst" default:"100" help:"Requests a client address may make at once to each sign-in page, before RATE_LIMIT_AUTHORIZE applies."`
	RateLimitToken           int `env:"RATE_LIMIT_TOKEN" yaml:"rate_limit_token" flag:"rate-limit-token" default:"600" help:"Token requests (POST /token) each client address may make per minute, in this instance, where 0 turns the limit off."`
	RateLimitTokenBurst      int `env:"RATE_LIMIT_TOKEN_BURST" yaml:"rate_limit_token_burst" flag:"rate-limit-token-burst" default:"200" help:"Token requests a client address may make at once, before RATE_LIMIT_TOKEN applies."`
	RateLimitRevoke          int `env:"RATE_LIMIT_REVOKE" yaml:"rate_limit_revoke" flag:"rate-limit-revoke" default:"120" help:"Revocation requests (POST /revoke) each client address may make per minute, in this instance, where 0 turns the limit off."`
	RateLimitRevokeBurst     int `env:"RATE_LIMIT_REVOKE_BURST" yaml:"rate_limit_revoke_burst" flag:"rate-limit-revoke-burst" default:"60" help:"Revocation requests a client address may make at once, before RATE_LIMIT_REVOKE applies."`
	RateLimitIntrospect      int `env:"RATE_LIMIT_INTROSPECT" yaml:"rate_limit_introspect" flag:"rate-limit-introspect" default:"3000" help:"Introspection requests (POST /introspect) each client address may make per minute, in this instance, where 0 turns the limit off."`
	RateLimitIntrospectBurst int `env:"RATE_LIMIT_INTROSPECT_BURST" yaml:"rate_limit_introspect_burst" flag:"rate-limit-introspect-burst" default:"600" help:"Introspection requests a client address may make at once, before RATE_LIMIT_INTROSPECT applies."`
	RateLimitGateway         int `env:"RATE_LIMIT_GATEWAY" yaml:"rate_limit_gateway" flag:"rate-limit-gateway" default:"1200" help:"Requests each signed-in subject may send through the gateway per minute, in this instance, where 0 turns the limit off."`
	RateLimitGatewayBurst    int `env:"RATE_LIMIT_GATEWAY_BURST" yaml:"rate_limit_gateway_burst" flag:"rate-limit-gateway-burst" default:"300" help:"Requests a subject may send through the gateway at once, before RATE_LIMIT_GATEWAY applies."`

	MaxClients      int           `env:"MAX_CLIENTS" yaml:"max_clients" flag:"max-clients" default:"10000" help:"Most clients that may be registered through /register at once (operators' clients do not count), beyond which registration answers 503 temporarily_unavailable, where 0 is no bound."`
	UnusedClientTTL time.Duration `env:"UNUSED_CLIENT_TTL" yaml:"unused_client_ttl" flag:"unused-client-ttl" default:"24h" help:"How long a client registered through /register is kept if nobody ever signs in through it, as a Go duration of at least 1h, where 0 keeps it forever."`

	TrustedIDJAGIssuers []string `env:"TRUSTED_ID_JAG_ISSUERS" yaml:"trusted_id_jag_issuers" flag:"trusted-id-jag-issuers" help:"Issuer URLs of the enterprise identity providers whose Identity Assertion JWT Authorization Grants (ID-JAGs) the jwt-bearer grant accepts, their keys found through their OpenID Connect discovery, where empty turns enterprise-managed authorization off."`
	IDJAGClients        []string `env:"ID_JAG_CLIENTS" yaml:"id_jag_clients" flag:"id-jag-clients" help:"Client IDs (registered or Client ID Metadata Document URLs) allowed to trade an ID-JAG for an access token; required with TRUSTED_ID_JAG_ISSUERS."`

	IntrospectionSecret string `env:"INTROSPECTION_SECRET" yaml:"introspection_secret" flag:"introspection-secret" secret:"true" help:"Secret that resource servers present as a bearer token at /introspect, where empty allows only confidential registered clients."`

	LogLevel  string `env:"LOG_LEVEL" yaml:"log_level" flag:"log-level" default:"info" help:"Minimum log level: debug, info, warn or error."`
	LogFormat string `env:"LOG_FORMAT" yaml:"log_format" flag:"log-format" default:"json" help:"Log output format: json or text."`
}

// Sections are the provider presets' own settings, by provider name. Each
// function returns a pointer to a new struct whose exported fields carry
// the same tags as Config's (env, yaml, flag, help, default, secret); a
// struct without fields is a provider without settings of its own. Load
// fills every section from the same sources as Config, so a preset's
// settings keep their documented names. The configuration cannot import
// the providers: the composition root builds Sections from their registry.
type Sections map[string]func() any

// providersPlaceholder in a help tag stands for the provider names.
const providersPlaceholder = "{providers}"

// Field describes one setting, for help output and generated documentation.
type Field struct {
	// Name is the Go field name in its struct, e.g. "ListenAddr".
	Name string
	// Provider is the provider whose section holds the setting; empty for
	// Config's own settings.
	Provider string
	// Struct is the Go type that holds the field: "Config" or a
	// section's, such as "azure.Config".
	Struct string
	// Env is the full environment variable, e.g. "OIDC_PROXY_LISTEN_ADDR".
	Env string
	// YAML is the key in the YAML file, e.g. "listen_addr".
	YAML string
	// Flag is the command-line flag without dashes, e.g. "listen-addr".
	Flag string
	// Default is the default as it would be written in the environment;
	// empty when the setting has none.
	Default string
	// Help is one sentence describing the setting.
	Help string
	// Secret settings are redacted when printed and may come from a file.
	Secret bool
	// Type is one of string, bool, int, duration, list and map.
	Type string
	// FileEnv, FileYAML and FileFlag name the file variants of a secret
	// (OIDC_PROXY_CLIENT_SECRET_FILE, client_secret_file,
	// client-secret-file); they are empty for other settings.
	FileEnv, FileYAML, FileFlag string
}

// The kinds of values a setting can hold; Field.Type spells them out.
const (
	typeString   = "string"
	typeBool     = "bool"
	typeInt      = "int"
	typeDuration = "duration"
	typeList     = "list"
	typeMap      = "map"
)

// spec is a Field plus where it lives in its struct.
type spec struct {
	Field
	index int
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	listType     = reflect.TypeFor[[]string]()
	mapType      = reflect.TypeFor[map[string]string]()
)

// specs reads the tags of Config once. It cannot fail: a malformed tag
// yields an empty name or an unknown type, which the tests reject.
var specs = sync.OnceValue(func() []spec { return specsOf(reflect.TypeFor[Config]()) })

// sectionTypes caches specsOf for section types.
var sectionTypes sync.Map // reflect.Type → []spec

// sectionSpecs returns the settings of a section of type t, held by the
// provider named provider.
func sectionSpecs(t reflect.Type, provider string) []spec {
	cached, ok := sectionTypes.Load(t)
	if !ok {
		cached, _ = sectionTypes.LoadOrStore(t, specsOf(t))
	}
	out := slices.Clone(cached.([]spec))
	for i := range out {
		out[i].Provider = provider
	}
	return out
}

// specsOf reads the tags of struct type t. Fields without an env tag are
// not settings.
func specsOf(t reflect.Type) []spec {
	structName := t.String()
	if t == reflect.TypeFor[Config]() {
		structName = t.Name()
	}
	out := make([]spec, 0, t.NumField())
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.Tag.Get("env") == "" || !sf.IsExported() {
			continue
		}
		s := spec{index: i, Field: Field{
			Name:    sf.Name,
			Struct:  structName,
			Env:     EnvPrefix + sf.Tag.Get("env"),
			YAML:    sf.Tag.Get("yaml"),
			Flag:    sf.Tag.Get("flag"),
			Default: sf.Tag.Get("default"),
			Help:    sf.Tag.Get("help"),
			Secret:  sf.Tag.Get("secret") == "true",
			Type:    typeOf(sf.Type),
		}}
		if s.Secret {
			s.FileEnv = s.Env + "_FILE"
			s.FileYAML = s.YAML + "_file"
			s.FileFlag = s.Flag + "-file"
		}
		out = append(out, s)
	}
	return out
}

func typeOf(t reflect.Type) string {
	switch {
	case t == durationType:
		return typeDuration
	case t == listType:
		return typeList
	case t == mapType:
		return typeMap
	case t.Kind() == reflect.String:
		return typeString
	case t.Kind() == reflect.Bool:
		return typeBool
	case t.Kind() == reflect.Int:
		return typeInt
	default:
		return "unsupported " + t.String()
	}
}

// schema is every setting a load knows: Config's, then each section's, by
// provider name, each in declaration order.
type schema struct {
	specs []spec
	// names are the provider names, sorted.
	names []string
	// sections are new sections, by provider name.
	sections map[string]any
}

// newSchema makes one new section per provider and reads their tags. A
// section that is not a pointer to a struct, a setting of a type the
// loader cannot parse, or a name used twice is an error.
func newSchema(sections Sections) (schema, error) {
	sc := schema{sections: make(map[string]any, len(sections))}
	for name := range sections {
		sc.names = append(sc.names, name)
	}
	slices.Sort(sc.names)
	list := providerList(sc.names)
	for _, s := range specs() {
		s.Help = strings.ReplaceAll(s.Help, providersPlaceholder, list)
		sc.specs = append(sc.specs, s)
	}
	var errs []error
	for _, name := range sc.names {
		section := sections[name]()
		v := reflect.ValueOf(section)
		if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
			errs = append(errs, fmt.Errorf("provider %s: its settings section must be a pointer to a struct, not %T", name, section))
			continue
		}
		sc.sections[name] = section
		for _, s := range sectionSpecs(v.Elem().Type(), name) {
			if strings.HasPrefix(s.Type, "unsupported") {
				errs = append(errs, fmt.Errorf("provider %s: setting %s has %s, which the loader cannot parse", name, s.Env, s.Type))
				continue
			}
			sc.specs = append(sc.specs, s)
		}
	}
	owners := map[string]string{} // name → what holds it
	for _, s := range sc.specs {
		owner := "provider " + s.Provider
		if s.Provider == "" {
			owner = "Config"
		}
		for _, n := range []string{s.Env, "yaml key " + s.YAML, "flag --" + s.Flag} {
			if first, dup := owners[n]; dup {
				errs = append(errs, fmt.Errorf("%s: %s is already a setting of %s", owner, n, first))
				continue
			}
			owners[n] = owner
		}
	}
	if len(errs) > 0 {
		return schema{}, fmt.Errorf("config: settings sections: %w", errors.Join(errs...))
	}
	return sc, nil
}

// providerList renders provider names for a sentence: "a, b or c".
func providerList(names []string) string {
	switch len(names) {
	case 0:
		return "the name of a registered provider"
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Fields lists every setting: Config's in declaration order, then each
// section's, by provider name. The slice is a fresh copy on each call. A
// section Load would refuse (see Sections) is left out.
func Fields(sections Sections) []Field {
	sc, err := newSchema(sections)
	if err != nil {
		sc = schema{}
		for _, s := range specs() {
			s.Help = strings.ReplaceAll(s.Help, providersPlaceholder, providerList(nil))
			sc.specs = append(sc.specs, s)
		}
	}
	out := make([]Field, len(sc.specs))
	for i, s := range sc.specs {
		out[i] = s.Field
	}
	return out
}

// ProviderSection returns the settings section of the provider PROVIDER
// selects, or nil when Load had none by that name.
func (c Config) ProviderSection() any { return c.ProviderSections[c.Provider] }

// Redacted returns a copy safe to log or print: every secret that is set is
// replaced by Redaction, in Config and in every provider section, and lists,
// maps and sections are copied so the copy shares no memory with c.
func (c Config) Redacted() Config {
	out := c
	v := reflect.ValueOf(&out).Elem()
	for _, s := range specs() {
		redact(v.Field(s.index), s)
	}
	if c.ProviderSections != nil {
		out.ProviderSections = make(map[string]any, len(c.ProviderSections))
		for name, section := range c.ProviderSections {
			out.ProviderSections[name] = redactedSection(name, section)
		}
	}
	return out
}

// redactedSection returns a redacted copy of a section; a value that is not
// a pointer to a struct has no settings and is returned as it is.
func redactedSection(name string, section any) any {
	v := reflect.ValueOf(section)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return section
	}
	cp := reflect.New(v.Elem().Type())
	cp.Elem().Set(v.Elem())
	for _, s := range sectionSpecs(v.Elem().Type(), name) {
		redact(cp.Elem().Field(s.index), s)
	}
	return cp.Interface()
}

// redact replaces a set secret in f and gives f its own copy of a list or
// map.
func redact(f reflect.Value, s spec) {
	switch {
	case s.Secret && f.String() != "":
		f.SetString(Redaction)
	case s.Type == typeList && !f.IsNil():
		f.Set(reflect.ValueOf(slices.Clone(f.Interface().([]string))))
	case s.Type == typeMap && !f.IsNil():
		f.Set(reflect.ValueOf(maps.Clone(f.Interface().(map[string]string))))
	}
}

// settings calls fn with each setting of the redacted c, Config's and then
// those of the selected provider's section, and its value.
func (c Config) settings(fn func(s spec, value any)) {
	r := c.Redacted()
	v := reflect.ValueOf(r)
	for _, s := range specs() {
		fn(s, v.Field(s.index).Interface())
	}
	sv := reflect.ValueOf(r.ProviderSection())
	if sv.Kind() != reflect.Pointer || sv.IsNil() || sv.Elem().Kind() != reflect.Struct {
		return
	}
	for _, s := range sectionSpecs(sv.Elem().Type(), c.Provider) {
		fn(s, sv.Elem().Field(s.index).Interface())
	}
}

// LogValue implements slog.LogValuer, so logging a Config directly can never
// write a secret: it logs the redacted settings keyed by their YAML names,
// the selected provider's own included.
func (c Config) LogValue() slog.Value {
	var attrs []slog.Attr
	c.settings(func(s spec, value any) { attrs = append(attrs, slog.Any(s.YAML, value)) })
	return slog.GroupValue(attrs...)
}

// String renders the redacted settings as key=value pairs, so that printing
// a Config with %v or %s cannot reveal a secret either.
func (c Config) String() string {
	var b strings.Builder
	c.settings(func(s spec, value any) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%v", s.YAML, value)
	})
	return b.String()
}

// Issuer returns the issuer identifier: ISSUER_URL, or BASE_URL without a
// trailing slash when ISSUER_URL is unset (Load already fills it in; the
// fallback covers a BASE_URL set afterwards, as `oidcproxy dev` does).
func (c Config) Issuer() string {
	if c.IssuerURL != "" {
		return c.IssuerURL
	}
	return c.base()
}

// RedirectURL returns the proxy's upstream callback: BASE_URL + REDIRECT_PATH.
func (c Config) RedirectURL() string { return c.base() + c.RedirectPath }

// Resource returns the RFC 8707 / RFC 9728 resource identifier of the
// protected MCP endpoint: BASE_URL + MCP_PATH.
func (c Config) Resource() string { return c.base() + c.MCPPath }

func (c Config) base() string { return strings.TrimRight(c.BaseURL, "/") }

// GatewayOrigins returns the browser origins whose requests the gateway
// accepts: BASE_URL's own (scheme://host[:port]), then ALLOWED_ORIGINS.
func (c Config) GatewayOrigins() []string {
	own := c.BaseURL
	if u, err := url.Parse(c.BaseURL); err == nil {
		own = u.Scheme + "://" + u.Host
	}
	return append([]string{own}, c.AllowedOrigins...)
}

// Timeout returns TIMEOUT_SECONDS as a duration.
func (c Config) Timeout() time.Duration {
	return time.Duration(c.TimeoutSeconds) * time.Second
}

// defaultScopes are offered to MCP clients when SCOPES_SUPPORTED is unset.
var defaultScopes = []string{"openid", "profile", "email", "offline_access"}

// SupportedScopes returns the scopes MCP clients may request:
// SCOPES_SUPPORTED when set, otherwise openid, profile, email and
// offline_access followed by REQUIRED_SCOPES, without duplicates.
func (c Config) SupportedScopes() []string {
	if len(c.ScopesSupported) > 0 {
		return slices.Clone(c.ScopesSupported)
	}
	out := slices.Clone(defaultScopes)
	for _, s := range c.RequiredScopes {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// RedirectPatterns parses ALLOWED_CLIENT_REDIRECT_URIS. An empty result
// means no restriction beyond the registration rules.
func (c Config) RedirectPatterns() ([]domain.RedirectPattern, error) {
	out := make([]domain.RedirectPattern, 0, len(c.AllowedClientRedirectURIs))
	var errs []error
	for _, raw := range c.AllowedClientRedirectURIs {
		p, err := domain.ParseRedirectPattern(raw)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, p)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("config: redirect patterns: %w", errors.Join(errs...))
	}
	return out, nil
}

// errEncryptionKeyEncoding and errEncryptionKeyLength describe a bad
// ENCRYPTION_KEY without quoting it.
var (
	errEncryptionKeyEncoding = errors.New("config: OIDC_PROXY_ENCRYPTION_KEY is not valid base64")
	errEncryptionKeyLength   = errors.New("config: OIDC_PROXY_ENCRYPTION_KEY must decode to exactly 32 bytes")
)

// keyEncodings are tried in turn: operators paste keys from `openssl rand
// -base64 32` (standard, padded) as often as from tools that emit base64url.
var keyEncodings = []*base64.Encoding{
	base64.StdEncoding.Strict(), base64.RawStdEncoding.Strict(),
	base64.URLEncoding.Strict(), base64.RawURLEncoding.Strict(),
}

// EncryptionKeyBytes decodes ENCRYPTION_KEY (standard or URL base64, padded
// or not) and checks that it is exactly 32 bytes. It returns nil, nil when
// the key is unset, in which case the caller falls back to a key file.
func (c Config) EncryptionKeyBytes() ([]byte, error) {
	s := strings.TrimSpace(c.EncryptionKey)
	if s == "" {
		return nil, nil
	}
	for _, enc := range keyEncodings {
		key, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(key) != 32 {
			return nil, errEncryptionKeyLength
		}
		return key, nil
	}
	return nil, errEncryptionKeyEncoding
}

// Level returns LOG_LEVEL as a slog.Level, or slog.LevelInfo when it is not
// one of debug, info, warn and error (Validate reports that case).
func (c Config) Level() slog.Level {
	var l slog.Level
	if !validLogLevels[c.LogLevel] || l.UnmarshalText([]byte(c.LogLevel)) != nil {
		return slog.LevelInfo
	}
	return l
}

// RateLimits are the abuse limits' rates, as the settings give them.
type RateLimits struct {
	// Per client address.
	Register, CIMD, Authorize, Token, Revoke, Introspect ratelimit.Limit
	// Per subject.
	Gateway ratelimit.Limit
}

// RateLimits returns RATE_LIMIT_* as limits.
func (c Config) RateLimits() RateLimits {
	return RateLimits{
		Register:   ratelimit.Limit{PerMinute: c.RateLimitRegister, Burst: c.RateLimitRegisterBurst},
		CIMD:       ratelimit.Limit{PerMinute: c.RateLimitCIMD, Burst: c.RateLimitCIMDBurst},
		Authorize:  ratelimit.Limit{PerMinute: c.RateLimitAuthorize, Burst: c.RateLimitAuthorizeBurst},
		Token:      ratelimit.Limit{PerMinute: c.RateLimitToken, Burst: c.RateLimitTokenBurst},
		Revoke:     ratelimit.Limit{PerMinute: c.RateLimitRevoke, Burst: c.RateLimitRevokeBurst},
		Introspect: ratelimit.Limit{PerMinute: c.RateLimitIntrospect, Burst: c.RateLimitIntrospectBurst},
		Gateway:    ratelimit.Limit{PerMinute: c.RateLimitGateway, Burst: c.RateLimitGatewayBurst},
	}
}

// ClientIP builds the client address resolver of TRUSTED_PROXIES and
// TRUSTED_PROXY_HEADER (Validate reports what it refuses).
func (c Config) ClientIP() (*clientip.Resolver, error) {
	prefixes, err := clientip.ParsePrefixes(c.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("config: %sTRUSTED_PROXIES: %w", EnvPrefix, err)
	}
	header, err := clientip.ParseHeader(c.TrustedProxyHeader)
	if err != nil {
		return nil, fmt.Errorf("config: %sTRUSTED_PROXY_HEADER: %w", EnvPrefix, err)
	}
	return clientip.New(prefixes, header), nil
}

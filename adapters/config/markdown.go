package config

import (
	"fmt"
	"slices"
	"strings"
)

// docSection is one heading of the settings reference: a title, one
// paragraph of orientation, and the settings it lists, by Config field
// name, in the order shown. The order is an editorial choice (what an
// operator sets first comes first), not the struct's declaration order.
// The presets section lists every provider section's settings instead, by
// provider name; its intro may name those providers with %s.
type docSection struct {
	title   string
	intro   string
	fields  []string
	presets bool
}

// docSections groups every setting for the reference. A field that no
// section names still appears, under otherSection, so a new setting is
// never left undocumented; the tests reject that heading so that it gets
// a proper home here.
var docSections = []docSection{
	{
		title: "Listeners and public URLs",
		intro: "Where the proxy listens, and the public URLs it builds its endpoints, callback and resource identifier from. " +
			"Behind a TLS-terminating reverse proxy or load balancer, `BASE_URL` is the public `https://` URL that clients use, " +
			"not the address the process listens on.",
		fields: []string{"ListenAddr", "AdminAddr", "AdminToken", "RequestBodyTimeout", "BaseURL", "IssuerURL", "RedirectPath", "MCPPath"},
	},
	{
		title: "Upstream identity provider",
		intro: "The proxy is one ordinary, pre-registered OAuth client of the identity provider. " +
			"Register `BASE_URL` + `REDIRECT_PATH` as its redirect URI there; `oidcproxy check` prints the exact URL.",
		fields: []string{
			"Provider", "ConfigURL", "ClientID", "ClientSecret", "TokenEndpointAuthMethod", "Strict", "TimeoutSeconds",
			"Audience", "Algorithm", "RequiredScopes", "ExtraAuthorizeParams", "ExtraTokenParams", "ForwardResource", "UserinfoClaims",
		},
	},
	{
		title:   "Provider presets",
		intro:   "Settings read only by one provider preset (`PROVIDER` %s); `CONFIG_URL` overrides any preset's discovery URL.",
		presets: true,
	},
	{
		title: "MCP clients, scopes and consent",
		intro: "What MCP clients may register (or publish as a Client ID Metadata Document) and request, when the consent page is shown, and who may call `/introspect`.",
		fields: []string{
			"AllowedClientRedirectURIs", "CIMDEnabled", "CIMDAllowPrivateNetwork", "ScopesSupported", "Consent", "IntrospectionSecret",
		},
	},
	{
		title: "Access policy",
		intro: "Who may sign in, and which methods, tools, prompts and resources each caller may use through the gateway: a YAML file, " +
			"checked by `oidcproxy check` and reloaded on SIGHUP or `POST /policy/reload` on the admin listener. " +
			"See docs/policy.md for its format, worked examples and what a refused caller sees.",
		fields: []string{"PolicyFile"},
	},
	{
		title: "Machines and enterprise-managed authorization",
		intro: "Machine clients an operator created use the client_credentials grant (always on); enterprise identity providers vouch for " +
			"their users with ID-JAGs at the jwt-bearer grant (on when both settings below are set). See docs/machines.md.",
		fields: []string{"TrustedIDJAGIssuers", "IDJAGClients"},
	},
	{
		title: "Storage, keys and token lifetimes",
		intro: "The store holds registered clients, grants, hashed codes and refresh tokens, and the sealed signing keys; " +
			"upstream tokens in it are sealed with a key derived from `ENCRYPTION_KEY`. It is the bbolt file at `STORE_PATH`, " +
			"or, with `DATABASE_URL`, a PostgreSQL database that any number of instances share (see docs/deployment.md). " +
			"See docs/operations.md for backups and key rotation.",
		fields: []string{"StorePath", "DatabaseURL", "DatabaseMaxConns", "DatabaseTimeout", "EncryptionKey", "AccessTokenTTL", "RefreshTokenTTL", "RefreshReuseGrace"},
	},
	{
		title: "Gateway",
		intro: "With `MCP_UPSTREAM` set, the proxy also guards an MCP server: it checks the bearer token on every request to `MCP_PATH`, " +
			"removes it, adds the identity headers below and streams the request to the backend.",
		fields: []string{"MCPUpstream", "AllowedOrigins", "UserHeader", "EmailHeader", "ClientHeader", "UpstreamTokenHeader", "MaxBodyBytes",
			"GatewayBodyTimeout", "MCPUpstreamIdleTimeout"},
	},
	{
		title: "Abuse limits",
		intro: "Rate limits per client address on the authorization server's endpoints and per signed-in subject on the gateway, " +
			"each a sustained rate per minute with a burst, answered with 429 and `Retry-After`; 0 turns a limit off. " +
			"They are counted in each instance's memory: behind a load balancer, every instance allows the full rate. " +
			"Behind a reverse proxy, list it in `TRUSTED_PROXIES`, or every client is counted as the proxy's address. " +
			"Registration hygiene bounds the clients `/register` may create and sweeps those nobody signs in through. " +
			"See docs/operations.md, \"Abuse limits\".",
		fields: []string{
			"TrustedProxies", "TrustedProxyHeader",
			"RateLimitRegister", "RateLimitRegisterBurst", "RateLimitCIMD", "RateLimitCIMDBurst",
			"RateLimitAuthorize", "RateLimitAuthorizeBurst", "RateLimitToken", "RateLimitTokenBurst",
			"RateLimitRevoke", "RateLimitRevokeBurst", "RateLimitIntrospect", "RateLimitIntrospectBurst",
			"RateLimitGateway", "RateLimitGatewayBurst", "MaxClients", "UnusedClientTTL",
		},
	},
	{
		title:  "Logging",
		intro:  "Logs go to standard error; no code, token, verifier, secret or email is ever logged.",
		fields: []string{"LogLevel", "LogFormat", "TelemetryPublicEndpoint"},
	},
}

// otherSection collects settings that no docSection names.
const otherSection = "Other settings"

// docRegenerate is the command that rewrites docs/configuration.md; the
// document and the test that guards it both quote it.
const docRegenerate = "OIDCPROXY_UPDATE_DOCS=1 go test ./adapters/config -run TestConfigurationDocIsCurrent"

// docIntro is the hand-written part of the reference. It lives here, not in
// the Markdown file, so that the whole file is generated and a test can
// demand that it is current.
const docIntro = `# Configuration reference

<!-- Generated by config.Markdown from the struct tags of config.Config. Do not edit by hand:
change the tags or adapters/config/markdown.go, then run
` + docRegenerate + ` -->

oidcproxy reads every setting from four sources. From the highest precedence to the lowest:

1. a command-line flag: ` + "`oidcproxy serve --base-url https://mcp-auth.example.com`" + `;
2. an environment variable: ` + "`OIDC_PROXY_BASE_URL=https://mcp-auth.example.com`" + `;
3. a key in the YAML file named by ` + "`--config`" + ` or ` + "`OIDC_PROXY_CONFIG`" + `: ` + "`base_url: https://mcp-auth.example.com`" + `;
4. the default listed below.

A higher source replaces a value as a whole: lists and maps are never merged across sources.
An empty environment variable counts as unset. The YAML file is read strictly: an unknown or
repeated key is an error, so that a misspelt setting cannot silently fall back to its default.

Invalid configuration stops ` + "`oidcproxy serve`" + ` at start with every problem listed at once, each
named by its environment variable. ` + "`oidcproxy check`" + ` runs the same validation and also fetches the
provider's discovery document; ` + "`oidcproxy serve -h`" + ` lists every flag.

## Secrets

Settings marked *secret* are redacted whenever the configuration is printed or logged, and each
can be read from a file instead: ` + "`OIDC_PROXY_<NAME>_FILE`" + `, ` + "`--<name>-file`" + ` or ` + "`<name>_file`" + ` in the
YAML file, where a relative path is resolved against the YAML file's directory. Trailing
newlines are trimmed; an empty file is an error (an empty mounted secret must not turn into
"unset", which for ` + "`ENCRYPTION_KEY`" + ` would create a new key file), and so is a file over 64 KiB, and
so is setting a secret and its file in the same source. Prefer the file variants (systemd
credentials, Kubernetes Secret volumes): other local users can read command-line flags, and
environment variables end up in crash reports and child processes.

## Example file

` + "```yaml" + `
# oidcproxy.yaml, used with: oidcproxy serve --config oidcproxy.yaml
base_url: https://mcp-auth.example.com
provider: oidc
config_url: https://login.example.com/.well-known/openid-configuration
client_id: oidcproxy
# Relative paths are resolved against this file's directory.
client_secret_file: secrets/client_secret
encryption_key_file: secrets/encryption_key
store_path: /var/lib/oidcproxy/oidcproxy.db
mcp_upstream: http://127.0.0.1:3000/mcp
access_token_ttl: 1h
log_format: json
` + "```" + `

Telemetry is configured with the standard OpenTelemetry ` + "`OTEL_*`" + ` environment variables
(` + "`OTEL_SERVICE_NAME`" + `, ` + "`OTEL_EXPORTER_OTLP_ENDPOINT`" + `, …), which this reference does not repeat.
`

// Markdown renders the settings reference (docs/configuration.md) from
// Fields: the precedence rules, an index of every setting, and one entry per
// setting with its environment variable, flag, YAML key, type, default,
// secret marker, file variants and help text. The output depends only on
// the struct tags, the sections given and this file, so it is the same on
// every call and a test can require the committed document to equal it.
func Markdown(providers Sections) string {
	var b strings.Builder
	b.WriteString(docIntro)

	sections := groupFields(Fields(providers))
	b.WriteString("\n## Index\n\n")
	b.WriteString("| environment variable | flag | YAML key | default |\n|---|---|---|---|\n")
	for _, s := range sections {
		for _, f := range s.fields {
			env := fmt.Sprintf("[`%s`](#%s)", f.Env, anchor(f.Env))
			if f.Secret {
				env += " (secret)"
			}
			fmt.Fprintf(&b, "| %s | `--%s` | `%s` | %s |\n", env, f.Flag, f.YAML, tableDefault(f))
		}
	}

	for _, s := range sections {
		fmt.Fprintf(&b, "\n## %s\n\n", s.title)
		if s.intro != "" {
			fmt.Fprintf(&b, "%s\n", s.intro)
		}
		for _, f := range s.fields {
			writeField(&b, f)
		}
	}
	return b.String()
}

// renderedSection is a docSection with its fields resolved.
type renderedSection struct {
	title, intro string
	fields       []Field
}

// groupFields resolves docSections against all, dropping names that no
// longer exist and appending unplaced fields, in declaration order, under
// otherSection.
func groupFields(all []Field) []renderedSection {
	byName := make(map[string]Field, len(all))
	for _, f := range all {
		if f.Provider == "" {
			byName[f.Name] = f
		}
	}
	placed := map[Field]bool{}
	out := make([]renderedSection, 0, len(docSections)+1)
	for _, s := range docSections {
		rs := renderedSection{title: s.title, intro: s.intro}
		if s.presets {
			var names []string
			for _, f := range all {
				if f.Provider != "" && !placed[f] {
					rs.fields = append(rs.fields, f)
					placed[f] = true
					if !slices.Contains(names, f.Provider) {
						names = append(names, f.Provider)
					}
				}
			}
			rs.intro = fmt.Sprintf(s.intro, providerList(names))
		}
		for _, name := range s.fields {
			if f, ok := byName[name]; ok && !placed[f] {
				rs.fields = append(rs.fields, f)
				placed[f] = true
			}
		}
		if len(rs.fields) > 0 {
			out = append(out, rs)
		}
	}
	other := renderedSection{title: otherSection}
	for _, f := range all {
		if !placed[f] {
			other.fields = append(other.fields, f)
		}
	}
	if len(other.fields) > 0 {
		out = append(out, other)
	}
	return out
}

// writeField renders one setting's entry.
func writeField(b *strings.Builder, f Field) {
	fmt.Fprintf(b, "\n### `%s`\n\n%s\n\n", f.Env, f.Help)
	fmt.Fprintf(b, "- flag: `--%s`\n", f.Flag)
	fmt.Fprintf(b, "- YAML key: `%s`\n", f.YAML)
	fmt.Fprintf(b, "- type: %s\n", typeDoc(f.Type))
	if f.Default != "" {
		fmt.Fprintf(b, "- default: `%s`\n", f.Default)
	} else {
		b.WriteString("- default: none\n")
	}
	if f.Secret {
		b.WriteString("- secret: yes, redacted whenever the configuration is printed or logged\n")
		fmt.Fprintf(b, "- from a file: `%s`, `--%s`, `%s`\n", f.FileEnv, f.FileFlag, f.FileYAML)
	}
	fmt.Fprintf(b, "- Go field: `%s.%s`\n", f.Struct, f.Name)
}

// typeDoc explains how a value of each type is written in every source.
func typeDoc(t string) string {
	switch t {
	case typeString:
		return "string"
	case typeBool:
		return "boolean, `true` or `false` (a bare `--flag` means true)"
	case typeInt:
		return "whole number"
	case typeDuration:
		return "Go duration such as `90s`, `15m` or `1h`"
	case typeList:
		return "list: items separated by commas or spaces in flags and the environment (a repeated flag adds items), a YAML sequence or string in the file"
	case typeMap:
		return "map: `name=value` pairs separated by commas in flags and the environment, a YAML mapping in the file"
	default:
		return t
	}
}

// tableDefault renders a default for the index table, where a cell must
// not contain an unescaped pipe.
func tableDefault(f Field) string {
	if f.Default == "" {
		return "—"
	}
	return "`" + strings.ReplaceAll(f.Default, "|", `\|`) + "`"
}

// anchor is the fragment GitHub and most Markdown renderers give a heading
// that consists of one code span: lower case, with the characters kept that
// such anchors keep.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

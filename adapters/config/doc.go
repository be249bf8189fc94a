// Package config loads and validates oidcproxy's settings.
//
// Every setting is one field of Config, and the field's struct tags are the
// only place its names, default and help text are written down:
//
//	env:"BASE_URL"      environment variable OIDC_PROXY_BASE_URL
//	yaml:"base_url"     key in the YAML file
//	flag:"base-url"     command-line flag --base-url
//	default:"…"         value used when no source sets the field
//	secret:"true"       redacted when printed; may also come from a file
//	help:"…"            one sentence for --help and the generated docs
//
// Loading, help output and documentation all read these tags through Fields,
// so a setting cannot be documented under one name and read under another.
//
// A provider preset's own settings (a tenant, a domain) are not fields of
// Config: each provider owns a settings section, a struct with the same
// tags, which the loader fills from the same sources with the same rules
// and keeps in Config.ProviderSections. The configuration cannot import the
// providers, so the composition root hands it their sections (Sections) and,
// for Validate, their rules (ValidateOptions.Provider); nothing here names
// a provider.
//
// Sources, highest precedence first: command-line flags, environment
// variables, the YAML file named by --config or OIDC_PROXY_CONFIG, and the
// defaults. A higher source replaces a value as a whole (lists and maps are
// not merged), and an empty environment variable counts as unset. Every secret can also be read from a file through
// OIDC_PROXY_<NAME>_FILE, --<name>-file or <name>_file in YAML; a relative
// path in the YAML file is resolved against the file's directory.
//
// Load only parses; Validate checks the result and reports every problem at
// once, naming each setting by its environment variable, so an operator can
// fix a deployment in one pass. Neither ever puts a secret value into an
// error.
package config

// Package providers maps provider names (the PROVIDER setting) to their
// settings sections, so that the composition root imports no provider by
// itself and adding an identity provider is one package plus one Registry
// line.
//
// A provider's section (its Config) holds the settings only it reads, with
// the struct tags the configuration loader understands, and its own
// Validate and Open, the way dex's connectors each own a Config. The
// settings every provider shares are oidc.Settings, because every provider
// is OpenID Connect underneath; presets derive what their IdP fixes
// (discovery URL, parameters, quirks) and wrap the generic provider.
package providers

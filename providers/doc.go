// Package providers maps provider names (the PROVIDER setting) to
// constructors, so that the composition root imports no provider by itself
// and adding an identity provider is one package plus one Registry line.
//
// Every constructor takes the same oidc.Settings, because every provider is
// OpenID Connect underneath; presets fill in what their IdP fixes (discovery
// URL, parameters, quirks) and wrap the generic provider.
package providers

// Package oidc is the generic OpenID Connect identity provider: it works with
// any IdP that publishes an OpenID Provider discovery document.
//
// New fetches the discovery document with go-oidc (which checks that the
// document's issuer matches the URL it was fetched from) and validates it.
// The authorization code exchange and the refresh use golang.org/x/oauth2;
// ID tokens are verified with go-oidc against the IdP's JWKS, with the signing
// algorithms the IdP announces (never an assumed RS256); the nonce is checked
// in constant time. When the operator configures an audience, an algorithm or
// required scopes, the upstream access token is verified too.
//
// Every upstream call (discovery, JWKS, token, refresh, userinfo,
// revocation) goes through the *http.Client given to New, so that telemetry,
// proxies and test transports see all of them, and each call is bounded by
// Settings.Timeout. Userinfo is asked only when the ID token has no email
// (IdPs that follow OpenID Connect Core 5.4 keep it out of ID tokens).
//
// Errors returned by the ports methods are *domain.Error values: a refusal or
// an unverifiable answer is access_denied (invalid_grant for a refused
// refresh), an unreachable IdP is temporarily_unavailable. The IdP's own
// error text and every token, code and secret stay out of the descriptions;
// only the private cause carries the IdP's error code and description.
//
// Settings are what every provider shares. Each provider also has its own
// settings section, a struct with Validate and Open whose tagged fields the
// configuration fills (Config is the generic provider's, with no fields);
// the registry in package providers lists them by name. Validate reports
// problems as *SettingError values, named by setting, before any request.
//
// Presets for specific IdPs (auth0, google, azure) build on this package by
// deriving Settings from their own section, passing Options for the rules
// their IdP bends (WithScopes, WithIssuerPolicy, WithIDTokenCheck,
// WithAccessTokenPolicy, WithOpaqueAccessTokens) and embedding *Provider.
// The generic code never switches on a provider name.
package oidc

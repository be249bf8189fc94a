package oidc

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Option adapts the generic provider to one IdP's quirks. Presets (auth0,
// google, azure) pass options to New; the plain "oidc" provider uses none.
// Each option is one small capability, so a preset names exactly the rules
// it bends and the generic code never switches on provider names.
type Option func(*options)

// options are the quirks New was given; the zero value is plain OpenID
// Connect.
type options struct {
	scopes       ScopeMapper
	issuer       IssuerPolicy
	idCheck      func(claims map[string]any) error
	accessPolicy func(issuer string, claims map[string]any) error
	opaque       bool
	trustEmail   bool
}

// ScopeMapper translates scopes between oidcproxy's forms (what MCP clients
// ask for and REQUIRED_SCOPES names) and the forms one IdP expects on the
// authorization request and echoes in its answers.
type ScopeMapper interface {
	// Upstream returns the scope list to send to the IdP for scopes, which
	// holds openid, offline_access when discovery lists it, the required
	// scopes and then the client's, in that order, each once. Empty
	// entries and duplicates in the result are dropped by the caller.
	Upstream(scopes []string) []string
	// Local returns the local form of one scope the IdP granted (from the
	// token response's scope or an access token's scope/scp claim), or ""
	// to drop it. RequiredScopes are compared with local forms.
	Local(scope string) string
}

// WithScopes maps scopes through m on the way to the IdP and back (Google's
// userinfo URLs, Entra's api://{client_id}/ prefixes, Auth0's mandatory
// offline_access).
func WithScopes(m ScopeMapper) Option {
	return func(o *options) { o.scopes = m }
}

// IssuerPolicy accepts issuers that differ, byte for byte, from the one the
// discovery document names. Microsoft Entra's multi-tenant endpoints
// publish the issuer "https://login.microsoftonline.com/{tenantid}/v2.0"
// while each token carries its tenant's issuer and a tid claim, and a
// tenant named by domain answers with its GUID issuer.
type IssuerPolicy interface {
	// AcceptDiscovery reports whether the discovery document fetched from
	// configured (ConfigURL without the well-known suffix) may name
	// discovered as the issuer. It is asked only when the two differ.
	AcceptDiscovery(configured, discovered string) bool
	// AcceptToken reports whether a token whose signature verified against
	// the IdP's keys was issued by the IdP whose discovery issuer is
	// issuer, judging by the token's claims (iss, tid, ...). It decides
	// for every ID token, one whose iss is issuer included (a template
	// issuer must not be accepted verbatim), and for every access token
	// unless WithAccessTokenPolicy decides for those.
	AcceptToken(issuer string, claims map[string]any) bool
}

// WithIssuerPolicy lets p accept discovery documents and tokens whose
// issuer is not the configured one. Without it, both must match exactly
// (apart from a trailing slash on the discovery issuer, see New).
func WithIssuerPolicy(p IssuerPolicy) Option {
	return func(o *options) { o.issuer = p }
}

// WithIDTokenCheck adds check to the verification of every ID token, at
// login and on refresh, after signature, issuer, audience, expiry and nonce
// passed. An error refuses the token (access_denied at login, invalid_grant
// on refresh); its text goes into the private cause only. Google's hosted
// domain restriction is such a check on the verified hd claim.
func WithIDTokenCheck(check func(claims map[string]any) error) Option {
	return func(o *options) { o.idCheck = check }
}

// WithAccessTokenPolicy hands the judgement of upstream access tokens
// issuer and audience to accept, for an IdP that issues more than one
// documented shape of access token, each with its own issuer and audience
// (Entra's v1.0 and v2.0 tokens). accept receives the discovery issuer and
// the claims of a token whose signature, algorithm and expiry verified
// against the IdP's keys, and returns nil or why the token is refused (the
// reason goes into the private cause only). For access tokens it replaces
// the issuer policy and the comparison with Settings.Audience; required
// scopes are still checked afterwards. With it, a checked access token must
// be a JWT: opaque tokens cannot be judged.
func WithAccessTokenPolicy(accept func(issuer string, claims map[string]any) error) Option {
	return func(o *options) { o.accessPolicy = accept }
}

// WithOpaqueAccessTokens declares that the IdP's access tokens are not meant
// to be read by its clients (Google's are opaque strings of varying
// format): they are never parsed, not even when they look like a JWT, and
// the identity comes from the verified ID token alone. RequiredScopes are
// then checked against the token response's scope. New refuses Audience
// and Algorithm with this option, because neither can be checked.
func WithOpaqueAccessTokens() Option {
	return func(o *options) { o.opaque = true }
}

// WithVerifiedEmails declares that the IdP verifies every email address it
// returns, for an IdP that says so in its documentation but sends no
// email_verified claim: the provider then reports TrustsEmail, and an
// access policy matches its addresses by email and domain. Never use it
// for an IdP whose users or tenant administrators can set an address they
// do not own (Entra ID's email claim is such an address).
func WithVerifiedEmails() Option {
	return func(o *options) { o.trustEmail = true }
}

// check reports settings the options make impossible.
func (o options) check(s Settings) error {
	var errs []error
	if o.opaque {
		if s.Audience != "" {
			errs = append(errs, errors.New("an audience cannot be checked: this provider's access tokens are opaque"))
		}
		if s.Algorithm != "" {
			errs = append(errs, errors.New("an access token algorithm cannot be checked: this provider's access tokens are opaque"))
		}
	}
	return errors.Join(errs...)
}

// upstreamScopes maps a scope list for the authorization request.
func (o options) upstreamScopes(scopes []string) []string {
	if o.scopes == nil {
		return scopes
	}
	return uniqueScopes(o.scopes.Upstream(slices.Clone(scopes)))
}

// localScopes maps scopes the IdP granted to their local forms.
func (o options) localScopes(scopes []string) []string {
	if o.scopes == nil {
		return scopes
	}
	out := make([]string, 0, len(scopes))
	for _, s := range scopes {
		out = append(out, o.scopes.Local(s))
	}
	return uniqueScopes(out)
}

// localScope maps a space-separated scope parameter to local forms.
func (o options) localScope(scope string) string {
	if o.scopes == nil || scope == "" {
		return scope
	}
	return strings.Join(o.localScopes(strings.Fields(scope)), " ")
}

// uniqueScopes drops empty entries and repeats, keeping order.
func uniqueScopes(scopes []string) []string {
	out := make([]string, 0, len(scopes))
	for _, s := range scopes {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// checkIssuer applies the issuer policy to a verified token. Without a
// policy go-oidc has compared iss with the discovery issuer already.
func (p *Provider) checkIssuer(iss string, claims func(any) error) error {
	if p.opts.issuer == nil {
		return nil
	}
	var all map[string]any
	if err := claims(&all); err != nil {
		return err
	}
	if !p.opts.issuer.AcceptToken(p.issuer, all) {
		return fmt.Errorf("issued by %q, which the issuer policy does not accept for %q", truncate(iss, 200), p.issuer)
	}
	return nil
}

package usecase

import (
	"errors"
	"time"

	"github.com/oidcproxy/oidcproxy/domain"
)

// Settings are the policy knobs of the authorization server, resolved from
// configuration by the composition root. NewApplication hands each handler
// the part it needs (ClientPolicy, TokenPolicy, AuthorizePolicy).
type Settings struct {
	// Issuer is our issuer identifier, byte-equal to the metadata's issuer.
	Issuer string
	// Resource is the canonical URI of the protected MCP server: the default
	// and only accepted RFC 8707 resource, and the audience of our tokens.
	Resource string
	// SupportedScopes are the scopes a client may request.
	SupportedScopes []string
	// RequiredScopes are the scopes the protected MCP server requires;
	// they decide what a client that requests none is granted
	// (domain.DefaultScopes).
	RequiredScopes []string
	// AccessTokenTTL and RefreshTokenTTL bound our tokens.
	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	// RefreshReuseGrace is how long after a rotation a second use of the
	// rotated token by its client, while the successor is unused, counts
	// as a retry after a lost response instead of theft; zero is strict.
	RefreshReuseGrace time.Duration
	// Consent decides when the consent page is shown.
	Consent domain.ConsentMode
	// RedirectPatterns, when non-empty, restrict the redirect URIs clients
	// may register.
	RedirectPatterns []domain.RedirectPattern
	// ForwardResource sends the client's resource indicator upstream.
	ForwardResource bool
	// ClientIDURLAllowIPLiteral lets client_id URLs (client ID metadata
	// documents) name IP literals: the private-network allowance of
	// development and tests, which the fetcher mirrors for the addresses it
	// connects to.
	ClientIDURLAllowIPLiteral bool
	// IntrospectionSecret, when set, is the secret resource servers present
	// at /introspect; the use case keeps only its hash.
	IntrospectionSecret string
	// MaxClients bounds the clients that registered themselves at
	// /register; zero is no bound.
	MaxClients int
	// UnusedClientTTL is how long a self-registered client that never
	// completed a grant is kept; zero keeps it forever.
	UnusedClientTTL time.Duration
	// TokenEndpoint is the URL of our token endpoint: besides Issuer, the
	// audience a client assertion (private_key_jwt) may name.
	TokenEndpoint string
	// TrustedIDJAGIssuers are the enterprise IdPs whose ID-JAGs the
	// jwt-bearer grant accepts, and IDJAGClients the clients that may use
	// it; the grant is off while either is empty.
	TrustedIDJAGIssuers []string
	IDJAGClients        []string
}

// validate reports every invalid setting.
func (s Settings) validate() error {
	var errs []error
	if s.MaxClients < 0 {
		errs = append(errs, errors.New("usecase: the client bound must not be negative"))
	}
	if s.UnusedClientTTL < 0 {
		errs = append(errs, errors.New("usecase: the unused client lifetime must not be negative"))
	}
	if (len(s.TrustedIDJAGIssuers) == 0) != (len(s.IDJAGClients) == 0) {
		errs = append(errs, errors.New("usecase: the jwt-bearer grant needs both trusted ID-JAG issuers and the clients allowed to use it"))
	}
	return errors.Join(append(errs, s.Tokens().validate(), s.Authorize().validate())...)
}

// IDJAG reports whether the jwt-bearer grant (enterprise-managed
// authorization) is configured.
func (s Settings) IDJAG() bool { return len(s.TrustedIDJAGIssuers) > 0 && len(s.IDJAGClients) > 0 }

// assertionAudience is what a client assertion's aud may name
// (domain.CheckClientAssertion): our issuer identifier, which
// draft-ietf-oauth-rfc7523bis makes the one value clients send, and, from
// assertions that do not declare themselves rfc7523bis-style with the
// client-authentication+jwt typ, our token endpoint URL, which RFC 7523
// allowed, OpenID Connect Core recommends and most client libraries still
// send. Accepting the endpoint URL keeps those clients working; the
// draft's attack on it needs a client that takes its audience from a
// malicious server's metadata and sends the assertion there, a defect of
// the client that the client fixes, and a client that fixed it sends the
// typ.
func (s Settings) assertionAudience() domain.ClientAssertionAudience {
	return domain.ClientAssertionAudience{Issuer: s.Issuer, TokenEndpoint: s.TokenEndpoint}
}

// ClientPolicy is how client metadata is judged: at registration and in
// client ID metadata documents alike.
type ClientPolicy struct {
	// RedirectPatterns, when non-empty, restrict the redirect URIs clients
	// may use.
	RedirectPatterns []domain.RedirectPattern
	// AllowIPLiteral lets client_id URLs name IP literals (development and
	// tests only).
	AllowIPLiteral bool
	// MaxClients bounds the self-registered clients; zero is no bound.
	MaxClients int
}

// TokenPolicy is what the proxy's tokens name and how long they live.
type TokenPolicy struct {
	// Issuer is the iss of our access tokens.
	Issuer string
	// AccessTokenTTL bounds an access token; RefreshTokenTTL bounds a
	// refresh token and, sliding, its grant.
	AccessTokenTTL, RefreshTokenTTL time.Duration
	// RefreshReuseGrace is the retry window of refresh-token rotation
	// (domain.DecideRefresh).
	RefreshReuseGrace time.Duration
}

func (p TokenPolicy) validate() error {
	var errs []error
	if p.Issuer == "" {
		errs = append(errs, errors.New("usecase: issuer is empty"))
	}
	if p.AccessTokenTTL <= 0 || p.RefreshTokenTTL <= 0 {
		errs = append(errs, errors.New("usecase: token lifetimes must be positive"))
	}
	if p.RefreshReuseGrace < 0 {
		errs = append(errs, errors.New("usecase: the refresh reuse grace must not be negative"))
	}
	return errors.Join(errs...)
}

// AuthorizePolicy is what an authorization request may ask for, and when
// the user is asked for consent.
type AuthorizePolicy struct {
	// Resource is the one RFC 8707 resource served.
	Resource string
	// SupportedScopes may be requested; DefaultScopes are granted when a
	// request names none.
	SupportedScopes, DefaultScopes []string
	// Consent decides when the consent page is shown.
	Consent domain.ConsentMode
	// ForwardResource sends the resource indicator upstream.
	ForwardResource bool
}

func (p AuthorizePolicy) validate() error {
	var errs []error
	if p.Resource == "" {
		errs = append(errs, errors.New("usecase: resource is empty"))
	}
	if !p.Consent.Valid() {
		errs = append(errs, errors.New("usecase: unknown consent mode"))
	}
	return errors.Join(errs...)
}

// Clients is the client part of the settings.
func (s Settings) Clients() ClientPolicy {
	return ClientPolicy{RedirectPatterns: s.RedirectPatterns, AllowIPLiteral: s.ClientIDURLAllowIPLiteral, MaxClients: s.MaxClients}
}

// Sweep is what the sweeper removes besides expired records.
func (s Settings) Sweep() SweepPolicy {
	return SweepPolicy{UnusedClientTTL: s.UnusedClientTTL}
}

// Tokens is the token part of the settings.
func (s Settings) Tokens() TokenPolicy {
	return TokenPolicy{
		Issuer:            s.Issuer,
		AccessTokenTTL:    s.AccessTokenTTL,
		RefreshTokenTTL:   s.RefreshTokenTTL,
		RefreshReuseGrace: s.RefreshReuseGrace,
	}
}

// Authorize is the authorization-request part of the settings.
func (s Settings) Authorize() AuthorizePolicy {
	return AuthorizePolicy{
		Resource:        s.Resource,
		SupportedScopes: s.SupportedScopes,
		DefaultScopes:   domain.DefaultScopes(s.RequiredScopes, s.SupportedScopes),
		Consent:         s.Consent,
		ForwardResource: s.ForwardResource,
	}
}

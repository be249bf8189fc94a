package domain

import (
	"slices"
	"time"
)

// ApplicationType is the OpenID Connect Registration application_type,
// which decides the redirect URI rules.
type ApplicationType string

// The application types of OpenID Connect Dynamic Client Registration 1.0.
const (
	// ApplicationNative is a desktop, CLI or mobile app (and the default,
	// because most MCP clients register without an application_type).
	ApplicationNative ApplicationType = "native"
	// ApplicationWeb is a browser-based or server-side web application.
	ApplicationWeb ApplicationType = "web"
)

// AuthMethod is a token endpoint authentication method (RFC 7591).
type AuthMethod string

// The token endpoint authentication methods oidcproxy supports for its own
// clients.
const (
	AuthNone              AuthMethod = "none"
	AuthClientSecretBasic AuthMethod = "client_secret_basic"
	AuthClientSecretPost  AuthMethod = "client_secret_post"
	// AuthPrivateKeyJWT is RFC 7523 2.2: the client signs a short-lived
	// assertion with a key it published (JWKS or JWKSURI); no shared secret.
	AuthPrivateKeyJWT AuthMethod = "private_key_jwt"
)

// Grant types and the one response type oidcproxy accepts.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	// GrantClientCredentials is a machine's own grant (RFC 6749 4.4), for
	// clients an operator created.
	GrantClientCredentials = "client_credentials"
	// GrantJWTBearer is the RFC 7523 JWT bearer grant, which carries an
	// enterprise identity assertion (ID-JAG).
	GrantJWTBearer   = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	ResponseTypeCode = "code"
)

// Client is an OAuth client registered with oidcproxy. Confidential clients
// have a SecretHash; the secret itself is shown once at registration and
// never stored.
type Client struct {
	ID                      string
	SecretHash              []byte
	Name                    string
	RedirectURIs            []string
	ApplicationType         ApplicationType
	TokenEndpointAuthMethod AuthMethod
	GrantTypes              []string
	ResponseTypes           []string
	Scope                   string
	ClientURI               string
	LogoURI                 string
	Contacts                []string
	SoftwareID              string
	SoftwareVersion         string
	// JWKS is the client's public key set (a JSON JWK Set document) and
	// JWKSURI where it publishes one; either lets it authenticate with
	// private_key_jwt. Never both.
	JWKS    []byte
	JWKSURI string
	// Operator marks a client an operator created (`oidcproxy clients
	// create`) rather than one that registered itself at /register: only
	// those may use the client_credentials grant, and registration hygiene
	// never sweeps them.
	Operator  bool
	CreatedAt time.Time
	// FirstGrantAt is when the client's first grant was stored: a person
	// signed in through it and approved it. The store sets it, in the
	// transaction that stores that grant; zero means the client never
	// completed a sign-in, and registration hygiene sweeps such a
	// self-registered client once it is old enough.
	FirstGrantAt time.Time
}

// IsPublic reports whether the client has no secret and authenticates with
// PKCE alone.
func (c Client) IsPublic() bool { return c.TokenEndpointAuthMethod == AuthNone }

// UsesKeys reports whether the client authenticates with private_key_jwt,
// with the keys of its JWKS or JWKSURI.
func (c Client) UsesKeys() bool { return c.TokenEndpointAuthMethod == AuthPrivateKeyJWT }

// AllowsGrant reports whether the client registered the grant type.
func (c Client) AllowsGrant(grantType string) bool {
	return slices.Contains(c.GrantTypes, grantType)
}

// DisplayName is the name to show on the consent page: the registered name,
// or the client id when the client gave none.
func (c Client) DisplayName() string {
	if c.Name != "" {
		return c.Name
	}
	return c.ID
}

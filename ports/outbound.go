package ports

import (
	"context"
	"time"

	"github.com/oidcproxy/oidcproxy/domain"
)

// Clock tells the time; tests inject a fixed or stepping clock.
type Clock interface {
	Now() time.Time
}

// Random produces unguessable values.
type Random interface {
	// Token returns 256 random bits, base64url without padding.
	Token() string
}

// Sealer encrypts secrets at rest (upstream tokens, private keys) with
// authenticated encryption. The associated data binds a sealed value to its
// owner (a grant id, a key id) so sealed blobs cannot be swapped.
type Sealer interface {
	Seal(plaintext, associatedData []byte) ([]byte, error)
	Open(sealed, associatedData []byte) ([]byte, error)
}

// TokenIssuer signs and verifies oidcproxy's own access tokens and publishes
// the public keys.
type TokenIssuer interface {
	// Issue signs t (KeyID is filled in) and returns the compact JWT.
	Issue(ctx context.Context, t domain.AccessToken) (string, error)
	// Verify checks the signature against the key ring and returns the
	// claims. It does not judge iss, aud, time or scopes: the use case does.
	Verify(ctx context.Context, token string) (domain.AccessToken, error)
	// JWKS returns the public key set as a JSON document.
	JWKS(ctx context.Context) ([]byte, error)
}

// AuthCodeRequest is what oidcproxy asks the upstream IdP for when it sends
// the browser there.
type AuthCodeRequest struct {
	State         string
	Nonce         string
	CodeChallenge string // S256 of our own verifier
	// Scopes the MCP client asked for; the provider adds what it needs
	// ("openid", refresh scopes) and maps the rest to its own forms.
	Scopes []string
	// Resource is forwarded only when the operator enabled it.
	Resource string
}

// ExchangeRequest is the callback's code exchange with the upstream IdP.
type ExchangeRequest struct {
	Code     string
	Verifier string
	Nonce    string
	// Issuer is the RFC 9207 "iss" parameter of the authorization response,
	// "" when the IdP sent none. When present it must equal the IdP's issuer
	// (mix-up defence).
	Issuer string
}

// IdentityProvider is the upstream IdP as the core sees it: build the
// authorize URL, exchange the code for a verified identity. Refresh and
// revocation are optional capabilities (Refresher, Revoker).
type IdentityProvider interface {
	// Name is the provider's registry name, for logs and spans.
	Name() string
	// AuthCodeURL is where the browser goes to log in.
	AuthCodeURL(req AuthCodeRequest) string
	// Exchange redeems the upstream code and verifies the ID token (issuer,
	// audience, nonce, expiry, signature). Errors are *domain.Error:
	// access_denied when the IdP's answer cannot be verified,
	// temporarily_unavailable when the IdP cannot be reached.
	Exchange(ctx context.Context, req ExchangeRequest) (domain.Identity, domain.UpstreamTokens, error)
}

// Refresher is a provider that can refresh upstream tokens. An IdP refusal
// is reported as domain.ErrInvalidGrant.
type Refresher interface {
	Refresh(ctx context.Context, current domain.UpstreamTokens) (Refreshed, error)
}

// Refreshed is the outcome of an upstream refresh.
type Refreshed struct {
	// Tokens are the new upstream tokens (the previous refresh token and
	// ID token carried over when the IdP sent none).
	Tokens domain.UpstreamTokens
	// Identity is who the new ID token says the user is, verified as at
	// sign-in and for the same subject; nil when the IdP sent no new ID
	// token, or the rest of the identity (userinfo) could not be fetched
	// just now: the identity stored with the grant then stands.
	Identity *domain.Identity
}

// EmailVerifier is a provider that knows whether its IdP verifies every
// email address it returns. An IdP that does, but sends no email_verified
// claim, would otherwise never have an address matched by an access
// policy's email and domain entries.
type EmailVerifier interface {
	TrustsEmail() bool
}

// Revoker is a provider that can revoke upstream tokens (RFC 7009).
type Revoker interface {
	Revoke(ctx context.Context, tokens domain.UpstreamTokens) error
}

// ReadinessChecker is a provider that can tell whether the IdP is reachable.
type ReadinessChecker interface {
	Ready(ctx context.Context) error
}

// KeyManager administers the signing key ring (the `keys` subcommand and the
// admin endpoints).
type KeyManager interface {
	// Keys lists the stored keys, oldest first.
	Keys(ctx context.Context) ([]domain.SigningKey, error)
	// Rotate makes a new key active; the previous one stays published for
	// maxTokenTTL so tokens it signed keep verifying.
	Rotate(ctx context.Context, maxTokenTTL time.Duration) (domain.SigningKey, error)
	// Reload re-reads the ring (a key rotated by another process).
	Reload(ctx context.Context) error
	// Prune deletes keys past their RemoveAfter.
	Prune(ctx context.Context) (int, error)
}

// ClientMetadataDocument is a client's metadata as published at its
// client_id URL (draft-ietf-oauth-client-id-metadata-document), parsed but
// not yet judged: the use cases apply the registration rules to it, so a
// document client and a registered client meet the same redirect URI policy.
type ClientMetadataDocument struct {
	// ClientID is the document's own client_id member, "" when absent; it
	// must equal the URL it was fetched from, byte for byte.
	ClientID string
	// Metadata holds the RFC 7591 members, as a registration would carry
	// them.
	Metadata RegisterClientCommand
	// DeclaresSecret reports a client_secret or client_secret_expires_at
	// member: a published document cannot hold a shared secret, so such a
	// document is refused whatever its value.
	DeclaresSecret bool
}

// MetadataFetcher fetches client ID metadata documents for client_ids that
// are https URLs, behind SSRF guards, a size cap and a cache. Errors say
// why the document could not be had (unreachable, refused address, not
// JSON, too large); they name the URL's host, never the document's body.
type MetadataFetcher interface {
	FetchClientMetadata(ctx context.Context, clientID string) (ClientMetadataDocument, error)
}

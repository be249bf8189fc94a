package usecase

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// Bounds on client metadata: generous for real clients, small enough that a
// hostile registration cannot bloat the store.
const (
	maxRedirectURIs  = 20
	maxClientName    = 200
	maxContacts      = 10
	maxContactLength = 320
	maxMetadataURL   = 2000
	maxSoftwareField = 200
	// maxJWKSBytes bounds an inline key set: a few public keys, RSA ones
	// included, fit in well under half of it.
	maxJWKSBytes = 8 << 10
)

// keyChecker judges a client's inline JWK Set (ports.AssertionVerifier's
// CheckKeySet); nil means private_key_jwt is not supported.
type keyChecker func(jwks []byte) error

// RegisterClientHandler implements RFC 7591 dynamic client registration.
type RegisterClientHandler struct {
	store  ports.RegistrationStore
	clock  ports.Clock
	random ports.Random
	policy ClientPolicy
	// keys judges the key sets of private_key_jwt clients; nil refuses
	// that method.
	keys keyChecker
}

var _ ports.RegisterClient = (*RegisterClientHandler)(nil)

// NewRegisterClient builds dynamic client registration, bounded by
// policy.MaxClients.
func NewRegisterClient(store ports.RegistrationStore, clock ports.Clock, random ports.Random, policy ClientPolicy) (*RegisterClientHandler, error) {
	if err := need("NewRegisterClient", dep("client store", store), dep("clock", clock), dep("random source", random)); err != nil {
		return nil, err
	}
	return &RegisterClientHandler{store: store, clock: clock, random: random, policy: policy}, nil
}

// Handle validates the metadata, stores the client and returns it with its
// secret (clients authenticating with a secret only; the store keeps only
// the hash). A private_key_jwt client gets no secret: its keys are its
// credentials.
func (h *RegisterClientHandler) Handle(ctx context.Context, cmd ports.RegisterClientCommand) (ports.RegisterClientResult, error) {
	c, err := buildClient(cmd, h.policy, h.keys)
	if err != nil {
		return ports.RegisterClientResult{}, err
	}
	var secret string
	if !c.IsPublic() && !c.UsesKeys() {
		secret = h.random.Token()
		c.SecretHash = []byte(domain.HashToken(secret))
	}
	c.ID = h.random.Token()
	c.CreatedAt = h.clock.Now().UTC()
	if err := h.store.RegisterClient(ctx, c, h.policy.MaxClients); err != nil {
		if errors.Is(err, domain.ErrLimitReached) {
			// RFC 7591 has no code for a full server; its metadata is
			// fine, so invalid_client_metadata would send the client's
			// developer looking for a mistake that is not there. The bound
			// is temporary from the client's view: unused registrations
			// are swept.
			return ports.RegisterClientResult{}, domain.ErrTemporarilyUnavailable(
				"this server accepts no more client registrations for now; try again later, or ask its operator", err)
		}
		return ports.RegisterClientResult{}, serverError(fmt.Errorf("register client: %w", err))
	}
	return ports.RegisterClientResult{Client: c, ClientSecret: secret}, nil
}

// buildClient applies the registration rules to client metadata: those of
// POST /register and those of a client ID metadata document alike. keys
// judges an inline key set (nil: private_key_jwt is refused).
func buildClient(cmd ports.RegisterClientCommand, policy ClientPolicy, keys keyChecker) (domain.Client, error) {
	c := domain.Client{}
	switch domain.ApplicationType(cmd.ApplicationType) {
	case "":
		// Most MCP clients omit application_type and are native apps
		// listening on loopback.
		c.ApplicationType = domain.ApplicationNative
	case domain.ApplicationNative, domain.ApplicationWeb:
		c.ApplicationType = domain.ApplicationType(cmd.ApplicationType)
	default:
		return c, domain.ErrInvalidClientMetadata("application_type must be \"native\" or \"web\"")
	}

	switch domain.AuthMethod(cmd.TokenEndpointAuthMethod) {
	case "":
		c.TokenEndpointAuthMethod = domain.AuthNone
	case domain.AuthNone, domain.AuthClientSecretBasic, domain.AuthClientSecretPost:
		c.TokenEndpointAuthMethod = domain.AuthMethod(cmd.TokenEndpointAuthMethod)
	case domain.AuthPrivateKeyJWT:
		if keys == nil {
			return c, domain.ErrInvalidClientMetadata("token_endpoint_auth_method private_key_jwt is not supported by this server")
		}
		c.TokenEndpointAuthMethod = domain.AuthPrivateKeyJWT
	default:
		if keys == nil {
			return c, domain.ErrInvalidClientMetadata("token_endpoint_auth_method must be none, client_secret_basic or client_secret_post")
		}
		return c, domain.ErrInvalidClientMetadata("token_endpoint_auth_method must be none, client_secret_basic, client_secret_post or private_key_jwt")
	}
	if err := clientKeys(&c, cmd, policy.AllowIPLiteral, keys); err != nil {
		return c, err
	}

	if len(cmd.RedirectURIs) == 0 {
		return c, domain.ErrInvalidRedirectURI("at least one redirect URI is required")
	}
	if len(cmd.RedirectURIs) > maxRedirectURIs {
		return c, domain.ErrInvalidRedirectURI(fmt.Sprintf("at most %d redirect URIs may be registered", maxRedirectURIs))
	}
	for _, u := range cmd.RedirectURIs {
		if err := domain.ValidateRedirectURI(u, c.ApplicationType, policy.RedirectPatterns); err != nil {
			return c, err
		}
		if !slices.Contains(c.RedirectURIs, u) {
			c.RedirectURIs = append(c.RedirectURIs, u)
		}
	}

	// RFC 7591 defaults grant_types to authorization_code; MCP clients that
	// omit it still expect to refresh, so both are granted by default.
	c.GrantTypes = []string{domain.GrantAuthorizationCode, domain.GrantRefreshToken}
	if len(cmd.GrantTypes) > 0 {
		c.GrantTypes = nil
		for _, g := range cmd.GrantTypes {
			if g != domain.GrantAuthorizationCode && g != domain.GrantRefreshToken {
				return c, domain.ErrInvalidClientMetadata(fmt.Sprintf("unsupported grant type %q", clip(g)))
			}
			if !slices.Contains(c.GrantTypes, g) {
				c.GrantTypes = append(c.GrantTypes, g)
			}
		}
		if !slices.Contains(c.GrantTypes, domain.GrantAuthorizationCode) {
			return c, domain.ErrInvalidClientMetadata("grant_types must include authorization_code")
		}
	}
	c.ResponseTypes = []string{domain.ResponseTypeCode}
	for _, rt := range cmd.ResponseTypes {
		if rt != domain.ResponseTypeCode {
			return c, domain.ErrInvalidClientMetadata("response_types may only contain \"code\"")
		}
	}

	if cmd.Scope != "" {
		scopes, err := domain.ParseScope(cmd.Scope)
		if err != nil {
			return c, domain.ErrInvalidClientMetadata("scope is malformed")
		}
		c.Scope = domain.JoinScope(scopes)
	}
	var err error
	if c.Name, err = cleanText("client_name", cmd.ClientName, maxClientName); err != nil {
		return c, err
	}
	if c.SoftwareID, err = cleanText("software_id", cmd.SoftwareID, maxSoftwareField); err != nil {
		return c, err
	}
	if c.SoftwareVersion, err = cleanText("software_version", cmd.SoftwareVersion, maxSoftwareField); err != nil {
		return c, err
	}
	if c.ClientURI, err = cleanURL("client_uri", cmd.ClientURI); err != nil {
		return c, err
	}
	if c.LogoURI, err = cleanURL("logo_uri", cmd.LogoURI); err != nil {
		return c, err
	}
	if len(cmd.Contacts) > maxContacts {
		return c, domain.ErrInvalidClientMetadata(fmt.Sprintf("at most %d contacts", maxContacts))
	}
	for _, ct := range cmd.Contacts {
		v, err := cleanText("contacts", ct, maxContactLength)
		if err != nil {
			return c, err
		}
		if v != "" {
			c.Contacts = append(c.Contacts, v)
		}
	}
	return c, nil
}

// clientKeys applies the key rules of RFC 7591 2 to a private_key_jwt
// client: a key set by value (jwks) or by reference (jwks_uri), never both
// (the two could disagree), the set public signing keys only. The URI
// follows the rules of a client_id URL (domain.ValidateClientIDURL: https,
// a host and a path, no user information, fragment or dot-segments, no IP
// literal unless allowIPLiteral), which is what the fetcher will accept:
// the keys it serves decide who the client is. Clients of other methods
// have no use for keys here: what they send is not kept.
func clientKeys(c *domain.Client, cmd ports.RegisterClientCommand, allowIPLiteral bool, keys keyChecker) error {
	jwks := bytes.TrimSpace(cmd.JWKS)
	if bytes.Equal(jwks, []byte("null")) {
		jwks = nil
	}
	if !c.UsesKeys() {
		return nil
	}
	switch {
	case len(jwks) > 0 && cmd.JWKSURI != "":
		return domain.ErrInvalidClientMetadata("jwks and jwks_uri must not both be present")
	case len(jwks) == 0 && cmd.JWKSURI == "":
		return domain.ErrInvalidClientMetadata("private_key_jwt requires jwks or jwks_uri")
	case cmd.JWKSURI != "":
		if _, err := domain.ValidateClientIDURL(cmd.JWKSURI, allowIPLiteral); err != nil {
			return domain.ErrInvalidClientMetadata("jwks_uri must be an https URL with a host and a path, without user information, fragment or dot-segments").
				WithCause(err)
		}
		c.JWKSURI = cmd.JWKSURI
		return nil
	}
	if len(jwks) > maxJWKSBytes {
		return domain.ErrInvalidClientMetadata(fmt.Sprintf("jwks is larger than %d bytes", maxJWKSBytes))
	}
	if jwks[0] != '{' {
		return domain.ErrInvalidClientMetadata("jwks must be a JWK Set object")
	}
	if err := keys(jwks); err != nil {
		return domain.ErrInvalidClientMetadata("jwks must hold public signing keys for ES256, RS256 or EdDSA only").WithCause(err)
	}
	c.JWKS = bytes.Clone(jwks)
	return nil
}

// cleanText accepts human-readable metadata: trimmed, bounded, and safe
// text by domain.IsSafeText.
func cleanText(field, v string, max int) (string, error) {
	v = strings.TrimSpace(v)
	if len(v) > max {
		return "", domain.ErrInvalidClientMetadata(fmt.Sprintf("%s is longer than %d bytes", field, max))
	}
	if !domain.IsSafeText(v) {
		return "", domain.ErrInvalidClientMetadata(field + " contains control characters or is not valid UTF-8")
	}
	return v, nil
}

// cleanURL accepts an informational URL (client_uri, logo_uri): https, or
// http on loopback, never a script scheme.
func cleanURL(field, v string) (string, error) {
	if v == "" {
		return "", nil
	}
	if len(v) > maxMetadataURL {
		return "", domain.ErrInvalidClientMetadata(field + " is too long")
	}
	u, err := url.Parse(v)
	if err != nil || !u.IsAbs() || u.Host == "" || u.User != nil {
		return "", domain.ErrInvalidClientMetadata(field + " must be an absolute https URL")
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && domain.IsLoopbackHost(u.Hostname())) {
		return "", domain.ErrInvalidClientMetadata(field + " must be an absolute https URL")
	}
	return v, nil
}

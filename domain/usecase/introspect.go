package usecase

import (
	"context"
	"errors"
	"fmt"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// IntrospectHandler implements RFC 7662 token introspection for resource
// servers that cannot verify our JWTs themselves.
type IntrospectHandler struct {
	clients *Clients
	access  accessTokenVerifier
	grants  ports.GrantStore
	clock   ports.Clock
	issuer  string
	// secretHash, when set, is the hash (domain.HashToken) of the secret
	// resource servers present instead of client credentials: a presented
	// secret is compared as every stored secret is, by hash in constant
	// time (domain.EqualHash).
	secretHash string
}

var _ ports.Introspect = (*IntrospectHandler)(nil)

// NewIntrospect builds RFC 7662 introspection of tokens issued by issuer.
// secret is what resource servers may present instead of client
// credentials; it may be empty (then only confidential clients may ask).
func NewIntrospect(clients *Clients, tokens ports.TokenIssuer, grants ports.GrantStore, clock ports.Clock, issuer, secret string) (*IntrospectHandler, error) {
	access, err := newAccessTokenVerifier("NewIntrospect", tokens, grants, clock, issuer)
	if err := errors.Join(err, need("NewIntrospect", dep("clients", clients))); err != nil {
		return nil, err
	}
	h := &IntrospectHandler{clients: clients, access: access, grants: grants, clock: clock, issuer: issuer}
	if secret != "" {
		h.secretHash = domain.HashToken(secret)
	}
	return h, nil
}

// Handle authenticates the caller, then reports whether the token is
// active. Access tokens are described to any authenticated caller; refresh
// tokens only to the client they were issued to (nobody else has a reason
// to hold one). Everything else, including malformed input, is
// active=false (RFC 7662 2.2).
func (h *IntrospectHandler) Handle(ctx context.Context, cmd ports.IntrospectCommand) (ports.IntrospectResult, error) {
	var caller string // the authenticated client id; "" for the introspection secret
	switch {
	case cmd.Secret != "":
		if h.secretHash == "" || !domain.EqualHash(cmd.Secret, h.secretHash) {
			return ports.IntrospectResult{}, domain.ErrInvalidClient("introspection requires authentication")
		}
	default:
		client, err := h.clients.authenticate(ctx, cmd.Client)
		if err != nil {
			return ports.IntrospectResult{}, err
		}
		if client.IsPublic() {
			// A public client proves nothing about who is asking.
			return ports.IntrospectResult{}, domain.ErrInvalidClient("introspection requires a confidential client")
		}
		caller = client.ID
	}
	if cmd.Token == "" {
		return ports.IntrospectResult{}, domain.ErrInvalidRequest("token is missing")
	}
	now := h.clock.Now().UTC()
	if res, ok, err := h.accessToken(ctx, cmd.Token); err != nil || ok {
		return res, err
	}
	if caller == "" {
		return ports.IntrospectResult{}, nil
	}
	t, err := h.grants.GetRefreshToken(ctx, domain.HashToken(cmd.Token), now)
	if errors.Is(err, domain.ErrNotFound) {
		return ports.IntrospectResult{}, nil
	}
	if err != nil {
		return ports.IntrospectResult{}, serverError(fmt.Errorf("introspect: get refresh token: %w", err))
	}
	if t.Rotated() || t.ClientID != caller {
		return ports.IntrospectResult{}, nil
	}
	g, err := h.grants.GetGrant(ctx, t.GrantID, now)
	if errors.Is(err, domain.ErrNotFound) {
		return ports.IntrospectResult{}, nil
	}
	if err != nil {
		return ports.IntrospectResult{}, serverError(fmt.Errorf("introspect: get grant: %w", err))
	}
	return ports.IntrospectResult{
		Active:    true,
		TokenType: "refresh_token",
		Scope:     domain.JoinScope(t.Scopes),
		ClientID:  t.ClientID,
		Subject:   g.Subject,
		Audience:  g.Resource,
		Issuer:    h.issuer,
		ExpiresAt: t.ExpiresAt,
		IssuedAt:  t.IssuedAt,
	}, nil
}

// accessToken describes one of our access tokens if it is one and active.
// ok reports that the token was ours (a JWT we signed), active or not.
func (h *IntrospectHandler) accessToken(ctx context.Context, token string) (res ports.IntrospectResult, ok bool, err error) {
	at, _, err := h.access.live(ctx, token)
	switch domain.CodeOf(err) {
	case domain.CodeServerError, domain.CodeTemporarilyUnavailable:
		// Whether it was revoked cannot be told now: never "active".
		return res, true, err
	case domain.CodeInvalidToken:
		// Signed by us but dead (expired, revoked): inactive. Not ours at
		// all: maybe a refresh token.
		return res, at.JTI != "", nil
	}
	return ports.IntrospectResult{
		Active:    true,
		TokenType: "Bearer",
		Scope:     domain.JoinScope(at.Scopes),
		ClientID:  at.ClientID,
		Subject:   at.Subject,
		Audience:  at.Audience,
		Issuer:    at.Issuer,
		JTI:       at.JTI,
		ExpiresAt: at.ExpiresAt,
		IssuedAt:  at.IssuedAt,
		NotBefore: at.NotBefore,
	}, true, nil
}

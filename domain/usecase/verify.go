package usecase

import (
	"context"
	"errors"
	"fmt"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// VerifyAccessTokenHandler checks bearer tokens for resource servers (the
// gateway).
type VerifyAccessTokenHandler struct {
	tokens accessTokenVerifier
	sealer ports.Sealer
}

var _ ports.VerifyAccessToken = (*VerifyAccessTokenHandler)(nil)

// NewVerifyAccessToken builds the bearer check for tokens issued by issuer;
// sealer opens the upstream token for callers that ask for it.
func NewVerifyAccessToken(tokens ports.TokenIssuer, grants ports.GrantStore, sealer ports.Sealer, clock ports.Clock, issuer string) (*VerifyAccessTokenHandler, error) {
	v, err := newAccessTokenVerifier("NewVerifyAccessToken", tokens, grants, clock, issuer)
	err = errors.Join(err, need("NewVerifyAccessToken", dep("sealer", sealer)))
	if err != nil {
		return nil, err
	}
	return &VerifyAccessTokenHandler{tokens: v, sealer: sealer}, nil
}

// Handle accepts only our own tokens, for this resource, in their validity
// window, with the required scopes, whose grant is still alive. Upstream IdP
// tokens fail the signature check: there is no token passthrough. Asked
// WithUpstream, it also returns the grant's upstream access token, when the
// grant has upstream tokens: a machine's grant (client_credentials) and an
// enterprise IdP's (jwt-bearer) were made without a login at the upstream
// IdP, so they have none and UpstreamAccessToken stays empty.
func (h *VerifyAccessTokenHandler) Handle(ctx context.Context, cmd ports.VerifyAccessTokenCommand) (ports.VerifiedAccess, error) {
	at, grant, err := h.tokens.live(ctx, cmd.Token)
	if err != nil {
		return ports.VerifiedAccess{}, err
	}
	if at.Audience != cmd.Resource {
		return ports.VerifiedAccess{}, domain.ErrInvalidToken("the access token is meant for another resource")
	}
	if !at.HasScopes(cmd.RequiredScopes) {
		return ports.VerifiedAccess{}, domain.ErrInsufficientScope("the access token lacks a required scope")
	}
	access := ports.VerifiedAccess{Token: at, Grant: grant}
	if cmd.WithUpstream && len(grant.SealedUpstream) > 0 {
		// Only the use cases know how upstream tokens are sealed (and to
		// which grant they are bound), so the opening happens here, not in
		// the resource server that forwards the token.
		upstream, err := openUpstream(h.sealer, grant)
		if err != nil {
			return ports.VerifiedAccess{}, serverError(fmt.Errorf("verify access token: %w", err))
		}
		if upstream.AccessToken == "" {
			return ports.VerifiedAccess{}, serverError(errors.New("verify access token: the grant holds no upstream access token"))
		}
		access.UpstreamAccessToken = upstream.AccessToken
	}
	return access, nil
}

// accessTokenVerifier judges our own access tokens: the bearer check and
// introspection share it.
type accessTokenVerifier struct {
	tokens ports.TokenIssuer
	grants ports.GrantStore
	clock  ports.Clock
	issuer string
}

func newAccessTokenVerifier(constructor string, tokens ports.TokenIssuer, grants ports.GrantStore, clock ports.Clock, issuer string) (accessTokenVerifier, error) {
	err := need(constructor, dep("token issuer", tokens), dep("grant store", grants), dep("clock", clock))
	if issuer == "" {
		err = errors.Join(err, fmt.Errorf("usecase: %s: issuer is empty", constructor))
	}
	return accessTokenVerifier{tokens: tokens, grants: grants, clock: clock, issuer: issuer}, err
}

// live accepts one of our own access tokens that is signed by our key
// ring, issued by us, inside its validity window (domain.AccessToken's
// ExpiredAt and NotYetValidAt: no leeway) and whose grant is alive. Whom
// it is for and what it allows is the caller's judgement. The token is
// returned even when refused, so that a caller can tell "ours but dead"
// (its JTI is set) from "not ours".
func (v accessTokenVerifier) live(ctx context.Context, token string) (domain.AccessToken, domain.Grant, error) {
	if token == "" {
		return domain.AccessToken{}, domain.Grant{}, domain.ErrInvalidToken("no access token")
	}
	at, err := v.tokens.Verify(ctx, token)
	if err != nil {
		return at, domain.Grant{}, domain.ErrInvalidToken("the access token is not valid").WithCause(err)
	}
	now := v.clock.Now().UTC()
	switch {
	case at.Issuer != v.issuer:
		return at, domain.Grant{}, domain.ErrInvalidToken("the access token was issued by someone else")
	case at.ExpiredAt(now):
		return at, domain.Grant{}, domain.ErrInvalidToken("the access token has expired")
	case at.NotYetValidAt(now):
		return at, domain.Grant{}, domain.ErrInvalidToken("the access token is not valid yet")
	}
	grant, err := v.grants.GetGrant(ctx, at.GrantID, now)
	if errors.Is(err, domain.ErrNotFound) {
		return at, domain.Grant{}, domain.ErrInvalidToken("the access token has been revoked")
	}
	if err != nil {
		return at, domain.Grant{}, serverError(fmt.Errorf("verify access token: get grant: %w", err))
	}
	if at.Machine != grant.Machine || at.ClientID != grant.ClientID {
		// Our key signed it, so this is a bug or a key compromise: a
		// machine token must never pass for a user's, nor the reverse.
		return at, domain.Grant{}, domain.ErrInvalidToken("the access token does not match its grant")
	}
	return at, grant, nil
}

package usecase

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// clockLeeway tolerates small clock differences on exp and nbf.
const clockLeeway = 30 * time.Second

// VerifyAccessTokenHandler checks bearer tokens for resource servers (the
// gateway).
type VerifyAccessTokenHandler struct{ d Deps }

var _ ports.VerifyAccessToken = (*VerifyAccessTokenHandler)(nil)

// Handle accepts only our own tokens, for this resource, in their validity
// window, with the required scopes, whose grant is still alive. Upstream IdP
// tokens fail the signature check: there is no token passthrough.
func (h *VerifyAccessTokenHandler) Handle(ctx context.Context, cmd ports.VerifyAccessTokenCommand) (ports.VerifiedAccess, error) {
	if cmd.Token == "" {
		return ports.VerifiedAccess{}, domain.ErrInvalidToken("no access token")
	}
	at, err := h.d.Tokens.Verify(ctx, cmd.Token)
	if err != nil {
		return ports.VerifiedAccess{}, domain.ErrInvalidToken("the access token is not valid").WithCause(err)
	}
	now := h.d.Clock.Now().UTC()
	switch {
	case at.Issuer != h.d.Settings.Issuer:
		return ports.VerifiedAccess{}, domain.ErrInvalidToken("the access token was issued by someone else")
	case at.Audience != cmd.Resource:
		return ports.VerifiedAccess{}, domain.ErrInvalidToken("the access token is meant for another resource")
	case !now.Before(at.ExpiresAt.Add(clockLeeway)):
		return ports.VerifiedAccess{}, domain.ErrInvalidToken("the access token has expired")
	case now.Add(clockLeeway).Before(at.NotBefore):
		return ports.VerifiedAccess{}, domain.ErrInvalidToken("the access token is not valid yet")
	}
	if !at.HasScopes(cmd.RequiredScopes) {
		return ports.VerifiedAccess{}, domain.ErrInsufficientScope("the access token lacks a required scope")
	}
	grant, err := h.d.Store.GetGrant(ctx, at.GrantID, now)
	if errors.Is(err, domain.ErrNotFound) {
		return ports.VerifiedAccess{}, domain.ErrInvalidToken("the access token has been revoked")
	}
	if err != nil {
		return ports.VerifiedAccess{}, domain.ErrServerError(fmt.Errorf("verify access token: get grant: %w", err))
	}
	return ports.VerifiedAccess{Token: at, Grant: grant}, nil
}

// SweepExpiredHandler removes expired records from the store.
type SweepExpiredHandler struct{ d Deps }

var _ ports.SweepExpired = (*SweepExpiredHandler)(nil)

// Handle sweeps everything that expired before now.
func (h *SweepExpiredHandler) Handle(ctx context.Context) (int, error) {
	n, err := h.d.Store.Sweep(ctx, h.d.Clock.Now().UTC())
	if err != nil {
		return n, fmt.Errorf("sweep: %w", err)
	}
	return n, nil
}

// NewApplication builds every handler over one set of dependencies.
func NewApplication(d Deps) (ports.Application, error) {
	if err := d.Check(); err != nil {
		return ports.Application{}, err
	}
	return ports.Application{
		RegisterClient:     &RegisterClientHandler{d: d},
		StartAuthorization: &StartAuthorizationHandler{d: d},
		Consent:            &ConsentHandler{d: d},
		CompleteCallback:   &CompleteCallbackHandler{d: d},
		ExchangeToken:      &ExchangeTokenHandler{d: d},
		RefreshToken:       &RefreshTokenHandler{d: d},
		Revoke:             &RevokeHandler{d: d},
		VerifyAccessToken:  &VerifyAccessTokenHandler{d: d},
		SweepExpired:       &SweepExpiredHandler{d: d},
	}, nil
}

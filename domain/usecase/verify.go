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
// tokens fail the signature check: there is no token passthrough. Asked
// WithUpstream, it also returns the grant's upstream access token.
func (h *VerifyAccessTokenHandler) Handle(ctx context.Context, cmd ports.VerifyAccessTokenCommand) (ports.VerifiedAccess, error) {
	at, grant, err := liveAccessToken(ctx, h.d, cmd.Token)
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
	if cmd.WithUpstream {
		// Only the use cases know how upstream tokens are sealed (and to
		// which grant they are bound), so the opening happens here, not in
		// the resource server that forwards the token.
		upstream, err := openUpstream(h.d.Sealer, grant)
		if err != nil {
			return ports.VerifiedAccess{}, domain.ErrServerError(fmt.Errorf("verify access token: %w", err))
		}
		if upstream.AccessToken == "" {
			return ports.VerifiedAccess{}, domain.ErrServerError(errors.New("verify access token: the grant holds no upstream access token"))
		}
		access.UpstreamAccessToken = upstream.AccessToken
	}
	return access, nil
}

// liveAccessToken accepts one of our own access tokens that is signed by
// our key ring, issued by us, inside its validity window and whose grant is
// alive. Whom it is for and what it allows is the caller's judgement.
func liveAccessToken(ctx context.Context, d Deps, token string) (domain.AccessToken, domain.Grant, error) {
	if token == "" {
		return domain.AccessToken{}, domain.Grant{}, domain.ErrInvalidToken("no access token")
	}
	at, err := d.Tokens.Verify(ctx, token)
	if err != nil {
		return at, domain.Grant{}, domain.ErrInvalidToken("the access token is not valid").WithCause(err)
	}
	now := d.Clock.Now().UTC()
	switch {
	case at.Issuer != d.Settings.Issuer:
		return at, domain.Grant{}, domain.ErrInvalidToken("the access token was issued by someone else")
	case !now.Before(at.ExpiresAt.Add(clockLeeway)):
		return at, domain.Grant{}, domain.ErrInvalidToken("the access token has expired")
	case now.Add(clockLeeway).Before(at.NotBefore):
		return at, domain.Grant{}, domain.ErrInvalidToken("the access token is not valid yet")
	}
	grant, err := d.Store.GetGrant(ctx, at.GrantID, now)
	if errors.Is(err, domain.ErrNotFound) {
		return at, domain.Grant{}, domain.ErrInvalidToken("the access token has been revoked")
	}
	if err != nil {
		return at, domain.Grant{}, domain.ErrServerError(fmt.Errorf("verify access token: get grant: %w", err))
	}
	return at, grant, nil
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
		Introspect:         &IntrospectHandler{d: d},
		SweepExpired:       &SweepExpiredHandler{d: d},
	}, nil
}

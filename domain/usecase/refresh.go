package usecase

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// RefreshTokenHandler implements grant_type=refresh_token with rotation and
// reuse detection.
type RefreshTokenHandler struct {
	clients   *Clients
	grants    ports.GrantStore
	provider  ports.IdentityProvider
	admission admission
	sealer    ports.Sealer
	access    accessTokens
	clock     ports.Clock
	random    ports.Random
	policy    TokenPolicy
}

var _ ports.RefreshToken = (*RefreshTokenHandler)(nil)

// NewRefreshToken builds the refresh_token grant. The provider refreshes
// upstream when it implements ports.Refresher. policies is the access
// policy every refresh must still be admitted by; nil admits everyone.
func NewRefreshToken(clients *Clients, grants ports.GrantStore, provider ports.IdentityProvider, policies ports.PolicySource,
	sealer ports.Sealer, tokens ports.TokenIssuer, clock ports.Clock, random ports.Random, policy TokenPolicy,
) (*RefreshTokenHandler, error) {
	err := errors.Join(need("NewRefreshToken", dep("clients", clients), dep("grant store", grants), dep("identity provider", provider),
		dep("sealer", sealer), dep("token issuer", tokens), dep("clock", clock), dep("random source", random)), policy.validate())
	if err != nil {
		return nil, err
	}
	return &RefreshTokenHandler{clients: clients, grants: grants, provider: provider, admission: newAdmission(policies, provider), sealer: sealer,
		access: accessTokens{issuer: tokens, random: random, policy: policy}, clock: clock, random: random, policy: policy}, nil
}

func errRefreshInvalid() error {
	return domain.ErrInvalidGrant("refresh token is invalid, expired or revoked")
}

func errRefreshForeign() error {
	return domain.ErrInvalidGrant("refresh token was issued to another client")
}

// Handle rotates the refresh token. When the upstream access token has
// expired it refreshes upstream first (outside any store transaction: it is
// a network call); the rotation then commits the new upstream tokens with the
// successor. Presenting a rotated token again revokes the grant, unless it
// is the same client retrying within the grace window while the successor
// is still unused (domain.DecideRefresh): then the unused successor is
// replaced.
func (h *RefreshTokenHandler) Handle(ctx context.Context, cmd ports.RefreshTokenCommand) (ports.TokenResult, error) {
	client, err := h.clients.authenticate(ctx, cmd.Client)
	if err != nil {
		return ports.TokenResult{}, err
	}
	if !client.AllowsGrant(domain.GrantRefreshToken) {
		return ports.TokenResult{}, domain.ErrUnauthorizedClient("client may not use the refresh token grant")
	}
	if cmd.RefreshToken == "" {
		return ports.TokenResult{}, domain.ErrInvalidRequest("refresh_token is missing")
	}
	now := h.clock.Now().UTC()
	use := domain.RefreshUse{ClientID: client.ID, Grace: h.policy.RefreshReuseGrace}
	hash := domain.HashToken(cmd.RefreshToken)
	tok, err := h.grants.GetRefreshToken(ctx, hash, now)
	if errors.Is(err, domain.ErrNotFound) {
		return ports.TokenResult{}, errRefreshInvalid()
	}
	if err != nil {
		return ports.TokenResult{}, serverError(fmt.Errorf("refresh: get token: %w", err))
	}
	if !tok.Rotated() && tok.ClientID != client.ID {
		// Decided here without a write: a token's client never changes.
		// (A rotated token presented by another client is reuse; the
		// store revokes its grant below.)
		return ports.TokenResult{}, errRefreshForeign()
	}
	scopes := tok.Scopes
	if cmd.Scope != "" {
		requested, err := domain.ParseScope(cmd.Scope)
		if err != nil {
			return ports.TokenResult{}, err
		}
		if !domain.IsSubset(requested, tok.Scopes) {
			return ports.TokenResult{}, domain.ErrInvalidScope("a refresh may not widen the granted scope")
		}
		if len(requested) > 0 {
			scopes = requested
		}
	}
	grant, err := h.grants.GetGrant(ctx, tok.GrantID, now)
	if errors.Is(err, domain.ErrNotFound) {
		return ports.TokenResult{}, errRefreshInvalid()
	}
	if err != nil {
		return ports.TokenResult{}, serverError(fmt.Errorf("refresh: get grant: %w", err))
	}
	if _, err := domain.CheckResource(grant.Resource, cmd.Resource); err != nil {
		return ports.TokenResult{}, err
	}

	var (
		renewed  *domain.Grant
		identity *domain.Identity
	)
	// A rotated token past its retry window is reuse: the rotation below
	// revokes the grant, and neither the IdP nor the policy is asked.
	live := !tok.Rotated() || tok.Retryable(use, now)
	if live && upstreamExpired(grant, now) {
		if renewed, identity, err = h.refreshUpstream(ctx, grant, now); err != nil {
			return ports.TokenResult{}, err
		}
	}
	if live {
		current := grant.Identity
		if identity != nil {
			current = *identity
		}
		if refused := h.admission.check(ctx, current, grant.ClientID, tok.Scopes); refused != nil {
			refused.GrantID = grant.ID
			if err := h.grants.RevokeGrant(ctx, grant.ID); err != nil {
				return ports.TokenResult{}, serverError(fmt.Errorf("refresh: revoke a grant the policy refuses: %w", err))
			}
			return ports.TokenResult{}, errNoLongerAdmitted(refused)
		}
	}

	successor := h.random.Token()
	var after domain.Grant
	rotation := domain.Rotation{ClientID: client.ID, SuccessorHash: domain.HashToken(successor),
		TTL: h.policy.RefreshTokenTTL, Now: now, Renewed: renewed, Identity: identity, After: &after}
	_, decision, err := h.grants.RotateRefreshToken(ctx, hash, now, use, rotation)
	switch {
	case err == nil:
	case errors.Is(err, domain.ErrAlreadyConsumed):
		return ports.TokenResult{}, domain.ErrInvalidGrant("refresh token was already used; the grant has been revoked").WithCause(err)
	case errors.Is(err, domain.ErrWrongClient):
		return ports.TokenResult{}, errRefreshForeign()
	case errors.Is(err, domain.ErrNotFound):
		return ports.TokenResult{}, errRefreshInvalid()
	default:
		if _, ok := domain.AsError(err); ok {
			return ports.TokenResult{}, err
		}
		return ports.TokenResult{}, serverError(fmt.Errorf("refresh: rotate: %w", err))
	}
	access, expiresIn, err := h.access.issue(ctx, after, scopes, now)
	if err != nil {
		return ports.TokenResult{}, err
	}
	return ports.TokenResult{
		AccessToken:  access,
		TokenType:    "Bearer",
		ExpiresIn:    expiresIn,
		RefreshToken: successor,
		Scope:        domain.JoinScope(scopes),
		ClientID:     client.ID,
		Subject:      after.Subject,
		GrantID:      after.ID,
		Retried:      decision == domain.RefreshRetry,
	}, nil
}

// refreshUpstream renews the upstream tokens of a grant and returns the grant
// with the new sealed tokens (not yet stored), or nil when there is nothing
// to store, and the identity the IdP's new ID token names, or nil when it
// sent none. An upstream refusal ends the grant: the user must sign in
// again; unless a concurrent refresh of the same grant renewed it first.
// So does a new identity that cannot be carried or names someone else.
func (h *RefreshTokenHandler) refreshUpstream(ctx context.Context, g domain.Grant, now time.Time) (*domain.Grant, *domain.Identity, error) {
	refresher, ok := h.provider.(ports.Refresher)
	if !ok || !g.HasUpstreamRefresh {
		return nil, nil, h.endGrant(ctx, g.ID, errors.New("upstream token expired and cannot be refreshed"))
	}
	current, err := openUpstream(h.sealer, g)
	if err != nil {
		return nil, nil, serverError(fmt.Errorf("refresh: %w", err))
	}
	refreshed, err := refresher.Refresh(ctx, current)
	if err != nil {
		if domain.CodeOf(err) == domain.CodeInvalidGrant {
			// Two refreshes of one token (a duplicate, or a retry racing
			// its original) both read the expired upstream token; the
			// first renewed it, spending the upstream refresh token the
			// second then presented. The IdP's refusal of that one does
			// not end the session.
			if latest, gerr := h.grants.GetGrant(ctx, g.ID, now); gerr == nil && !upstreamExpired(latest, now) {
				return nil, nil, nil
			}
			return nil, nil, h.endGrant(ctx, g.ID, err)
		}
		// A transient upstream failure: keep everything as it was so the
		// client can retry with the same refresh token.
		return nil, nil, domain.ErrTemporarilyUnavailable("the identity provider is unavailable; try again", err)
	}
	if id := refreshed.Identity; id != nil {
		if err := id.Validate(); err != nil {
			return nil, nil, h.endGrant(ctx, g.ID, fmt.Errorf("refresh: %w", err))
		}
		if id.Subject != g.Subject {
			return nil, nil, h.endGrant(ctx, g.ID, errors.New("refresh: the renewed identity names another subject"))
		}
	}
	fresh := refreshed.Tokens
	if fresh.RefreshToken == "" {
		fresh.RefreshToken = current.RefreshToken
	}
	if g.SealedUpstream, err = sealUpstream(h.sealer, g.ID, fresh); err != nil {
		return nil, nil, serverError(fmt.Errorf("refresh: %w", err))
	}
	g.UpstreamExpiry = fresh.Expiry.UTC()
	g.HasUpstreamRefresh = fresh.RefreshToken != ""
	return &g, refreshed.Identity, nil
}

func (h *RefreshTokenHandler) endGrant(ctx context.Context, grantID string, cause error) error {
	if err := h.grants.RevokeGrant(ctx, grantID); err != nil {
		return serverError(fmt.Errorf("refresh: revoke grant: %w", err))
	}
	return domain.ErrInvalidGrant("the upstream session has ended; sign in again").WithCause(cause)
}

package usecase

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// upstreamRevokeTimeout bounds the best-effort upstream revocation so a slow
// IdP cannot hold the client's /revoke request.
const upstreamRevokeTimeout = 5 * time.Second

// RevokeHandler implements RFC 7009 revocation.
type RevokeHandler struct {
	clients  *Clients
	grants   ports.GrantStore
	tokens   ports.TokenIssuer
	provider ports.IdentityProvider
	sealer   ports.Sealer
	clock    ports.Clock
	// logger receives upstream revocations that failed after the local
	// one succeeded: they do not change the answer.
	logger *slog.Logger
	issuer string
}

var _ ports.Revoke = (*RevokeHandler)(nil)

// NewRevoke builds RFC 7009 revocation of the tokens issued by issuer.
func NewRevoke(clients *Clients, grants ports.GrantStore, tokens ports.TokenIssuer, provider ports.IdentityProvider,
	sealer ports.Sealer, clock ports.Clock, logger *slog.Logger, issuer string,
) (*RevokeHandler, error) {
	err := need("NewRevoke", dep("clients", clients), dep("grant store", grants), dep("token issuer", tokens),
		dep("identity provider", provider), dep("sealer", sealer), dep("clock", clock), dep("logger", logger))
	if issuer == "" {
		err = errors.Join(err, errors.New("usecase: NewRevoke: issuer is empty"))
	}
	if err != nil {
		return nil, err
	}
	return &RevokeHandler{clients: clients, grants: grants, tokens: tokens, provider: provider, sealer: sealer,
		clock: clock, logger: logger, issuer: issuer}, nil
}

// Handle revokes the grant behind a refresh or access token: every token of
// that authorization dies together (RFC 7009 2.1 allows, and MCP clients
// expect, "sign out" semantics). Unknown, invalid or foreign tokens succeed
// silently (RFC 7009 2.2), so the endpoint cannot be used to probe tokens.
// The upstream tokens are revoked too, best effort, when the IdP can.
func (h *RevokeHandler) Handle(ctx context.Context, cmd ports.RevokeCommand) error {
	client, err := h.clients.authenticate(ctx, cmd.Client)
	if err != nil {
		return err
	}
	if cmd.Token == "" {
		return domain.ErrInvalidRequest("token is missing")
	}
	// The hint only orders the lookups (RFC 7009 2.1); both are tried.
	lookups := []func(context.Context, string) (tokenOwner, error){h.refreshOwner, h.accessOwner}
	if cmd.TokenTypeHint == "access_token" {
		lookups[0], lookups[1] = lookups[1], lookups[0]
	}
	var owner tokenOwner
	for _, lookup := range lookups {
		if owner, err = lookup(ctx, cmd.Token); err != nil {
			return err
		}
		if owner.grantID != "" {
			break
		}
	}
	if owner.grantID == "" || owner.clientID != client.ID {
		return nil
	}
	grantID := owner.grantID
	now := h.clock.Now().UTC()
	grant, gerr := h.grants.GetGrant(ctx, grantID, now)
	if err := h.grants.RevokeGrant(ctx, grantID); err != nil {
		return serverError(fmt.Errorf("revoke: %w", err))
	}
	if gerr == nil {
		h.revokeUpstream(ctx, grant)
	}
	return nil
}

// tokenOwner is the grant and client a presented token belongs to; zero
// when the token is not ours.
type tokenOwner struct{ grantID, clientID string }

// refreshOwner looks the token up as a refresh token.
func (h *RevokeHandler) refreshOwner(ctx context.Context, token string) (tokenOwner, error) {
	t, err := h.grants.GetRefreshToken(ctx, domain.HashToken(token), h.clock.Now().UTC())
	if errors.Is(err, domain.ErrNotFound) {
		return tokenOwner{}, nil
	}
	if err != nil {
		return tokenOwner{}, serverError(fmt.Errorf("revoke: get refresh token: %w", err))
	}
	return tokenOwner{grantID: t.GrantID, clientID: t.ClientID}, nil
}

// accessOwner looks the token up as one of our access tokens. An expired
// token still names its grant: revoking is what the client asked for.
func (h *RevokeHandler) accessOwner(ctx context.Context, token string) (tokenOwner, error) {
	at, err := h.tokens.Verify(ctx, token)
	if err != nil || at.Issuer != h.issuer {
		return tokenOwner{}, nil
	}
	return tokenOwner{grantID: at.GrantID, clientID: at.ClientID}, nil
}

func (h *RevokeHandler) revokeUpstream(ctx context.Context, g domain.Grant) {
	revoker, ok := h.provider.(ports.Revoker)
	if !ok || len(g.SealedUpstream) == 0 {
		// No upstream login behind it (a machine's or an enterprise IdP's
		// grant): nothing to revoke upstream.
		return
	}
	tokens, err := openUpstream(h.sealer, g)
	if err != nil {
		h.logger.WarnContext(ctx, "upstream revocation skipped", "grant_id", g.ID, "error", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), upstreamRevokeTimeout)
	defer cancel()
	if err := revoker.Revoke(ctx, tokens); err != nil {
		h.logger.WarnContext(ctx, "upstream revocation failed", "provider", h.provider.Name(), "grant_id", g.ID, "error", err)
	}
}

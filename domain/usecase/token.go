package usecase

import (
	"context"
	"errors"
	"fmt"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// ExchangeTokenHandler implements grant_type=authorization_code.
type ExchangeTokenHandler struct {
	clients *Clients
	grants  ports.GrantStore
	access  accessTokens
	clock   ports.Clock
	random  ports.Random
	policy  TokenPolicy
}

var _ ports.ExchangeToken = (*ExchangeTokenHandler)(nil)

// NewExchangeToken builds the authorization_code grant.
func NewExchangeToken(clients *Clients, grants ports.GrantStore, tokens ports.TokenIssuer, clock ports.Clock, random ports.Random, policy TokenPolicy) (*ExchangeTokenHandler, error) {
	err := errors.Join(need("NewExchangeToken", dep("clients", clients), dep("grant store", grants), dep("token issuer", tokens),
		dep("clock", clock), dep("random source", random)), policy.validate())
	if err != nil {
		return nil, err
	}
	return &ExchangeTokenHandler{clients: clients, grants: grants, access: accessTokens{issuer: tokens, random: random, policy: policy},
		clock: clock, random: random, policy: policy}, nil
}

// Handle redeems the code. The store marks it redeemed and stores the
// refresh token in one atomic step; a code presented with a wrong client,
// redirect URI or verifier is burned with its grant, and the replay of a
// redeemed code with valid parameters (the legitimate client's code leaked
// and was used first) revokes the grant, each in the same atomic step that
// finds it (ports.GrantStore.RedeemCode).
func (h *ExchangeTokenHandler) Handle(ctx context.Context, cmd ports.ExchangeTokenCommand) (ports.TokenResult, error) {
	client, err := h.clients.authenticate(ctx, cmd.Client)
	if err != nil {
		return ports.TokenResult{}, err
	}
	if !client.AllowsGrant(domain.GrantAuthorizationCode) {
		return ports.TokenResult{}, domain.ErrUnauthorizedClient("client may not use the authorization code grant")
	}
	switch {
	case cmd.Code == "":
		return ports.TokenResult{}, domain.ErrInvalidRequest("code is missing")
	case cmd.CodeVerifier == "":
		return ports.TokenResult{}, domain.ErrInvalidRequest("code_verifier is missing")
	case cmd.RedirectURI == "":
		return ports.TokenResult{}, domain.ErrInvalidRequest("redirect_uri is missing")
	}

	now := h.clock.Now().UTC()
	refresh := ""
	if client.AllowsGrant(domain.GrantRefreshToken) {
		refresh = h.random.Token()
	}
	use := domain.CodeRedemption{ClientID: client.ID, RedirectURI: cmd.RedirectURI, Verifier: cmd.CodeVerifier,
		Resources: cmd.Resource, RefreshTTL: h.policy.RefreshTokenTTL, Now: now}
	if refresh != "" {
		use.RefreshHash = domain.HashToken(refresh)
	}
	code, grant, err := h.grants.RedeemCode(ctx, domain.HashToken(cmd.Code), now, use)
	switch {
	case err == nil:
	case errors.Is(err, domain.ErrAlreadyConsumed):
		// The store revoked the grant if and only if the presenter passed
		// the check, which is a pure function of the code it returned.
		if use.Check(code) == nil {
			return ports.TokenResult{}, domain.ErrInvalidGrant("authorization code was already used; its tokens have been revoked").WithCause(err)
		}
		return ports.TokenResult{}, domain.ErrInvalidGrant("authorization code is invalid, expired or already used")
	case errors.Is(err, domain.ErrNotFound):
		return ports.TokenResult{}, domain.ErrInvalidGrant("authorization code is invalid, expired or already used")
	default:
		if _, ok := domain.AsError(err); ok {
			return ports.TokenResult{}, err
		}
		return ports.TokenResult{}, serverError(fmt.Errorf("token: redeem code: %w", err))
	}

	access, expiresIn, err := h.access.issue(ctx, grant, code.Scopes, now)
	if err != nil {
		return ports.TokenResult{}, err
	}
	return ports.TokenResult{
		AccessToken:  access,
		TokenType:    "Bearer",
		ExpiresIn:    expiresIn,
		RefreshToken: refresh,
		Scope:        domain.JoinScope(code.Scopes),
		ClientID:     client.ID,
		Subject:      grant.Subject,
		GrantID:      grant.ID,
	}, nil
}

package usecase

import (
	"context"
	"fmt"
	"time"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// accessTokens issues our access tokens and decides how long they live:
// the one place of that policy, shared by the code exchange and refresh.
type accessTokens struct {
	issuer ports.TokenIssuer
	random ports.Random
	policy TokenPolicy
}

// ttl is our access token's lifetime for a grant: the configured TTL, but
// never longer than the upstream access token when there is no upstream
// refresh token to renew the upstream session with.
func (a accessTokens) ttl(g domain.Grant, now time.Time) (time.Duration, error) {
	ttl := a.policy.AccessTokenTTL
	if g.UpstreamSessionEnded(now) {
		return 0, domain.ErrUpstreamSessionEnded()
	}
	if !g.HasUpstreamRefresh && !g.UpstreamExpiry.IsZero() {
		ttl = min(ttl, g.UpstreamExpiry.Sub(now))
	}
	return ttl, nil
}

// issue signs an access token for the grant and returns it with its
// lifetime in whole seconds (at least 1, for expires_in).
func (a accessTokens) issue(ctx context.Context, g domain.Grant, scopes []string, now time.Time) (string, int64, error) {
	ttl, err := a.ttl(g, now)
	if err != nil {
		return "", 0, err
	}
	at := domain.AccessToken{
		Issuer:    a.policy.Issuer,
		Subject:   g.Subject,
		Audience:  g.Resource,
		ClientID:  g.ClientID,
		Scopes:    scopes,
		GrantID:   g.ID,
		JTI:       a.random.Token(),
		IssuedAt:  now,
		NotBefore: now,
		ExpiresAt: now.Add(ttl),
		Machine:   g.Machine,
	}
	token, err := a.issuer.Issue(ctx, at)
	if err != nil {
		return "", 0, serverError(fmt.Errorf("issue access token: %w", err))
	}
	return token, max(int64(ttl/time.Second), 1), nil
}

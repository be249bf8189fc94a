package usecase

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// authenticateClient checks the credentials presented at /token or /revoke.
// Every failure is the same invalid_client, so the answer does not tell an
// attacker whether the client exists.
func authenticateClient(ctx context.Context, d Deps, a ports.ClientAuth) (domain.Client, error) {
	failed := func(cause error) error {
		return domain.ErrInvalidClient("client authentication failed").WithCause(cause)
	}
	if a.ClientID == "" {
		return domain.Client{}, failed(errors.New("no client_id"))
	}
	c, err := lookupClient(ctx, d, a.ClientID)
	if errors.Is(err, domain.ErrNotFound) {
		return domain.Client{}, failed(errors.New("unknown client"))
	}
	if e, ok := domain.AsError(err); ok {
		// A client metadata document that cannot be used: still
		// invalid_client, with the document's problem as the description
		// (the document is public, so this tells an attacker nothing).
		return domain.Client{}, e
	}
	if err != nil {
		return domain.Client{}, domain.ErrServerError(fmt.Errorf("authenticate client: %w", err))
	}
	if c.IsPublic() {
		// Some SDKs send "Authorization: Basic base64(id:)" for public
		// clients; an empty secret is harmless, a non-empty one is a
		// confused client.
		if a.Secret != "" {
			return domain.Client{}, failed(errors.New("secret presented by a public client"))
		}
		return c, nil
	}
	if a.Method == domain.AuthNone || a.Secret == "" {
		return domain.Client{}, failed(errors.New("confidential client sent no secret"))
	}
	if !domain.EqualHash(a.Secret, string(c.SecretHash)) {
		return domain.Client{}, failed(errors.New("wrong client secret"))
	}
	return c, nil
}

// upstreamExpired reports whether the upstream access token behind the grant
// has expired (with a little margin, so a token we mint is not outlived by
// the upstream one by seconds).
func upstreamExpired(g domain.Grant, now time.Time) bool {
	return !g.UpstreamExpiry.IsZero() && !now.Add(30*time.Second).Before(g.UpstreamExpiry)
}

// accessTokenTTL is our access token's lifetime for a grant: the configured
// TTL, but never longer than the upstream access token when there is no
// upstream refresh token to renew the upstream session with.
func accessTokenTTL(s Settings, g domain.Grant, now time.Time) (time.Duration, error) {
	ttl := s.AccessTokenTTL
	if !g.HasUpstreamRefresh && !g.UpstreamExpiry.IsZero() {
		remaining := g.UpstreamExpiry.Sub(now)
		if remaining <= 0 {
			return 0, domain.ErrInvalidGrant("the upstream session has expired; sign in again")
		}
		if remaining < ttl {
			ttl = remaining
		}
	}
	return ttl, nil
}

// issueAccessToken signs an access token for the grant.
func issueAccessToken(ctx context.Context, d Deps, g domain.Grant, scopes []string, now time.Time) (string, int64, error) {
	ttl, err := accessTokenTTL(d.Settings, g, now)
	if err != nil {
		return "", 0, err
	}
	at := domain.AccessToken{
		Issuer:    d.Settings.Issuer,
		Subject:   g.Subject,
		Audience:  g.Resource,
		ClientID:  g.ClientID,
		Scopes:    scopes,
		GrantID:   g.ID,
		JTI:       d.Random.Token(),
		IssuedAt:  now,
		NotBefore: now,
		ExpiresAt: now.Add(ttl),
	}
	token, err := d.Tokens.Issue(ctx, at)
	if err != nil {
		return "", 0, domain.ErrServerError(fmt.Errorf("issue access token: %w", err))
	}
	secs := int64(ttl / time.Second)
	if secs < 1 {
		secs = 1
	}
	return token, secs, nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

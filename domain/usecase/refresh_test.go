package usecase_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/domain/usecase"
	"github.com/oidcproxy/oidcproxy/ports"
)

// The refresh rules of the use case (the store's side of them is the
// conformance suite's). Each case logs in, refreshes once (a response the
// client may have lost), then presents the first token again.
func TestRefreshReuseRevokesUnlessItIsAPromptRetry(t *testing.T) {
	cases := []struct {
		name  string
		grace time.Duration
		reuse func(t *testing.T, h *harness, c client, first, lost ports.TokenResult) (ports.TokenResult, error)
		retry bool // the reuse is a retry and succeeds
	}{
		{"a retry while the successor is unused", time.Minute, func(t *testing.T, h *harness, c client, first, _ ports.TokenResult) (ports.TokenResult, error) {
			h.clock.Advance(30 * time.Second)
			return h.refresh(t, c, first.RefreshToken)
		}, true},
		{"a retry as the window ends", time.Minute, func(t *testing.T, h *harness, c client, first, _ ports.TokenResult) (ports.TokenResult, error) {
			h.clock.Advance(time.Minute)
			return h.refresh(t, c, first.RefreshToken)
		}, false},
		{"a reuse after the successor was used", time.Minute, func(t *testing.T, h *harness, c client, first, lost ports.TokenResult) (ports.TokenResult, error) {
			_, err := h.refresh(t, c, lost.RefreshToken)
			require.NoError(t, err)
			return h.refresh(t, c, first.RefreshToken)
		}, false},
		{"a reuse with the window off", 0, func(t *testing.T, h *harness, c client, first, _ ports.TokenResult) (ports.TokenResult, error) {
			return h.refresh(t, c, first.RefreshToken)
		}, false},
		{"a reuse by another client", time.Minute, func(t *testing.T, h *harness, _ client, first, _ ports.TokenResult) (ports.TokenResult, error) {
			return h.refresh(t, h.register(t), first.RefreshToken)
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(s *usecase.Settings) { s.RefreshReuseGrace = tc.grace })
			c := h.register(t)
			first := h.login(t, c)
			lost, err := h.refresh(t, c, first.RefreshToken)
			require.NoError(t, err)
			require.False(t, lost.Retried)

			res, err := tc.reuse(t, h, c, first, lost)
			if !tc.retry {
				require.Equal(t, domain.CodeInvalidGrant, domain.CodeOf(err), "%v", err)
				require.ErrorIs(t, err, domain.ErrAlreadyConsumed, "the audit log tells a revoking reuse by this")
				require.False(t, h.grantLive(t, first.GrantID), "the reuse left the grant alive")
				require.False(t, h.live(t, lost.AccessToken))
				return
			}
			require.NoError(t, err)
			require.True(t, res.Retried, "the audit log tells a retry by this")
			require.True(t, h.grantLive(t, first.GrantID))
			next, err := h.refresh(t, c, res.RefreshToken)
			require.NoError(t, err, "the retried chain lives on")

			// The withdrawn successor's holder did not see the retry.
			_, err = h.refresh(t, c, lost.RefreshToken)
			require.ErrorIs(t, err, domain.ErrAlreadyConsumed)
			require.False(t, h.grantLive(t, first.GrantID))
			require.False(t, h.live(t, next.AccessToken))
		})
	}
}

func TestALiveRefreshTokenOfAnotherClientIsRefusedWithoutHarm(t *testing.T) {
	h := newHarness(t, nil)
	c, other := h.register(t), h.register(t)
	tok := h.login(t, c)

	_, err := h.refresh(t, other, tok.RefreshToken)
	require.Equal(t, domain.CodeInvalidGrant, domain.CodeOf(err))
	require.NotErrorIs(t, err, domain.ErrAlreadyConsumed)
	require.True(t, h.grantLive(t, tok.GrantID))
	_, err = h.refresh(t, c, tok.RefreshToken)
	require.NoError(t, err, "the rightful client's token is untouched")
}

func TestARefreshRenewsTheUpstreamTokenOnlyOnceItHasExpired(t *testing.T) {
	login := func(t *testing.T) (*harness, client, ports.TokenResult) {
		h := newHarness(t, nil)
		h.idp.script(func(p *scriptedIdP) { p.upstream.Expiry = h.clock.Now().Add(time.Hour) })
		c := h.register(t)
		return h, c, h.login(t, c)
	}

	t.Run("a fresh upstream token is left alone; an expired one is renewed", func(t *testing.T) {
		h, c, tok := login(t)
		h.clock.Advance(10 * time.Minute)
		next, err := h.refresh(t, c, tok.RefreshToken)
		require.NoError(t, err)
		require.Zero(t, h.idp.refreshes)

		h.clock.Advance(2 * time.Hour)
		_, err = h.refresh(t, c, next.RefreshToken)
		require.NoError(t, err)
		require.Equal(t, 1, h.idp.refreshes)
	})
	t.Run("an upstream refusal ends the grant", func(t *testing.T) {
		h, c, tok := login(t)
		h.idp.script(func(p *scriptedIdP) { p.refreshErr = domain.ErrInvalidGrant("refused upstream") })
		h.clock.Advance(2 * time.Hour)
		_, err := h.refresh(t, c, tok.RefreshToken)
		require.Equal(t, domain.CodeInvalidGrant, domain.CodeOf(err))
		require.False(t, h.grantLive(t, tok.GrantID))
	})
	t.Run("a duplicate that lost the upstream race keeps the grant", func(t *testing.T) {
		// Two refreshes of one token (a client's duplicate, or its retry
		// racing the original) both find the upstream token expired. The
		// first renews it upstream, spending the upstream refresh token;
		// the IdP then refuses the second's. That refusal is no sign of an
		// ended session: the grant was just renewed.
		h, c, tok := login(t)
		h.clock.Advance(2 * time.Hour)
		var first ports.TokenResult
		h.idp.script(func(p *scriptedIdP) {
			p.onRefresh = func() error {
				var err error
				first, err = h.refresh(t, c, tok.RefreshToken)
				require.NoError(t, err)
				return domain.ErrInvalidGrant("refresh token already used")
			}
		})
		second, err := h.refresh(t, c, tok.RefreshToken)
		require.NoError(t, err, "the duplicate is a retry")
		require.True(t, second.Retried)
		require.Equal(t, 1, h.idp.refreshes, "one upstream renewal")
		require.True(t, h.grantLive(t, tok.GrantID))
		_, err = h.refresh(t, c, second.RefreshToken)
		require.NoError(t, err)
		require.NotEqual(t, first.RefreshToken, second.RefreshToken)
	})
	t.Run("an unavailable upstream keeps the grant and the token", func(t *testing.T) {
		h, c, tok := login(t)
		h.idp.script(func(p *scriptedIdP) {
			p.refreshErr = domain.ErrTemporarilyUnavailable("down", errors.New("connection refused"))
		})
		h.clock.Advance(2 * time.Hour)
		_, err := h.refresh(t, c, tok.RefreshToken)
		require.Equal(t, domain.CodeTemporarilyUnavailable, domain.CodeOf(err))
		h.idp.script(func(p *scriptedIdP) { p.refreshErr = nil })
		_, err = h.refresh(t, c, tok.RefreshToken)
		require.NoError(t, err, "the same refresh token works once the IdP is back")
	})
}

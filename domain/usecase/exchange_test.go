package usecase_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/memstore"
	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// A code presented with anything but what it was issued for is burned:
// the legitimate client cannot redeem it afterwards, and its grant is
// gone (nothing can reach it any more).
func TestACodePresentedWrongIsBurnedWithItsGrant(t *testing.T) {
	cases := map[string]func(cmd *ports.ExchangeTokenCommand, other client){
		"a wrong PKCE verifier": func(cmd *ports.ExchangeTokenCommand, _ client) { cmd.CodeVerifier = tamper(cmd.CodeVerifier) },
		"a malformed verifier":  func(cmd *ports.ExchangeTokenCommand, _ client) { cmd.CodeVerifier = "short" },
		"another redirect URI":  func(cmd *ports.ExchangeTokenCommand, _ client) { cmd.RedirectURI = "http://127.0.0.1:7778/cb" },
		"another client":        func(cmd *ports.ExchangeTokenCommand, other client) { cmd.Client.ClientID = other.id },
		"another resource":      func(cmd *ports.ExchangeTokenCommand, _ client) { cmd.Resource = []string{"https://other.example/mcp"} },
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, nil)
			c, other := h.register(t), h.register(t)
			code := h.code(t, c)
			cmd := ports.ExchangeTokenCommand{
				Client: ports.ClientAuth{ClientID: c.id, Method: domain.AuthNone}, Code: code, RedirectURI: c.redirectURI, CodeVerifier: c.verifier,
			}
			edit(&cmd, other)
			_, err := h.app.ExchangeToken.Handle(t.Context(), cmd)
			require.Contains(t, []domain.ErrorCode{domain.CodeInvalidGrant, domain.CodeInvalidTarget}, domain.CodeOf(err), "%v", err)

			// The burn took the grant with it at once: the rightful client
			// finds nothing left, not a redeemed code whose grant it would
			// have to revoke as a replay.
			_, err = h.exchange(t, c, code)
			require.Equal(t, domain.CodeInvalidGrant, domain.CodeOf(err), "the burned code still works: %v", err)
			require.NotErrorIs(t, err, domain.ErrAlreadyConsumed, "the burned code's grant outlived the burn")
			require.Zero(t, h.stored(t), "the burned code's grant is still stored")
		})
	}
}

func TestAReplayedCodeRevokesTheGrantOnlyForItsRightfulPresenter(t *testing.T) {
	t.Run("a replay with the client's verifier revokes every token of the grant", func(t *testing.T) {
		h := newHarness(t, nil)
		c := h.register(t)
		code := h.code(t, c)
		tok, err := h.exchange(t, c, code)
		require.NoError(t, err)
		require.True(t, h.live(t, tok.AccessToken))

		_, err = h.exchange(t, c, code)
		require.Equal(t, domain.CodeInvalidGrant, domain.CodeOf(err))
		require.ErrorIs(t, err, domain.ErrAlreadyConsumed, "the audit log tells a revoking replay by this")
		require.False(t, h.live(t, tok.AccessToken))
		_, err = h.refresh(t, c, tok.RefreshToken)
		require.Equal(t, domain.CodeInvalidGrant, domain.CodeOf(err))
	})

	t.Run("a replay without the verifier is refused and changes nothing", func(t *testing.T) {
		// Someone who saw only the code (a log, a referrer) must not be
		// able to sign the user out with it.
		h := newHarness(t, nil)
		c := h.register(t)
		code := h.code(t, c)
		tok, err := h.exchange(t, c, code)
		require.NoError(t, err)

		thief := c
		thief.verifier = tamper(c.verifier)
		_, err = h.exchange(t, thief, code)
		require.Equal(t, domain.CodeInvalidGrant, domain.CodeOf(err))
		require.NotErrorIs(t, err, domain.ErrAlreadyConsumed)
		require.True(t, h.live(t, tok.AccessToken))
		require.True(t, h.grantLive(t, tok.GrantID))
	})

	t.Run("an unknown code is invalid_grant", func(t *testing.T) {
		h := newHarness(t, nil)
		_, err := h.exchange(t, h.register(t), "made-up")
		require.Equal(t, domain.CodeInvalidGrant, domain.CodeOf(err))
	})
}

// failingRevocation is the in-memory store with every separate RevokeGrant
// failing, as after a lost connection: a revocation that a redemption
// left to a second call would not happen.
type failingRevocation struct{ *memstore.Store }

func (failingRevocation) RevokeGrant(context.Context, string) error {
	return errors.New("revoke grant: connection lost")
}

// The grant of a replayed or burned code is revoked by the redemption
// that finds the replay or the burn, in the store's same atomic step: no
// failure between two calls can leave it alive.
func TestAReplayOrABurnRevokesTheGrantInTheRedemptionItself(t *testing.T) {
	opts := harnessOptions{store: func(s *memstore.Store) ports.Store { return failingRevocation{s} }}

	t.Run("a replay", func(t *testing.T) {
		h := newHarnessWith(t, opts)
		c := h.register(t)
		code := h.code(t, c)
		tok, err := h.exchange(t, c, code)
		require.NoError(t, err)

		_, err = h.exchange(t, c, code)
		require.Equal(t, domain.CodeInvalidGrant, domain.CodeOf(err), "%v", err)
		require.ErrorIs(t, err, domain.ErrAlreadyConsumed, "the audit log tells a revoking replay by this")
		require.False(t, h.grantLive(t, tok.GrantID), "the replayed code's grant is alive")
		require.False(t, h.live(t, tok.AccessToken))
	})

	t.Run("a burn", func(t *testing.T) {
		h := newHarnessWith(t, opts)
		c := h.register(t)
		code := h.code(t, c)
		wrong := c
		wrong.verifier = tamper(c.verifier)

		_, err := h.exchange(t, wrong, code)
		require.Equal(t, domain.CodeInvalidGrant, domain.CodeOf(err), "%v", err)
		require.Zero(t, h.stored(t), "the burned code's grant is still stored")
	})
}

// tamper changes the first character of s, keeping its form.
func tamper(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

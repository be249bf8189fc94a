package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// verifier is the PKCE verifier of the codes redemptionCode seeds.
const verifier = "dBjftJeZ4CVP-mJ92K9m4l7DhoVbxNuVH8tX2O2KAnw-redemptions"

// testRedemptions runs RedeemCode with the use of a token request,
// domain.CodeRedemption, whose rule a store may state in the statement
// that claims the code: every outcome must be the one the rule decides,
// and the stored refresh token the one its Issue builds.
func testRedemptions(t *testing.T, newStore func(*testing.T) ports.Store) {
	// seeded is a new store holding g1 and its fresh code.
	seeded := func(t *testing.T) (ports.Store, domain.AuthorizationCode) {
		t.Helper()
		s := newStore(t)
		return s, redemptionCode(t, s, fullGrant("g1"))
	}
	t.Run("the rightful request redeems the code and stores the token Issue builds", func(t *testing.T) {
		s, code := seeded(t)
		g := fullGrant("g1")
		use := rightfulUse(code, "rt-1", time.Hour)

		got, grant, err := s.RedeemCode(t.Context(), code.Hash, use.Now, use)
		require.NoError(t, err)

		want := code
		want.RedeemedAt = use.Now
		require.Equal(t, want, got)
		require.Equal(t, g, grant)
		rt, err := use.Issue(want, g)
		require.NoError(t, err)
		stored, err := s.GetRefreshToken(t.Context(), "rt-1", use.Now)
		require.NoError(t, err)
		require.Equal(t, *rt, stored)
		require.Equal(t, use.Now.Add(time.Hour), stored.ExpiresAt)
	})

	t.Run("the refresh token expires with the grant at the latest", func(t *testing.T) {
		s, code := seeded(t)
		g := fullGrant("g1")
		use := rightfulUse(code, "rt-1", 90*24*time.Hour)

		_, _, err := s.RedeemCode(t.Context(), code.Hash, use.Now, use)
		require.NoError(t, err)
		stored, err := s.GetRefreshToken(t.Context(), "rt-1", use.Now)
		require.NoError(t, err)
		require.Equal(t, g.ExpiresAt, stored.ExpiresAt)
	})

	t.Run("a client without refresh tokens gets none", func(t *testing.T) {
		s, code := seeded(t)
		use := rightfulUse(code, "", time.Hour)

		_, _, err := s.RedeemCode(t.Context(), code.Hash, use.Now, use)
		require.NoError(t, err)
		_, _, err = s.RedeemCode(t.Context(), code.Hash, use.Now, use)
		require.ErrorIs(t, err, domain.ErrAlreadyConsumed, "the code was redeemed")
	})

	t.Run("a resource named differently but canonically the same is accepted", func(t *testing.T) {
		s, code := seeded(t)
		use := rightfulUse(code, "rt-1", time.Hour)
		use.Resources = []string{"HTTPS://MCP.example.com/mcp/", code.Resource}

		_, _, err := s.RedeemCode(t.Context(), code.Hash, use.Now, use)
		require.NoError(t, err)
	})

	burns := map[string]func(*domain.CodeRedemption){
		"another client":       func(u *domain.CodeRedemption) { u.ClientID = "client-other" },
		"another redirect URI": func(u *domain.CodeRedemption) { u.RedirectURI = "http://127.0.0.1:5555/other" },
		"a wrong verifier":     func(u *domain.CodeRedemption) { u.Verifier = verifier + "-wrong" },
		"a malformed verifier": func(u *domain.CodeRedemption) { u.Verifier = "short" },
		"another resource":     func(u *domain.CodeRedemption) { u.Resources = []string{"https://other.example.com/mcp"} },
		"a malformed resource": func(u *domain.CodeRedemption) { u.Resources = []string{"not a url"} },
		// Text a SQL database cannot take as a parameter must be refused
		// like any other mismatch, not fail the store.
		"a redirect URI of invalid UTF-8": func(u *domain.CodeRedemption) { u.RedirectURI += "\xff" },
		"a redirect URI with a NUL":       func(u *domain.CodeRedemption) { u.RedirectURI += "\x00" },
		"a resource of invalid UTF-8":     func(u *domain.CodeRedemption) { u.Resources = []string{"https://mcp.example.com/mcp?\xff"} },
	}
	for name, spoil := range burns {
		t.Run("a request with "+name+" burns the code with its grant", func(t *testing.T) {
			s, code := seeded(t)
			use := rightfulUse(code, "rt-1", time.Hour)
			spoil(&use)

			_, _, err := s.RedeemCode(t.Context(), code.Hash, use.Now, use)
			require.Error(t, err)
			require.Equal(t, err, use.Check(code), "the answer is the rule's")
			requireGrantGone(t, s, "g1", use.Now)
			_, err = s.GetRefreshToken(t.Context(), "rt-1", use.Now)
			require.ErrorIs(t, err, domain.ErrNotFound, "no token was stored")
		})
	}

	t.Run("a grant whose upstream session ended issues nothing and is burned", func(t *testing.T) {
		s := newStore(t)
		g := fullGrant("g1")
		g.HasUpstreamRefresh = false
		g.UpstreamExpiry = base.Add(time.Second)
		code := redemptionCode(t, s, g)
		use := rightfulUse(code, "rt-1", time.Hour)
		require.Equal(t, g.UpstreamExpiry, use.Now)

		_, _, err := s.RedeemCode(t.Context(), code.Hash, use.Now, use)
		require.Equal(t, domain.ErrUpstreamSessionEnded(), err)
		requireGrantGone(t, s, "g1", use.Now)
	})

	t.Run("a replay of the rightful request revokes the grant", func(t *testing.T) {
		s, code := seeded(t)
		use := rightfulUse(code, "rt-1", time.Hour)
		_, _, err := s.RedeemCode(t.Context(), code.Hash, use.Now, use)
		require.NoError(t, err)

		replay := rightfulUse(code, "rt-2", time.Hour)
		got, grant, err := s.RedeemCode(t.Context(), code.Hash, use.Now, replay)
		require.ErrorIs(t, err, domain.ErrAlreadyConsumed)
		require.Equal(t, use.Now, got.RedeemedAt, "the stored code is returned")
		require.Equal(t, "g1", grant.ID)
		requireGrantGone(t, s, "g1", use.Now)
		_, err = s.GetRefreshToken(t.Context(), "rt-1", use.Now)
		require.ErrorIs(t, err, domain.ErrNotFound, "the first redemption's token went with the grant")
	})

	t.Run("a replay with a wrong verifier changes nothing", func(t *testing.T) {
		s, code := seeded(t)
		use := rightfulUse(code, "rt-1", time.Hour)
		_, _, err := s.RedeemCode(t.Context(), code.Hash, use.Now, use)
		require.NoError(t, err)

		replay := rightfulUse(code, "rt-2", time.Hour)
		replay.Verifier = verifier + "-wrong"
		_, _, err = s.RedeemCode(t.Context(), code.Hash, use.Now, replay)
		require.ErrorIs(t, err, domain.ErrAlreadyConsumed)
		_, err = s.GetRefreshToken(t.Context(), "rt-1", use.Now)
		require.NoError(t, err, "the grant and its token stay")
	})

	t.Run("an expired or unknown code is not found and changes nothing", func(t *testing.T) {
		s, code := seeded(t)
		use := rightfulUse(code, "rt-1", time.Hour)
		use.Now = code.ExpiresAt

		_, _, err := s.RedeemCode(t.Context(), code.Hash, use.Now, use)
		require.ErrorIs(t, err, domain.ErrNotFound)
		_, _, err = s.RedeemCode(t.Context(), "code-unknown", use.Now, use)
		require.ErrorIs(t, err, domain.ErrNotFound)
		_, err = s.GetGrant(t.Context(), "g1", use.Now)
		require.NoError(t, err, "the grant stays")
	})

	t.Run("of concurrent rightful requests one redeems and the replays revoke", func(t *testing.T) {
		s, code := seeded(t)
		now := base.Add(time.Second)

		errs := race(racers, func(i int) error {
			use := rightfulUse(code, fmt.Sprintf("rt-%d", i), time.Hour)
			_, _, err := s.RedeemCode(t.Context(), code.Hash, now, use)
			return err
		})

		require.Len(t, winners(errs), 1, "exactly one redemption succeeds")
		for _, err := range errs {
			if err != nil && !errorIsAny(err, domain.ErrAlreadyConsumed, domain.ErrNotFound) {
				t.Fatalf("a loser got %v", err)
			}
		}
		requireGrantGone(t, s, "g1", now)
	})

	t.Run("a rightful request racing wrong verifiers either redeems and keeps its token or finds the code burned", func(t *testing.T) {
		s, code := seeded(t)
		now := base.Add(time.Second)

		errs := race(racers, func(i int) error {
			use := rightfulUse(code, fmt.Sprintf("rt-%d", i), time.Hour)
			if i > 0 {
				use.Verifier = verifier + "-wrong"
			}
			_, _, err := s.RedeemCode(t.Context(), code.Hash, now, use)
			return err
		})

		won := winners(errs)
		require.LessOrEqual(t, len(won), 1)
		for _, i := range won {
			require.Zero(t, i, "a wrong verifier got tokens")
			_, err := s.GetRefreshToken(t.Context(), fmt.Sprintf("rt-%d", i), now)
			require.NoError(t, err, "a wrong verifier cannot revoke a redeemed code")
		}
		if len(won) == 0 {
			require.ErrorIs(t, errs[0], domain.ErrNotFound, "the rightful request found the code burned")
			requireGrantGone(t, s, "g1", now)
		}
	})
}

// redemptionCode stores g with a fresh code whose challenge is
// verifier's, and returns the code.
func redemptionCode(t *testing.T, s ports.Store, g domain.Grant) domain.AuthorizationCode {
	t.Helper()
	code := freshCode("code-"+g.ID, g.ID)
	code.CodeChallenge = domain.S256Challenge(verifier)
	require.NoError(t, s.CreateGrant(t.Context(), g, code))
	return code
}

// rightfulUse is the token request of the client code was issued to,
// storing a refresh token of ttl under refreshHash (none if empty), a
// second after base.
func rightfulUse(code domain.AuthorizationCode, refreshHash string, ttl time.Duration) domain.CodeRedemption {
	return domain.CodeRedemption{
		ClientID:    code.ClientID,
		RedirectURI: code.RedirectURI,
		Verifier:    verifier,
		Resources:   []string{code.Resource},
		RefreshHash: refreshHash,
		RefreshTTL:  ttl,
		Now:         base.Add(time.Second),
	}
}

// requireGrantGone fails unless grant id is revoked.
func requireGrantGone(t *testing.T, s ports.Store, id string, now time.Time) {
	t.Helper()
	_, err := s.GetGrant(t.Context(), id, now)
	require.ErrorIs(t, err, domain.ErrNotFound, "the grant is revoked")
}

// errorIsAny reports whether err is one of targets.
func errorIsAny(err error, targets ...error) bool {
	for _, target := range targets {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

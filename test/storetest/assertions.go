package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// testAssertions covers ConsumeAssertionID: the replay cache of client
// assertions and ID-JAGs.
func testAssertions(t *testing.T, newStore func(t *testing.T) ports.Store) {
	const iss = "https://client.example/metadata.json"
	until := base.Add(5 * time.Minute)

	t.Run("an assertion is consumed once and its replay is refused until it expires", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.ConsumeAssertionID(t.Context(), iss, "jti-1", base, until))
		err := s.ConsumeAssertionID(t.Context(), iss, "jti-1", base.Add(time.Minute), until.Add(time.Minute))
		require.ErrorIs(t, err, domain.ErrAlreadyConsumed)
		err = s.ConsumeAssertionID(t.Context(), iss, "jti-1", until.Add(-time.Nanosecond), until.Add(time.Minute))
		require.ErrorIs(t, err, domain.ErrAlreadyConsumed, "the record lives up to its expiry")
		// From its expiry on the record counts as absent, swept or not.
		require.NoError(t, s.ConsumeAssertionID(t.Context(), iss, "jti-1", until, until.Add(time.Minute)))
		err = s.ConsumeAssertionID(t.Context(), iss, "jti-1", until, until.Add(2*time.Minute))
		require.ErrorIs(t, err, domain.ErrAlreadyConsumed, "the record taken over keeps guarding")
	})

	t.Run("a jti is scoped by its issuer", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.ConsumeAssertionID(t.Context(), iss, "jti-1", base, until))
		require.NoError(t, s.ConsumeAssertionID(t.Context(), "https://idp.example", "jti-1", base, until))
		// The key is not a plain concatenation.
		require.NoError(t, s.ConsumeAssertionID(t.Context(), iss+"jti", "-1", base, until))
		require.NoError(t, s.ConsumeAssertionID(t.Context(), iss, "jti-2", base, until))
	})

	t.Run("empty keys and born-expired records are refused and record nothing", func(t *testing.T) {
		s := newStore(t)
		for name, call := range map[string]func() error{
			"empty issuer": func() error { return s.ConsumeAssertionID(t.Context(), "", "jti-1", base, until) },
			"empty jti":    func() error { return s.ConsumeAssertionID(t.Context(), iss, "", base, until) },
			"expiry now":   func() error { return s.ConsumeAssertionID(t.Context(), iss, "jti-1", base, base) },
			"expiry past":  func() error { return s.ConsumeAssertionID(t.Context(), iss, "jti-1", base, base.Add(-time.Second)) },
			"zero expiry":  func() error { return s.ConsumeAssertionID(t.Context(), iss, "jti-1", base, time.Time{}) },
		} {
			err := call()
			require.Error(t, err, name)
			require.NotErrorIs(t, err, domain.ErrAlreadyConsumed, name)
		}
		require.NoError(t, s.ConsumeAssertionID(t.Context(), iss, "jti-1", base, until))
	})

	t.Run("of 32 concurrent consumptions of one assertion exactly one wins", func(t *testing.T) {
		s := newStore(t)
		errs := race(racers, func(int) error { return s.ConsumeAssertionID(t.Context(), iss, "jti-1", base, until) })
		won := winners(errs)
		require.Len(t, won, 1)
		for i, err := range errs {
			if i != won[0] {
				require.ErrorIs(t, err, domain.ErrAlreadyConsumed)
			}
		}
	})

	t.Run("concurrent consumptions of unrelated assertions all succeed", func(t *testing.T) {
		s := newStore(t)
		errs := race(racers, func(i int) error {
			return s.ConsumeAssertionID(t.Context(), fmt.Sprintf("client-%d", i), "jti-1", base, until)
		})
		require.Len(t, winners(errs), racers)
		for i := range racers {
			err := s.ConsumeAssertionID(t.Context(), fmt.Sprintf("client-%d", i), "jti-1", base, until)
			require.ErrorIs(t, err, domain.ErrAlreadyConsumed)
		}
	})

	t.Run("sweep removes expired assertion ids, counts them, and keeps live ones", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.ConsumeAssertionID(t.Context(), iss, "old-1", base, base.Add(time.Minute)))
		require.NoError(t, s.ConsumeAssertionID(t.Context(), iss, "old-2", base, base.Add(2*time.Minute)))
		require.NoError(t, s.ConsumeAssertionID(t.Context(), iss, "live", base, base.Add(time.Hour)))
		n, err := s.Sweep(t.Context(), base.Add(2*time.Minute))
		require.NoError(t, err)
		require.Equal(t, 2, n)
		err = s.ConsumeAssertionID(t.Context(), iss, "live", base.Add(2*time.Minute), base.Add(time.Hour))
		require.ErrorIs(t, err, domain.ErrAlreadyConsumed)
		n, err = s.Sweep(t.Context(), base.Add(2*time.Minute))
		require.NoError(t, err)
		require.Zero(t, n)
	})

	t.Run("sweep removes an assertion id that was taken over after it expired once", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.ConsumeAssertionID(t.Context(), iss, "jti-1", base, base.Add(time.Minute)))
		require.NoError(t, s.ConsumeAssertionID(t.Context(), iss, "jti-1", base.Add(time.Minute), base.Add(2*time.Minute)))
		n, err := s.Sweep(t.Context(), base.Add(time.Minute))
		require.NoError(t, err)
		require.Zero(t, n, "the record's expiry moved on")
		n, err = s.Sweep(t.Context(), base.Add(2*time.Minute))
		require.NoError(t, err)
		require.Equal(t, 1, n)
	})
}

// testDirectGrants covers CreateDirectGrant: grants no code leads to.
func testDirectGrants(t *testing.T, newStore func(t *testing.T) ports.Store) {
	t.Run("a direct grant reads back with every field and is revoked like any other", func(t *testing.T) {
		s := newStore(t)
		g := fullGrant("g1")
		requireEveryFieldSet(t, g)
		require.NoError(t, s.CreateDirectGrant(t.Context(), g))
		got, err := s.GetGrant(t.Context(), "g1", base)
		require.NoError(t, err)
		require.Equal(t, g, got)
		require.NoError(t, s.RevokeGrant(t.Context(), "g1"))
		_, err = s.GetGrant(t.Context(), "g1", base)
		require.ErrorIs(t, err, domain.ErrNotFound)
	})

	t.Run("a taken id is refused and the grant stays as it was", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.CreateDirectGrant(t.Context(), fullGrant("g1")))
		other := fullGrant("g1")
		other.Subject = "someone-else"
		require.ErrorIs(t, s.CreateDirectGrant(t.Context(), other), domain.ErrAlreadyExists)
		seedGrant(t, s, fullGrant("g2"))
		require.ErrorIs(t, s.CreateDirectGrant(t.Context(), fullGrant("g2")), domain.ErrAlreadyExists)
		got, err := s.GetGrant(t.Context(), "g1", base)
		require.NoError(t, err)
		require.Equal(t, fullGrant("g1"), got)
	})

	t.Run("an empty id is refused", func(t *testing.T) {
		s := newStore(t)
		g := fullGrant("")
		require.Error(t, s.CreateDirectGrant(t.Context(), g))
	})

	t.Run("an expired direct grant is not found and is swept", func(t *testing.T) {
		s := newStore(t)
		g := fullGrant("g1")
		require.NoError(t, s.CreateDirectGrant(t.Context(), g))
		_, err := s.GetGrant(t.Context(), "g1", g.ExpiresAt)
		require.ErrorIs(t, err, domain.ErrNotFound)
		n, err := s.Sweep(t.Context(), g.ExpiresAt)
		require.NoError(t, err)
		require.Equal(t, 1, n)
	})

	t.Run("of 32 concurrent creations of one direct grant exactly one wins", func(t *testing.T) {
		s := newStore(t)
		errs := race(racers, func(int) error { return s.CreateDirectGrant(t.Context(), fullGrant("g1")) })
		won := winners(errs)
		require.Len(t, won, 1)
		for i, err := range errs {
			if i != won[0] {
				require.ErrorIs(t, err, domain.ErrAlreadyExists)
			}
		}
	})
}

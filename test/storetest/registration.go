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

// registeredClient is a client that registered itself at created and has
// not completed a grant.
func registeredClient(id string, created time.Time) domain.Client {
	c := fullClient(id)
	c.Operator = false
	c.CreatedAt = created
	c.FirstGrantAt = time.Time{}
	return c
}

// grantFor is a grant of client, stored at created.
func grantFor(id, client string, created time.Time) domain.Grant {
	g := fullGrant(id)
	g.ClientID = client
	g.CreatedAt = created
	return g
}

func testRegistration(t *testing.T, newStore func(*testing.T) ports.Store) {
	t.Run("a client's first grant marks it used, later grants leave the mark", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.RegisterClient(t.Context(), registeredClient("c1", base), 0))
		before, err := s.GetClient(t.Context(), "c1") // a store that caches clients now has it
		require.NoError(t, err)
		require.True(t, before.FirstGrantAt.IsZero())
		first := base.Add(time.Hour)
		require.NoError(t, s.CreateGrant(t.Context(), grantFor("g1", "c1", first), freshCode("code-1", "g1")))
		require.NoError(t, s.CreateGrant(t.Context(), grantFor("g2", "c1", first.Add(time.Hour)), freshCode("code-2", "g2")))

		got, err := s.GetClient(t.Context(), "c1")
		require.NoError(t, err)
		want := registeredClient("c1", base)
		want.FirstGrantAt = first
		require.Equal(t, want, got, "nothing else of the client changed")
	})

	t.Run("a grant that is not stored does not mark its client", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.RegisterClient(t.Context(), registeredClient("c1", base), 0))
		require.NoError(t, s.CreateGrant(t.Context(), grantFor("g1", "other", base), freshCode("code-1", "g1")))

		err := s.CreateGrant(t.Context(), grantFor("g2", "c1", base), freshCode("code-1", "g2"))
		require.ErrorIs(t, err, domain.ErrAlreadyExists, "the code hash is taken")
		got, err := s.GetClient(t.Context(), "c1")
		require.NoError(t, err)
		require.True(t, got.FirstGrantAt.IsZero(), "the failed grant's transaction changed nothing")
	})

	t.Run("a grant of a client that is not stored changes no client", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.RegisterClient(t.Context(), registeredClient("c1", base), 0))
		// A client ID metadata document's client lives in no store.
		require.NoError(t, s.CreateGrant(t.Context(), grantFor("g1", "https://app.example.com/client.json", base), freshCode("code-1", "g1")))
		got, err := s.GetClient(t.Context(), "c1")
		require.NoError(t, err)
		require.Equal(t, registeredClient("c1", base), got)
	})

	t.Run("registration stops at the bound, and operator clients neither count nor are refused", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.CreateClient(t.Context(), fullClient("operator-1")))
		for i := range 3 {
			require.NoError(t, s.RegisterClient(t.Context(), registeredClient(fmt.Sprintf("c%d", i), base), 3))
		}
		err := s.RegisterClient(t.Context(), registeredClient("c3", base), 3)
		require.ErrorIs(t, err, domain.ErrLimitReached)
		_, err = s.GetClient(t.Context(), "c3")
		require.ErrorIs(t, err, domain.ErrNotFound, "a refused registration stores nothing")

		require.NoError(t, s.RegisterClient(t.Context(), fullClient("operator-2"), 3), "an operator's client is never refused")
		require.NoError(t, s.CreateClient(t.Context(), fullClient("operator-3")))
		require.NoError(t, s.RegisterClient(t.Context(), registeredClient("c4", base), 4), "a higher bound admits one more")
		require.NoError(t, s.RegisterClient(t.Context(), registeredClient("c5", base), 0), "no bound admits all")
	})

	t.Run("clients created without the bound count towards it", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.CreateClient(t.Context(), registeredClient("c1", base)))
		require.NoError(t, s.CreateClient(t.Context(), registeredClient("c2", base)))
		require.ErrorIs(t, s.RegisterClient(t.Context(), registeredClient("c3", base), 2), domain.ErrLimitReached)
	})

	t.Run("a duplicate registration is refused and not counted", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.RegisterClient(t.Context(), registeredClient("c1", base), 2))
		first, err := s.GetClient(t.Context(), "c1")
		require.NoError(t, err)
		impostor := registeredClient("c1", base)
		impostor.Name = "Impostor"
		require.ErrorIs(t, s.RegisterClient(t.Context(), impostor, 2), domain.ErrAlreadyExists)
		require.NoError(t, s.RegisterClient(t.Context(), registeredClient("c2", base), 2))
		got, err := s.GetClient(t.Context(), "c1")
		require.NoError(t, err)
		require.Equal(t, first, got)
		require.Error(t, s.RegisterClient(t.Context(), registeredClient("", base), 2), "a client without an id is refused")
	})

	t.Run("only old, never used, self-registered clients are swept", func(t *testing.T) {
		s := newStore(t)
		cutoff := base.Add(24 * time.Hour)
		old := base
		require.NoError(t, s.RegisterClient(t.Context(), registeredClient("old-unused", old), 0))
		require.NoError(t, s.RegisterClient(t.Context(), registeredClient("old-used", old), 0))
		require.NoError(t, s.CreateGrant(t.Context(), grantFor("g1", "old-used", old.Add(time.Hour)), freshCode("code-1", "g1")))
		require.NoError(t, s.RegisterClient(t.Context(), registeredClient("at-cutoff", cutoff), 0))
		require.NoError(t, s.RegisterClient(t.Context(), registeredClient("young", cutoff.Add(time.Second)), 0))
		operator := fullClient("old-operator")
		operator.FirstGrantAt = time.Time{}
		operator.CreatedAt = old
		require.NoError(t, s.CreateClient(t.Context(), operator))

		n, err := s.SweepUnusedClients(t.Context(), cutoff)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		_, err = s.GetClient(t.Context(), "old-unused")
		require.ErrorIs(t, err, domain.ErrNotFound)
		for _, id := range []string{"old-used", "at-cutoff", "young", "old-operator"} {
			_, err := s.GetClient(t.Context(), id)
			require.NoError(t, err, id)
		}
		_, err = s.GetGrant(t.Context(), "g1", base)
		require.NoError(t, err, "the used client's grant is untouched")

		n, err = s.SweepUnusedClients(t.Context(), cutoff)
		require.NoError(t, err)
		require.Zero(t, n, "nothing is left to sweep")
		n, err = s.SweepUnusedClients(t.Context(), cutoff.Add(time.Hour))
		require.NoError(t, err)
		require.Equal(t, 2, n, "later the other two unused clients go")
	})

	t.Run("swept clients make room under the bound", func(t *testing.T) {
		s := newStore(t)
		for i := range 3 {
			require.NoError(t, s.RegisterClient(t.Context(), registeredClient(fmt.Sprintf("c%d", i), base), 3))
		}
		require.NoError(t, s.CreateGrant(t.Context(), grantFor("g1", "c0", base), freshCode("code-1", "g1")))
		require.ErrorIs(t, s.RegisterClient(t.Context(), registeredClient("c3", base), 3), domain.ErrLimitReached)

		n, err := s.SweepUnusedClients(t.Context(), base.Add(time.Hour))
		require.NoError(t, err)
		require.Equal(t, 2, n)
		require.NoError(t, s.RegisterClient(t.Context(), registeredClient("c3", base), 3))
		require.NoError(t, s.RegisterClient(t.Context(), registeredClient("c4", base), 3))
		require.ErrorIs(t, s.RegisterClient(t.Context(), registeredClient("c5", base), 3), domain.ErrLimitReached,
			"the used client still counts")
	})

	t.Run("concurrent registrations never exceed the bound", func(t *testing.T) {
		s := newStore(t)
		const bound = 5
		errs := race(racers, func(i int) error {
			return s.RegisterClient(t.Context(), registeredClient(fmt.Sprintf("c%d", i), base), bound)
		})
		admitted := 0
		for _, err := range errs {
			switch {
			case err == nil:
				admitted++
			case errors.Is(err, domain.ErrLimitReached):
			default:
				require.NoError(t, err)
			}
		}
		require.Equal(t, bound, admitted)
	})
}

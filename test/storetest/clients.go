package storetest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

func testClients(t *testing.T, newStore func(*testing.T) ports.Store) {
	t.Run("a created client reads back with every field", func(t *testing.T) {
		s := newStore(t)
		want := fullClient("c1")
		requireEveryFieldSet(t, want)
		require.NoError(t, s.CreateClient(t.Context(), want))

		got, err := s.GetClient(t.Context(), "c1")
		require.NoError(t, err)
		require.Equal(t, want, got)
	})

	t.Run("a second client with the same id is refused and the first is kept", func(t *testing.T) {
		s := newStore(t)
		first := fullClient("c1")
		require.NoError(t, s.CreateClient(t.Context(), first))
		second := fullClient("c1")
		second.Name = "Impostor"

		err := s.CreateClient(t.Context(), second)
		require.ErrorIs(t, err, domain.ErrAlreadyExists)
		got, err := s.GetClient(t.Context(), "c1")
		require.NoError(t, err)
		require.Equal(t, first, got)
	})

	t.Run("an unknown client reads as not found", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.CreateClient(t.Context(), fullClient("c1")))

		_, err := s.GetClient(t.Context(), "c2")
		require.ErrorIs(t, err, domain.ErrNotFound)
	})

	t.Run("a client without an id is refused", func(t *testing.T) {
		s := newStore(t)
		err := s.CreateClient(t.Context(), fullClient(""))
		require.Error(t, err)
		_, err = s.GetClient(t.Context(), "")
		require.ErrorIs(t, err, domain.ErrNotFound)
	})
}

package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

func testKeys(t *testing.T, newStore func(*testing.T) ports.Store) {
	t.Run("an empty key ring lists nothing", func(t *testing.T) {
		s := newStore(t)
		keys, err := s.ListKeys(t.Context())
		require.NoError(t, err)
		require.Empty(t, keys)
	})

	t.Run("a key reads back with every field", func(t *testing.T) {
		s := newStore(t)
		want := fullKey("k1", base)
		requireEveryFieldSet(t, want)
		require.NoError(t, s.PutKey(t.Context(), want))

		keys, err := s.ListKeys(t.Context())
		require.NoError(t, err)
		require.Equal(t, []domain.SigningKey{want}, keys)
	})

	t.Run("keys list oldest first whatever their ids and insertion order", func(t *testing.T) {
		s := newStore(t)
		for _, k := range []domain.SigningKey{
			fullKey("a-newest", base.Add(2*time.Hour)),
			fullKey("z-oldest", base),
			fullKey("m-middle", base.Add(time.Hour)),
		} {
			require.NoError(t, s.PutKey(t.Context(), k))
		}

		keys, err := s.ListKeys(t.Context())
		require.NoError(t, err)
		var ids []string
		for _, k := range keys {
			ids = append(ids, k.ID)
		}
		require.Equal(t, []string{"z-oldest", "m-middle", "a-newest"}, ids)
	})

	t.Run("putting a key with a known id replaces it", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.PutKey(t.Context(), fullKey("k1", base)))
		retired := fullKey("k1", base)
		retired.NotAfter = base.Add(time.Minute)
		retired.RemoveAfter = base.Add(2 * time.Hour)

		require.NoError(t, s.PutKey(t.Context(), retired))

		keys, err := s.ListKeys(t.Context())
		require.NoError(t, err)
		require.Equal(t, []domain.SigningKey{retired}, keys)
	})

	t.Run("a deleted key is gone and deleting it again is no error", func(t *testing.T) {
		s := newStore(t)
		kept := fullKey("k2", base.Add(time.Hour))
		require.NoError(t, s.PutKey(t.Context(), fullKey("k1", base)))
		require.NoError(t, s.PutKey(t.Context(), kept))

		require.NoError(t, s.DeleteKey(t.Context(), "k1"))
		require.NoError(t, s.DeleteKey(t.Context(), "k1"))

		keys, err := s.ListKeys(t.Context())
		require.NoError(t, err)
		require.Equal(t, []domain.SigningKey{kept}, keys)
	})

	t.Run("a key without an id is refused", func(t *testing.T) {
		s := newStore(t)
		require.Error(t, s.PutKey(t.Context(), fullKey("", base)))
		keys, err := s.ListKeys(t.Context())
		require.NoError(t, err)
		require.Empty(t, keys)
	})
}

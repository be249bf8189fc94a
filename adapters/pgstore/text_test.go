package pgstore_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/test/pgtest"
)

var at = time.Date(2026, 1, 1, 12, 0, 0, 123456789, time.UTC)

// PostgreSQL's text refuses NUL and invalid UTF-8; a request can carry
// both. The client's state is echoed byte for byte, and a lookup by such an
// id is a lookup of something that cannot exist, not a server error.
func TestHostileBytesRoundTripOrReadAsNotFound(t *testing.T) {
	s := openStore(t, pgtest.Schema(t))
	tx := domain.Transaction{
		ID: "t1", ClientID: "c1", State: "a\x00b\xff\xfe", Scopes: []string{"openid"},
		CreatedAt: at, ExpiresAt: at.Add(time.Minute),
	}
	require.NoError(t, s.CreateTransaction(t.Context(), tx))
	got, err := s.ConsumeTransaction(t.Context(), "t1", at, nil)
	require.NoError(t, err)
	require.Equal(t, tx, got)

	for _, id := range []string{"c\x00", "c\xff", ""} {
		_, err := s.GetClient(t.Context(), id)
		require.ErrorIs(t, err, domain.ErrNotFound, "%q", id)
		_, _, err = s.RedeemCode(t.Context(), id, at, domain.CodeUseFuncs{CheckFunc: stranger, IssueFunc: nil})
		require.ErrorIs(t, err, domain.ErrNotFound, "%q", id)
		_, err = s.GetRefreshToken(t.Context(), id, at)
		require.ErrorIs(t, err, domain.ErrNotFound, "%q", id)
	}

	g := domain.Grant{
		ID: "g1", ClientID: "c1", Subject: "s",
		Identity:  domain.Identity{Subject: "s", Claims: map[string]any{"nul": "a\x00b"}},
		CreatedAt: at, ExpiresAt: at.Add(time.Hour),
	}
	require.NoError(t, s.CreateGrant(t.Context(), g, domain.AuthorizationCode{Hash: "code", GrantID: "g1", IssuedAt: at, ExpiresAt: at.Add(time.Minute)}))
	gotGrant, err := s.GetGrant(t.Context(), "g1", at)
	require.NoError(t, err)
	require.Equal(t, g, gotGrant)
}

// Times outside the int64 nanosecond range (years 1677 to 2262) keep their
// order against any real now: far-future expiries stay live, ancient ones
// stay expired.
func TestTimesBeyondTheNanosecondRangeKeepTheirOrder(t *testing.T) {
	s := openStore(t, pgtest.Schema(t))
	far := domain.Transaction{ID: "far", CreatedAt: at, ExpiresAt: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}
	old := domain.Transaction{ID: "old", CreatedAt: at, ExpiresAt: time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)}
	require.NoError(t, s.CreateTransaction(t.Context(), far))
	require.NoError(t, s.CreateTransaction(t.Context(), old))

	require.NoError(t, s.UpdateTransaction(t.Context(), "far", at, func(*domain.Transaction) error { return nil }))
	require.ErrorIs(t, s.UpdateTransaction(t.Context(), "old", at, func(*domain.Transaction) error { return nil }), domain.ErrNotFound)
	n, err := s.Sweep(t.Context(), at)
	require.NoError(t, err)
	require.Equal(t, 1, n)
}

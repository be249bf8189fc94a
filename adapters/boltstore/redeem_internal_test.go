package boltstore

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/oidcproxy/oidcproxy/domain"
)

// RedeemCode decides from its pre-read only while the write transaction
// holds the bytes that read saw; once another call has changed them, the
// same rule runs on the transaction's own read. These cases overtake a
// pre-read by hand, as a concurrent call would between the read and the
// writer.
func TestAnOvertakenPreReadIsDecidedFromTheTransactionsOwnRead(t *testing.T) {
	tests := []struct {
		name     string
		overtake func(t *testing.T, s *Store)
		want     error
	}{
		{
			name: "another call redeemed the code",
			overtake: func(t *testing.T, s *Store) {
				_, _, err := s.RedeemCode(t.Context(), "code-1", markBase, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: func(domain.AuthorizationCode, domain.Grant) (*domain.RefreshToken, error) { return nil, nil }})
				require.NoError(t, err)
			},
			want: domain.ErrAlreadyConsumed,
		},
		{
			name:     "the grant was revoked",
			overtake: func(t *testing.T, s *Store) { require.NoError(t, s.RevokeGrant(t.Context(), "g1")) },
			want:     domain.ErrNotFound,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openForMarks(t, filepath.Join(t.TempDir(), "r.db"))
			defer s.Close()
			seedCode(t, s, "g1", "code-1")
			pre, err := s.preReadCode(t.Context(), "redeem code", "code-1", markBase)
			require.NoError(t, err)
			d, err := pre.refusal("redeem code", domain.CodeUseFuncs{CheckFunc: stranger})
			require.NoError(t, err, "the pre-read finds a redeemable code")
			require.False(t, d.spend)

			tt.overtake(t, s)

			require.NoError(t, s.db.View(func(tx *bolt.Tx) error {
				require.False(t, pre.current(tx), "the pre-read no longer holds")
				r, err := readCode(tx, "code-1", markBase)
				require.NoError(t, err)
				d, err := redeem(tx, r, "redeem code", markBase, domain.CodeUseFuncs{CheckFunc: stranger, IssueFunc: func(domain.AuthorizationCode, domain.Grant) (*domain.RefreshToken, error) {
					t.Error("issue was asked for a code that can no longer be redeemed")
					return nil, nil
				}})

				require.ErrorIs(t, err, tt.want)
				require.ErrorIs(t, s.writeRedemption(tx, d), errNoChange, "nothing is written")
				return nil
			}))
		})
	}
}

// While nothing changed, the pre-read holds and the rule's decision is
// written: the redemption mark and the refresh token.
func TestAPreReadThatStillHoldsIsDecidedAndWritten(t *testing.T) {
	s := openForMarks(t, filepath.Join(t.TempDir(), "r.db"))
	defer s.Close()
	seedCode(t, s, "g1", "code-1")
	pre, err := s.preReadCode(t.Context(), "redeem code", "code-1", markBase)
	require.NoError(t, err)
	require.NoError(t, s.db.Update(func(tx *bolt.Tx) error {
		require.True(t, pre.current(tx))
		d, err := redeem(tx, pre, "redeem code", markBase, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: func(_ domain.AuthorizationCode, g domain.Grant) (*domain.RefreshToken, error) {
			return &domain.RefreshToken{Hash: "rt", GrantID: g.ID, ClientID: "c", IssuedAt: markBase, ExpiresAt: markBase.Add(time.Minute)}, nil
		}})

		require.NoError(t, err)
		require.Equal(t, markBase, d.code.RedeemedAt)
		require.Equal(t, "g1", d.grant.ID)
		return s.writeRedemption(tx, d)
	}))
	_, _, err = s.RedeemCode(t.Context(), "code-1", markBase, domain.CodeUseFuncs{CheckFunc: stranger, IssueFunc: func(domain.AuthorizationCode, domain.Grant) (*domain.RefreshToken, error) {
		t.Error("a redeemed code reached issue")
		return nil, nil
	}})

	require.ErrorIs(t, err, domain.ErrAlreadyConsumed)
	_, err = s.GetRefreshToken(t.Context(), "rt", markBase)
	require.NoError(t, err)
}

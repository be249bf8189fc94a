package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// testContext checks that every method refuses a cancelled context with an
// error (not a hang, not a silent success) and touches nothing.
func testContext(t *testing.T, newStore func(*testing.T) ports.Store) {
	t.Run("a fresh store answers ping", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.Ping(t.Context()))
	})

	t.Run("every method refuses a cancelled context and changes nothing", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.CreateClient(t.Context(), fullClient("c1")))
		require.NoError(t, s.CreateTransaction(t.Context(), fullTransaction("t1")))
		seedToken(t, s, fullGrant("g1"), liveToken("rt-1", "g1"))
		require.NoError(t, s.CreateGrant(t.Context(), fullGrant("g2"), freshCode("code-2", "g2")))
		require.NoError(t, s.PutKey(t.Context(), fullKey("k1", base)))
		expiredTx := fullTransaction("t-old")
		expiredTx.ExpiresAt = base
		require.NoError(t, s.CreateTransaction(t.Context(), expiredTx))

		cancelled, cancel := context.WithCancel(t.Context())
		cancel()
		later := base.Add(time.Minute)
		calls := map[string]func(ctx context.Context) error{
			"CreateClient":   func(ctx context.Context) error { return s.CreateClient(ctx, fullClient("c2")) },
			"RegisterClient": func(ctx context.Context) error { return s.RegisterClient(ctx, registeredClient("c2", base), 10) },
			"SweepUnusedClients": func(ctx context.Context) error {
				_, err := s.SweepUnusedClients(ctx, later)
				return err
			},
			"GetClient": func(ctx context.Context) error {
				_, err := s.GetClient(ctx, "c1")
				return err
			},
			"CreateTransaction": func(ctx context.Context) error { return s.CreateTransaction(ctx, fullTransaction("t2")) },
			"UpdateTransaction": func(ctx context.Context) error {
				return s.UpdateTransaction(ctx, "t1", base, func(tx *domain.Transaction) error {
					tx.State = "changed"
					return nil
				})
			},
			"ConsumeTransaction": func(ctx context.Context) error {
				_, err := s.ConsumeTransaction(ctx, "t1", base, nil)
				return err
			},
			"ReplaceTransaction": func(ctx context.Context) error {
				_, err := s.ReplaceTransaction(ctx, "t1", base, func(domain.Transaction) (domain.Transaction, error) {
					return fullTransaction("t3"), nil
				})
				return err
			},
			"CreateGrant": func(ctx context.Context) error {
				return s.CreateGrant(ctx, fullGrant("g3"), freshCode("code-3", "g3"))
			},
			"CreateDirectGrant": func(ctx context.Context) error { return s.CreateDirectGrant(ctx, fullGrant("g4")) },
			"ConsumeAssertionID": func(ctx context.Context) error {
				return s.ConsumeAssertionID(ctx, "https://client.example", "jti-1", base, base.Add(time.Minute))
			},
			"GetGrant": func(ctx context.Context) error {
				_, err := s.GetGrant(ctx, "g1", base)
				return err
			},
			"RevokeGrant": func(ctx context.Context) error { return s.RevokeGrant(ctx, "g1") },
			"RedeemCode": func(ctx context.Context) error {
				_, _, err := s.RedeemCode(ctx, "code-2", base, domain.CodeUseFuncs{CheckFunc: stranger, IssueFunc: noIssue(t)})
				return err
			},
			"RotateRefreshToken": func(ctx context.Context) error {
				_, _, err := s.RotateRefreshToken(ctx, "rt-1", base, strict("g1"), domain.RotateFunc(noRotate(t)))
				return err
			},
			"GetRefreshToken": func(ctx context.Context) error {
				_, err := s.GetRefreshToken(ctx, "rt-1", base)
				return err
			},
			"ListKeys": func(ctx context.Context) error {
				_, err := s.ListKeys(ctx)
				return err
			},
			"PutKey":    func(ctx context.Context) error { return s.PutKey(ctx, fullKey("k2", base)) },
			"DeleteKey": func(ctx context.Context) error { return s.DeleteKey(ctx, "k1") },
			"Sweep": func(ctx context.Context) error {
				_, err := s.Sweep(ctx, later)
				return err
			},
			"Ping": func(ctx context.Context) error { return s.Ping(ctx) },
		}
		for name, call := range calls {
			done := make(chan error, 1)
			go func() { done <- call(cancelled) }()
			select {
			case err := <-done:
				require.ErrorIs(t, err, context.Canceled, name)
			case <-time.After(10 * time.Second):
				t.Fatalf("%s hung on a cancelled context", name)
			}
		}

		// Nothing changed: every record is as it was, and the expired
		// transaction was not swept.
		_, err := s.GetClient(t.Context(), "c2")
		require.ErrorIs(t, err, domain.ErrNotFound)
		tx, err := s.ConsumeTransaction(t.Context(), "t1", base, nil)
		require.NoError(t, err)
		require.Equal(t, fullTransaction("t1"), tx)
		_, err = s.GetGrant(t.Context(), "g1", base)
		require.NoError(t, err)
		_, err = s.GetGrant(t.Context(), "g3", base)
		require.ErrorIs(t, err, domain.ErrNotFound)
		_, err = s.GetGrant(t.Context(), "g4", base)
		require.ErrorIs(t, err, domain.ErrNotFound)
		rt, err := s.GetRefreshToken(t.Context(), "rt-1", base)
		require.NoError(t, err)
		require.False(t, rt.Rotated())
		keys, err := s.ListKeys(t.Context())
		require.NoError(t, err)
		require.Equal(t, []domain.SigningKey{fullKey("k1", base)}, keys)
		n, err := s.Sweep(t.Context(), later)
		require.NoError(t, err)
		require.Equal(t, 1, n, "only the expired transaction was left to sweep")
		require.NoError(t, s.ConsumeAssertionID(t.Context(), "https://client.example", "jti-1", base, base.Add(time.Minute)),
			"a cancelled consumption must not have recorded the assertion")
	})
}

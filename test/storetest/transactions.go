package storetest

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

func testTransactions(t *testing.T, newStore func(*testing.T) ports.Store) {
	t.Run("a created transaction is returned whole by consume", func(t *testing.T) {
		s := newStore(t)
		want := fullTransaction("t1")
		requireEveryFieldSet(t, want)
		require.NoError(t, s.CreateTransaction(t.Context(), want))

		got, err := s.ConsumeTransaction(t.Context(), "t1", base, nil)
		require.NoError(t, err)
		require.Equal(t, want, got)
	})

	t.Run("a duplicate transaction id is refused and the first is kept", func(t *testing.T) {
		s := newStore(t)
		first := fullTransaction("t1")
		require.NoError(t, s.CreateTransaction(t.Context(), first))
		second := fullTransaction("t1")
		second.State = "other"

		require.ErrorIs(t, s.CreateTransaction(t.Context(), second), domain.ErrAlreadyExists)
		got, err := s.ConsumeTransaction(t.Context(), "t1", base, nil)
		require.NoError(t, err)
		require.Equal(t, first, got)
	})

	t.Run("a transaction without an id is refused", func(t *testing.T) {
		s := newStore(t)
		require.Error(t, s.CreateTransaction(t.Context(), fullTransaction("")))
	})

	t.Run("an unknown transaction is not found by update, consume or replace", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.CreateTransaction(t.Context(), fullTransaction("t1")))

		err := s.UpdateTransaction(t.Context(), "t2", base, noop)
		require.ErrorIs(t, err, domain.ErrNotFound)
		_, err = s.ConsumeTransaction(t.Context(), "t2", base, nil)
		require.ErrorIs(t, err, domain.ErrNotFound)
		_, err = s.ReplaceTransaction(t.Context(), "t2", base, func(domain.Transaction) (domain.Transaction, error) {
			return fullTransaction("t3"), nil
		})
		require.ErrorIs(t, err, domain.ErrNotFound)
	})

	t.Run("update hands fn the stored transaction and saves what fn changed", func(t *testing.T) {
		s := newStore(t)
		stored := fullTransaction("t1")
		stored.Approved = false
		require.NoError(t, s.CreateTransaction(t.Context(), stored))

		var seen domain.Transaction
		err := s.UpdateTransaction(t.Context(), "t1", base, func(tx *domain.Transaction) error {
			seen = *tx
			tx.Approved = true
			tx.CSRFHash = "new-csrf"
			tx.ExpiresAt = base.Add(2 * domain.TransactionTTL)
			return nil
		})
		require.NoError(t, err)
		require.Equal(t, stored, seen)

		want := stored
		want.Approved = true
		want.CSRFHash = "new-csrf"
		want.ExpiresAt = base.Add(2 * domain.TransactionTTL)
		// Read past the original expiry: the new one must count.
		got, err := s.ConsumeTransaction(t.Context(), "t1", base.Add(domain.TransactionTTL+1), nil)
		require.NoError(t, err)
		require.Equal(t, want, got)
	})

	t.Run("a failing update leaves the record unchanged", func(t *testing.T) {
		s := newStore(t)
		stored := fullTransaction("t1")
		require.NoError(t, s.CreateTransaction(t.Context(), stored))

		err := s.UpdateTransaction(t.Context(), "t1", base, func(tx *domain.Transaction) error {
			tx.CSRFHash = "changed before failing"
			tx.Scopes[0] = "changed"
			return errSentinel
		})
		require.ErrorIs(t, err, errSentinel)

		got, err := s.ConsumeTransaction(t.Context(), "t1", base, nil)
		require.NoError(t, err)
		require.Equal(t, stored, got)
	})

	t.Run("an update may not change the transaction id", func(t *testing.T) {
		s := newStore(t)
		stored := fullTransaction("t1")
		require.NoError(t, s.CreateTransaction(t.Context(), stored))

		err := s.UpdateTransaction(t.Context(), "t1", base, func(tx *domain.Transaction) error {
			tx.ID = "t2"
			return nil
		})
		require.Error(t, err)
		_, err = s.ConsumeTransaction(t.Context(), "t2", base, nil)
		require.ErrorIs(t, err, domain.ErrNotFound)
		got, err := s.ConsumeTransaction(t.Context(), "t1", base, nil)
		require.NoError(t, err)
		require.Equal(t, stored, got)
	})

	t.Run("consume hands check the stored transaction and removes it", func(t *testing.T) {
		s := newStore(t)
		stored := fullTransaction("t1")
		require.NoError(t, s.CreateTransaction(t.Context(), stored))

		var seen domain.Transaction
		got, err := s.ConsumeTransaction(t.Context(), "t1", base, func(tx domain.Transaction) error {
			seen = tx
			return nil
		})
		require.NoError(t, err)
		require.Equal(t, stored, seen)
		require.Equal(t, stored, got)

		_, err = s.ConsumeTransaction(t.Context(), "t1", base, nil)
		require.ErrorIs(t, err, domain.ErrNotFound)
	})

	t.Run("consume with a failing check burns the transaction", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.CreateTransaction(t.Context(), fullTransaction("t1")))

		_, err := s.ConsumeTransaction(t.Context(), "t1", base, func(domain.Transaction) error { return errSentinel })
		require.ErrorIs(t, err, errSentinel)

		_, err = s.ConsumeTransaction(t.Context(), "t1", base, nil)
		require.ErrorIs(t, err, domain.ErrNotFound)
	})

	t.Run("replace stores the successor and burns the original", func(t *testing.T) {
		s := newStore(t)
		stored := fullTransaction("t1")
		require.NoError(t, s.CreateTransaction(t.Context(), stored))
		next := fullTransaction("t2")
		next.BindingHash = "approved-binding"

		var seen domain.Transaction
		got, err := s.ReplaceTransaction(t.Context(), "t1", base, func(old domain.Transaction) (domain.Transaction, error) {
			seen = old
			return next, nil
		})
		require.NoError(t, err)
		require.Equal(t, stored, seen)
		require.Equal(t, next, got)

		_, err = s.ConsumeTransaction(t.Context(), "t1", base, nil)
		require.ErrorIs(t, err, domain.ErrNotFound)
		got, err = s.ConsumeTransaction(t.Context(), "t2", base, nil)
		require.NoError(t, err)
		require.Equal(t, next, got)
	})

	t.Run("a rejected replace burns the original and stores nothing", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.CreateTransaction(t.Context(), fullTransaction("t1")))

		_, err := s.ReplaceTransaction(t.Context(), "t1", base, func(domain.Transaction) (domain.Transaction, error) {
			return fullTransaction("t2"), errSentinel
		})
		require.ErrorIs(t, err, errSentinel)

		_, err = s.ConsumeTransaction(t.Context(), "t1", base, nil)
		require.ErrorIs(t, err, domain.ErrNotFound)
		_, err = s.ConsumeTransaction(t.Context(), "t2", base, nil)
		require.ErrorIs(t, err, domain.ErrNotFound)
	})

	t.Run("a replacement whose id is taken changes nothing", func(t *testing.T) {
		s := newStore(t)
		first, other := fullTransaction("t1"), fullTransaction("t2")
		require.NoError(t, s.CreateTransaction(t.Context(), first))
		require.NoError(t, s.CreateTransaction(t.Context(), other))

		_, err := s.ReplaceTransaction(t.Context(), "t1", base, func(domain.Transaction) (domain.Transaction, error) {
			return fullTransaction("t2"), nil
		})
		require.ErrorIs(t, err, domain.ErrAlreadyExists)

		got, err := s.ConsumeTransaction(t.Context(), "t1", base, nil)
		require.NoError(t, err)
		require.Equal(t, first, got)
		got, err = s.ConsumeTransaction(t.Context(), "t2", base, nil)
		require.NoError(t, err)
		require.Equal(t, other, got)
	})

	t.Run("of 32 concurrent consumes exactly one wins", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.CreateTransaction(t.Context(), fullTransaction("t1")))

		errs := race(racers, func(int) error {
			_, err := s.ConsumeTransaction(t.Context(), "t1", base, nil)
			return err
		})
		require.Len(t, winners(errs), 1)
		for _, err := range errs {
			if err != nil {
				require.ErrorIs(t, err, domain.ErrNotFound)
			}
		}
	})

	t.Run("of 32 concurrent replaces exactly one wins and only its successor exists", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.CreateTransaction(t.Context(), fullTransaction("t1")))

		errs := race(racers, func(i int) error {
			_, err := s.ReplaceTransaction(t.Context(), "t1", base, func(domain.Transaction) (domain.Transaction, error) {
				return fullTransaction(fmt.Sprintf("next-%d", i)), nil
			})
			return err
		})
		won := winners(errs)
		require.Len(t, won, 1)
		for i, err := range errs {
			_, cerr := s.ConsumeTransaction(t.Context(), fmt.Sprintf("next-%d", i), base, nil)
			if i == won[0] {
				require.NoError(t, cerr)
				continue
			}
			require.ErrorIs(t, err, domain.ErrNotFound)
			require.ErrorIs(t, cerr, domain.ErrNotFound)
		}
	})
}

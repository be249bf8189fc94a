package boltstore

import (
	"context"
	"io"

	bolt "go.etcd.io/bbolt"

	"github.com/oidcproxy/oidcproxy/ports"
)

var _ ports.Backuper = (*Store)(nil)

// Backup writes a consistent copy of the whole file to w from one read
// transaction: writers carry on meanwhile, and the copy is the state at the
// transaction's start. The copy is a valid store file that `serve` opens.
func (s *Store) Backup(ctx context.Context, w io.Writer) (int64, error) {
	var n int64
	err := s.view(ctx, "backup", func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

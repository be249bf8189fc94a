package boltstore

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/oidcproxy/oidcproxy/domain"
)

// ListKeys returns every signing key, oldest first (ties by id). The ring
// holds a handful of keys, so decoding them all is cheap.
func (s *Store) ListKeys(ctx context.Context) ([]domain.SigningKey, error) {
	var keys []domain.SigningKey
	err := s.view(ctx, "list keys", func(tx *bolt.Tx) error {
		keys = keys[:0]
		return tx.Bucket(bucketKeys).ForEach(func(_, raw []byte) error {
			var r keyRecord
			if err := json.Unmarshal(raw, &r); err != nil {
				return fmt.Errorf("decode %s record: %w", bucketKeys, err)
			}
			keys = append(keys, r.domain())
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(keys, func(a, b domain.SigningKey) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return keys, nil
}

// PutKey creates or replaces a key.
func (s *Store) PutKey(ctx context.Context, k domain.SigningKey) error {
	const op = "put key"
	if err := checkKey(k.ID); err != nil {
		return fail(op, err)
	}
	return s.write(ctx, op, false, func(tx *bolt.Tx) error {
		return putJSON(tx, bucketKeys, k.ID, toKeyRecord(k))
	})
}

// DeleteKey removes a key; absent is not an error.
func (s *Store) DeleteKey(ctx context.Context, id string) error {
	return s.write(ctx, "delete key", false, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketKeys).Delete([]byte(id))
	})
}

package pgstore

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/oidcproxy/oidcproxy/domain"
)

// ListKeys returns every signing key, oldest first (ties by id).
func (s *Store) ListKeys(ctx context.Context) ([]domain.SigningKey, error) {
	const op = "list keys"
	if err := ctx.Err(); err != nil {
		return nil, fail(op, err)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, sqlListKeys)
	if err != nil {
		return nil, fail(op, err)
	}
	var r keyRow
	keys, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.SigningKey, error) {
		r = keyRow{}
		err := row.Scan(r.dest()...)
		return r.domain(), err
	})
	if err != nil {
		return nil, fail(op, err)
	}
	return keys, nil
}

// PutKey creates or replaces a key.
func (s *Store) PutKey(ctx context.Context, k domain.SigningKey) error {
	const op = "put key"
	if err := ctx.Err(); err != nil {
		return fail(op, err)
	}
	if !validKey(k.ID) {
		return fail(op, errInvalidKey)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if _, err := s.pool.Exec(ctx, sqlPutKey, keyArgs(k)...); err != nil {
		return fail(op, err)
	}
	return nil
}

// DeleteKey removes a key; absent is not an error.
func (s *Store) DeleteKey(ctx context.Context, id string) error {
	const op = "delete key"
	if err := ctx.Err(); err != nil {
		return fail(op, err)
	}
	if !validKey(id) {
		return nil
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if _, err := s.pool.Exec(ctx, sqlDeleteKey, id); err != nil {
		return fail(op, err)
	}
	return nil
}

package boltstore

import (
	"context"

	bolt "go.etcd.io/bbolt"

	"github.com/oidcproxy/oidcproxy/domain"
)

// CreateClient stores a new client; domain.ErrAlreadyExists if the id is taken.
func (s *Store) CreateClient(ctx context.Context, c domain.Client) error {
	const op = "create client"
	if err := checkKey(c.ID); err != nil {
		return fail(op, err)
	}
	return s.createClient(ctx, op, c, 0)
}

// GetClient returns a client by id, decoded once per process while it
// stays unchanged (see cache.go).
func (s *Store) GetClient(ctx context.Context, id string) (domain.Client, error) {
	const op = "get client"
	if err := ctx.Err(); err != nil {
		return domain.Client{}, fail(op, err)
	}
	if c, ok := s.cache.clients.Get(id); ok {
		return c.Clone(), nil
	}
	epoch := s.cache.clients.Epoch()
	var (
		r     clientRecord
		found bool
	)
	err := s.view(ctx, op, func(tx *bolt.Tx) error {
		var err error
		found, err = getJSON(tx, bucketClients, id, &r)
		return err
	})
	switch {
	case err != nil:
		return domain.Client{}, err
	case !found:
		return domain.Client{}, fail(op, domain.ErrNotFound)
	}
	c := r.domain()
	s.cache.clients.Fill(epoch, id, c.Clone()) // the caller keeps its own copy
	return c, nil
}

package pgstore

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/oidcproxy/oidcproxy/domain"
)

// errInvalidKey refuses records whose key could never be read back: empty,
// too long, or not text PostgreSQL accepts.
var errInvalidKey = errors.New("empty, overlong or non-UTF-8 key")

// insertOnce runs an INSERT ... ON CONFLICT DO NOTHING of the record keyed
// id: one statement, so a duplicate id is told by the rows it affected
// rather than by a unique-violation error that would abort a transaction.
func (s *Store) insertOnce(ctx context.Context, op, id, sql string, args []any) error {
	if err := ctx.Err(); err != nil {
		return fail(op, err)
	}
	if !validKey(id) {
		return fail(op, errInvalidKey)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, sql, args...)
	switch {
	case err != nil:
		return fail(op, err)
	case tag.RowsAffected() == 0:
		return fail(op, domain.ErrAlreadyExists)
	}
	return nil
}

// CreateClient stores a new client; domain.ErrAlreadyExists if the id is taken.
func (s *Store) CreateClient(ctx context.Context, c domain.Client) error {
	return s.insertOnce(ctx, "create client", c.ID, sqlInsertClient, clientArgs(c))
}

// GetClient returns a client by id: from memory when the store caches (see
// cache.go), else from the database, in one read for all the callers that
// miss it at once (reads).
func (s *Store) GetClient(ctx context.Context, id string) (domain.Client, error) {
	const op = "get client"
	if err := ctx.Err(); err != nil {
		return domain.Client{}, fail(op, err)
	}
	if !validKey(id) {
		return domain.Client{}, fail(op, domain.ErrNotFound)
	}
	if s.cache == nil {
		c, err := s.readClient(ctx, id)
		if err != nil {
			return domain.Client{}, fail(op, err)
		}
		return c, nil
	}
	if c, ok := s.cache.client(id); ok {
		return c, nil
	}
	epoch := s.cache.clients.Epoch()
	c, err := s.clientReads.do(ctx, id, epoch, func(ctx context.Context) (domain.Client, error) {
		c, err := s.readClient(ctx, id)
		if err == nil {
			s.cache.fillClient(epoch, c)
		}
		return c, err
	})
	if err != nil {
		return domain.Client{}, fail(op, err)
	}
	return c.Clone(), nil
}

// readClient reads client id from the database.
func (s *Store) readClient(ctx context.Context, id string) (domain.Client, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var r clientRow
	if err := s.pool.QueryRow(ctx, sqlGetClient, id).Scan(r.dest()...); err != nil {
		return domain.Client{}, notFound(err)
	}
	return r.domain(), nil
}

// notFound turns "no row" into domain.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.ErrNotFound
	}
	return err
}

package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// The operator's methods. Ids compare and sort in byte order (COLLATE
// "C"), as in the other stores, whatever the database's collation; the
// subject and client indexes of migration 3 are built that way.

// errEmptyFilter refuses a revocation that would select every grant.
var errEmptyFilter = errors.New("a revocation needs a subject, a client or a grant id")

// errBadLimit refuses a page without a positive size.
var errBadLimit = errors.New("page limit must be positive")

// ListClients returns up to page.Limit clients whose id sorts after
// page.After, in id order.
func (s *Store) ListClients(ctx context.Context, page ports.Page) ([]domain.Client, error) {
	const op = "list clients"
	if err := ctx.Err(); err != nil {
		return nil, fail(op, err)
	}
	if page.Limit <= 0 {
		return nil, fail(op, errBadLimit)
	}
	if !validText(page.After) {
		return nil, fail(op, errInvalidKey)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, sqlListClients, page.After, page.Limit)
	if err != nil {
		return nil, fail(op, err)
	}
	var r clientRow
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.Client, error) {
		r = clientRow{}
		err := row.Scan(r.dest()...)
		return r.domain(), err
	})
	if err != nil {
		return nil, fail(op, err)
	}
	return out, nil
}

// DeleteClient deletes a client and revokes every grant of it, in one
// transaction.
func (s *Store) DeleteClient(ctx context.Context, id string) (int, error) {
	const op = "delete client"
	if err := ctx.Err(); err != nil {
		return 0, fail(op, err)
	}
	if !validKey(id) {
		if id == "" {
			return 0, fail(op, errInvalidKey)
		}
		return 0, fail(op, domain.ErrNotFound)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var revoked []string
	err := againOnDeadlock(ctx, func() error {
		return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, sqlDeleteClient, id)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				return domain.ErrNotFound
			}
			revoked, err = revokeGrants(ctx, tx, ports.GrantFilter{ClientID: id})
			return err
		})
	})
	if s.cache != nil {
		s.cache.clients.Forget(id)
	}
	s.forgetGrants(revoked, err)
	if err != nil {
		return 0, fail(op, err)
	}
	return len(revoked), nil
}

// ListGrants returns up to page.Limit live grants that match filter and
// whose id sorts after page.After, in id order.
func (s *Store) ListGrants(ctx context.Context, filter ports.GrantFilter, page ports.Page, now time.Time) ([]domain.Grant, error) {
	const op = "list grants"
	if err := ctx.Err(); err != nil {
		return nil, fail(op, err)
	}
	if page.Limit <= 0 {
		return nil, fail(op, errBadLimit)
	}
	if !validFilter(filter) || !validText(page.After) {
		return nil, nil // no grant can have such a key
	}
	where, args := grantWhere(filter)
	n := len(args)
	args = append(args, ns(now), page.After, page.Limit)
	query := fmt.Sprintf(`SELECT %s FROM grants WHERE %s AND expires_ns > $%d AND id COLLATE "C" > $%d
		ORDER BY id COLLATE "C" LIMIT $%d`, grantCols, where, n+1, n+2, n+3)
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fail(op, err)
	}
	var r grantRow
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.Grant, error) {
		r = grantRow{}
		err := row.Scan(r.dest()...)
		return r.domain(), err
	})
	if err != nil {
		return nil, fail(op, err)
	}
	return out, nil
}

// RevokeGrants deletes every grant that matches filter, with its codes and
// refresh tokens, in one statement.
func (s *Store) RevokeGrants(ctx context.Context, filter ports.GrantFilter) (int, error) {
	const op = "revoke grants"
	if err := ctx.Err(); err != nil {
		return 0, fail(op, err)
	}
	if filter.IsEmpty() {
		return 0, fail(op, errEmptyFilter)
	}
	if !validFilter(filter) {
		return 0, nil
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var revoked []string
	err := againOnDeadlock(ctx, func() (err error) {
		revoked, err = revokeGrants(ctx, s.pool, filter)
		return err
	})
	s.forgetGrants(revoked, err)
	if err != nil {
		return 0, fail(op, err)
	}
	return len(revoked), nil
}

// forgetGrants drops revoked grants from this instance's cache at once
// (other instances hear of them from the trigger's notification). After
// an error the revocation may still have committed, and which grants it
// took is unknown, so every cached grant is forgotten.
func (s *Store) forgetGrants(revoked []string, err error) {
	if s.cache == nil {
		return
	}
	if err != nil {
		s.cache.grants.ForgetAll()
		return
	}
	for _, id := range revoked {
		s.cache.grants.Forget(id)
	}
}

// querier runs a statement that returns rows: the pool, or an open
// transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// revokeGrants deletes the grants filter selects (their codes and refresh
// tokens go with them, by the foreign keys' cascade) and returns their
// ids. RevokeGrant, RevokeGrants and DeleteClient all revoke through here,
// so that whatever else a revocation must do (telling other instances to
// forget the grants) is done in one place for all of them.
func revokeGrants(ctx context.Context, q querier, filter ports.GrantFilter) ([]string, error) {
	where, args := grantWhere(filter)
	rows, err := q.Query(ctx, `DELETE FROM grants WHERE `+where+` RETURNING id`, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// grantWhere is the condition that selects the grants of filter, and its
// arguments ($1 onwards). Its text is built from fixed pieces only; the
// values travel as parameters.
func grantWhere(filter ports.GrantFilter) (string, []any) {
	var (
		conds []string
		args  []any
	)
	for _, c := range []struct{ column, value string }{
		{"subject", filter.Subject}, {"client_id", filter.ClientID}, {"id", filter.GrantID},
	} {
		if c.value != "" {
			args = append(args, c.value)
			conds = append(conds, fmt.Sprintf("%s = $%d", c.column, len(args)))
		}
	}
	if len(conds) == 0 {
		return "true", nil
	}
	return strings.Join(conds, " AND "), args
}

// validFilter reports whether every field of filter could be a stored
// key: one that could not selects nothing, and must not reach the server,
// which would refuse it as text.
func validFilter(f ports.GrantFilter) bool {
	for _, v := range []string{f.Subject, f.ClientID, f.GrantID} {
		if v != "" && !validKey(v) {
			return false
		}
	}
	return true
}

// validText reports whether s ("" included) is text PostgreSQL accepts.
func validText(s string) bool { return s == "" || validKey(s) }

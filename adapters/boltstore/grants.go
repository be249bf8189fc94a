package boltstore

import (
	"context"
	"errors"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/oidcproxy/oidcproxy/domain"
)

// CreateGrant stores a new grant and its first authorization code in one
// group-committed transaction.
func (s *Store) CreateGrant(ctx context.Context, g domain.Grant, code domain.AuthorizationCode) error {
	const op = "create grant"
	if err := checkKey(g.ID); err != nil {
		return fail(op, err)
	}
	if err := checkKey(code.Hash); err != nil {
		return fail(op, err)
	}
	if code.GrantID != g.ID {
		return fail(op, errors.New("the code belongs to another grant"))
	}
	var outcome error
	err := s.write(ctx, op, true, func(tx *bolt.Tx) error {
		outcome = nil
		if exists(tx, bucketGrants, g.ID) || exists(tx, bucketCodes, code.Hash) {
			outcome = fail(op, domain.ErrAlreadyExists)
			return errNoChange
		}
		if err := insertGrant(tx, g); err != nil {
			return err
		}
		return insertCode(tx, code)
	})
	if err != nil {
		return err
	}
	return outcome
}

// RevokeGrant deletes a grant with its codes and refresh tokens.
func (s *Store) RevokeGrant(ctx context.Context, id string) error {
	return s.write(ctx, "revoke grant", false, func(tx *bolt.Tx) error {
		_, err := deleteGrantTree(tx, id)
		return err
	})
}

// RedeemCode marks the code redeemed and stores the refresh token issue
// returns, in one group-committed transaction. issue sees the code as it
// will be stored (RedeemedAt = now). An issue error burns the code and is
// returned as is.
func (s *Store) RedeemCode(ctx context.Context, hash string, now time.Time, issue func(domain.AuthorizationCode, domain.Grant) (*domain.RefreshToken, error)) (domain.AuthorizationCode, domain.Grant, error) {
	const op = "redeem code"
	var (
		code    domain.AuthorizationCode
		grant   domain.Grant
		outcome error
	)
	err := s.write(ctx, op, true, func(tx *bolt.Tx) error {
		code, grant, outcome = domain.AuthorizationCode{}, domain.Grant{}, nil
		c, g, ok, err := liveCode(tx, hash, now)
		if err != nil {
			return err
		}
		if !ok {
			outcome = fail(op, domain.ErrNotFound)
			return errNoChange
		}
		if c.Redeemed() {
			code, grant, outcome = c, g, fail(op, domain.ErrAlreadyConsumed)
			return errNoChange
		}
		c.RedeemedAt = now.UTC()
		rt, err := issue(c.Clone(), g.Clone())
		if err != nil {
			outcome = err
			return updateCode(tx, c) // commit the burn
		}
		if rt != nil {
			if err := checkKey(rt.Hash); err != nil {
				outcome = fail(op, err)
				return errNoChange
			}
			if rt.GrantID != g.ID {
				outcome = fail(op, errors.New("the refresh token belongs to another grant"))
				return errNoChange
			}
			if exists(tx, bucketRefresh, rt.Hash) {
				outcome = fail(op, domain.ErrAlreadyExists)
				return errNoChange
			}
			if err := insertToken(tx, *rt); err != nil {
				return err
			}
		}
		if err := updateCode(tx, c); err != nil {
			return err
		}
		code, grant = c, g
		return nil
	})
	if err != nil {
		return domain.AuthorizationCode{}, domain.Grant{}, err
	}
	return code, grant, outcome
}

// RotateRefreshToken marks the token rotated, stores the successor rotate
// returns (which it also returns) and saves the grant as rotate left it, in
// one group-committed transaction. A rotate error changes nothing and is
// returned as is; reuse of a rotated token revokes the grant.
func (s *Store) RotateRefreshToken(ctx context.Context, hash string, now time.Time, rotate func(domain.RefreshToken, *domain.Grant) (domain.RefreshToken, error)) (domain.RefreshToken, error) {
	const op = "rotate refresh token"
	var (
		result  domain.RefreshToken
		outcome error
	)
	err := s.write(ctx, op, true, func(tx *bolt.Tx) error {
		result, outcome = domain.RefreshToken{}, nil
		old, g, ok, err := liveToken(tx, hash, now)
		if err != nil {
			return err
		}
		if !ok {
			outcome = fail(op, domain.ErrNotFound)
			return errNoChange
		}
		if old.Rotated() {
			// Reuse means theft (RFC 9700 4.14.2): revoke, and commit.
			result, outcome = old, fail(op, domain.ErrAlreadyConsumed)
			_, err := deleteGrantTree(tx, g.ID)
			return err
		}
		next := g.Clone() // rotate changes this copy; g keeps the stored expiry
		succ, err := rotate(old.Clone(), &next)
		if err != nil {
			outcome = err
			return errNoChange
		}
		if err := checkKey(succ.Hash); err != nil {
			outcome = fail(op, err)
			return errNoChange
		}
		if succ.GrantID != g.ID || next.ID != g.ID {
			outcome = fail(op, errors.New("the rotation moved the token to another grant"))
			return errNoChange
		}
		if exists(tx, bucketRefresh, succ.Hash) {
			outcome = fail(op, domain.ErrAlreadyExists)
			return errNoChange
		}
		old.RotatedAt = now.UTC()
		old.SuccessorHash = succ.Hash
		if err := updateToken(tx, old); err != nil {
			return err
		}
		if err := insertToken(tx, succ); err != nil {
			return err
		}
		if err := updateGrant(tx, g, next); err != nil {
			return err
		}
		result = toRefreshRecord(succ).domain()
		return nil
	})
	if err != nil {
		return domain.RefreshToken{}, err
	}
	return result, outcome
}

// GetGrant returns a live grant. Repeated reads are served from memory
// (see grantCache); expiry is judged on every call.
func (s *Store) GetGrant(ctx context.Context, id string, now time.Time) (domain.Grant, error) {
	const op = "get grant"
	if err := ctx.Err(); err != nil {
		return domain.Grant{}, fail(op, err)
	}
	g, found := s.grants.get(id)
	if !found {
		epoch := s.grants.snapshot()
		err := s.view(ctx, op, func(tx *bolt.Tx) error {
			var err error
			g, found, err = loadGrant(tx, id)
			return err
		})
		if err != nil {
			return domain.Grant{}, err
		}
		if found {
			s.grants.fill(epoch, g)
		}
	}
	if !found || g.Expired(now) {
		return domain.Grant{}, fail(op, domain.ErrNotFound)
	}
	return g, nil
}

// GetRefreshToken returns a refresh token (live or rotated) whose grant is live.
func (s *Store) GetRefreshToken(ctx context.Context, hash string, now time.Time) (domain.RefreshToken, error) {
	const op = "get refresh token"
	var (
		t     domain.RefreshToken
		found bool
	)
	err := s.view(ctx, op, func(tx *bolt.Tx) error {
		var err error
		t, _, found, err = liveToken(tx, hash, now)
		return err
	})
	switch {
	case err != nil:
		return domain.RefreshToken{}, err
	case !found:
		return domain.RefreshToken{}, fail(op, domain.ErrNotFound)
	}
	return t, nil
}

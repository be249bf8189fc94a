package boltstore

import (
	"bytes"
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
	if err := errors.Join(checkOwner(g.Subject), checkOwner(g.ClientID)); err != nil {
		return fail(op, err)
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
		if err := insertCode(tx, code); err != nil {
			return err
		}
		return s.markClientUsed(tx, g.ClientID, g.CreatedAt)
	})
	if err != nil {
		return err
	}
	return outcome
}

// CreateDirectGrant stores a new grant without a code, in a group commit.
func (s *Store) CreateDirectGrant(ctx context.Context, g domain.Grant) error {
	const op = "create direct grant"
	if err := checkKey(g.ID); err != nil {
		return fail(op, err)
	}
	var outcome error
	err := s.write(ctx, op, true, func(tx *bolt.Tx) error {
		outcome = nil
		if exists(tx, bucketGrants, g.ID) {
			outcome = fail(op, domain.ErrAlreadyExists)
			return errNoChange
		}
		return insertGrant(tx, g)
	})
	if err != nil {
		return err
	}
	return outcome
}

// RevokeGrant deletes a grant with its codes and refresh tokens.
func (s *Store) RevokeGrant(ctx context.Context, id string) error {
	return s.write(ctx, "revoke grant", false, func(tx *bolt.Tx) error {
		_, err := s.deleteGrantTree(tx, id)
		return err
	})
}

// RotateRefreshToken applies domain.DecideRefresh to the presented token
// and the successor it names, in one group-committed transaction: a
// rotation or a retry stores the token rotate returns and saves the grant
// as rotate left it (a retry also withdraws the unused successor), a
// reuse revokes the grant, a foreign client changes nothing. A rotate
// error changes nothing and is returned as is. See ports.GrantStore.
//
// As in RedeemCode, the token and its grant are read and decoded before
// the write transaction, which decodes them again only if their bytes
// changed in between; a token that is missing or expired is answered
// from the read alone. The successor is read inside the transaction: the
// decision depends on it, and it is read only for a rotated token.
func (s *Store) RotateRefreshToken(ctx context.Context, hash string, now time.Time, use domain.RefreshUse, rotate domain.Rotator) (domain.RefreshToken, domain.RefreshDecision, error) {
	const op = "rotate refresh token"
	var pre tokenRead
	epoch := s.cache.grants.Epoch()
	err := s.view(ctx, op, func(tx *bolt.Tx) error {
		var err error
		pre, err = readLiveToken(tx, hash, now)
		return err
	})
	if err == nil && pre.found {
		pre.grant, pre.found, err = s.cache.grantFromRead(pre.token.GrantID, pre.grantRaw, epoch, now)
		err = wrapErr(op, err)
	}
	if err != nil {
		return domain.RefreshToken{}, 0, err
	}
	if !pre.found {
		return domain.RefreshToken{}, 0, fail(op, domain.ErrNotFound)
	}
	var (
		result   domain.RefreshToken
		decision domain.RefreshDecision
		outcome  error
	)
	err = s.write(ctx, op, true, func(tx *bolt.Tx) error {
		result, decision, outcome = domain.RefreshToken{}, 0, nil
		old, g, ok := pre.token.Clone(), pre.grant.Clone(), true
		if !pre.current(tx) {
			var err error
			if old, g, ok, err = liveToken(tx, hash, now); err != nil {
				return err
			}
		}
		if !ok {
			outcome = fail(op, domain.ErrNotFound)
			return errNoChange
		}
		var prev domain.RefreshToken
		if old.SuccessorHash != "" {
			var err error
			if prev, _, err = loadToken(tx, old.SuccessorHash); err != nil {
				return err
			}
		}
		decision = domain.DecideRefresh(old, prev, use, now)
		switch decision {
		case domain.RefreshRevoke:
			// Reuse means theft (RFC 9700 4.14.2): revoke, and commit.
			result, outcome = old, fail(op, domain.ErrAlreadyConsumed)
			_, err := s.deleteGrantTree(tx, g.ID)
			return err
		case domain.RefreshRefuse:
			result, outcome = old, fail(op, domain.ErrWrongClient)
			return errNoChange
		}
		next := g.Clone() // rotate changes this copy; g keeps the stored expiry
		succ, err := rotate.Rotate(old.Clone(), &next)
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
		if decision == domain.RefreshRetry {
			// The unused successor is withdrawn, not deleted: its holder's
			// next use must still be recognised, and revoke the grant.
			prev.RotatedAt, prev.SuccessorHash = now.UTC(), ""
			if err := updateToken(tx, prev); err != nil {
				return err
			}
		} else {
			old.RotatedAt = now.UTC()
		}
		old.SuccessorHash = succ.Hash
		if err := updateToken(tx, old); err != nil {
			return err
		}
		if err := insertToken(tx, succ); err != nil {
			return err
		}
		if err := s.updateGrant(tx, g, next); err != nil {
			return err
		}
		result = toRefreshRecord(succ).domain()
		return nil
	})
	if err != nil {
		return domain.RefreshToken{}, 0, err
	}
	return result, decision, outcome
}

// tokenRead is a refresh token and its grant as a read transaction found
// them, with copies of the bytes they were decoded from.
type tokenRead struct {
	token              domain.RefreshToken
	grant              domain.Grant
	tokenRaw, grantRaw []byte
	found              bool
}

// readLiveToken reads a live refresh token (rotated or not) and the bytes
// of its grant, which the caller decodes (grantFromRead) after the
// transaction.
func readLiveToken(tx *bolt.Tx, hash string, now time.Time) (tokenRead, error) {
	t, ok, err := loadToken(tx, hash)
	if err != nil || !ok || expired(now, t.ExpiresAt) {
		return tokenRead{}, err
	}
	grantRaw := tx.Bucket(bucketGrants).Get([]byte(t.GrantID))
	if grantRaw == nil {
		return tokenRead{}, nil
	}
	return tokenRead{
		token:    t,
		tokenRaw: bytes.Clone(tx.Bucket(bucketRefresh).Get([]byte(hash))),
		grantRaw: bytes.Clone(grantRaw),
		found:    true,
	}, nil
}

// current reports whether the token and grant still hold the bytes read,
// so that what was decoded from them still holds in tx.
func (r tokenRead) current(tx *bolt.Tx) bool {
	return bytes.Equal(tx.Bucket(bucketRefresh).Get([]byte(r.token.Hash)), r.tokenRaw) &&
		bytes.Equal(tx.Bucket(bucketGrants).Get([]byte(r.grant.ID)), r.grantRaw)
}

// GetGrant returns a live grant. Repeated reads are served from memory
// (see cache.go); expiry is judged on every call.
func (s *Store) GetGrant(ctx context.Context, id string, now time.Time) (domain.Grant, error) {
	const op = "get grant"
	if err := ctx.Err(); err != nil {
		return domain.Grant{}, fail(op, err)
	}
	if g, ok := s.cache.cachedGrant(id); ok {
		if g.Expired(now) {
			return domain.Grant{}, fail(op, domain.ErrNotFound)
		}
		return g, nil
	}
	epoch := s.cache.grants.Epoch()
	var raw []byte
	err := s.view(ctx, op, func(tx *bolt.Tx) error {
		raw = bytes.Clone(tx.Bucket(bucketGrants).Get([]byte(id)))
		return nil
	})
	if err != nil {
		return domain.Grant{}, err
	}
	if raw == nil {
		return domain.Grant{}, fail(op, domain.ErrNotFound)
	}
	g, live, err := s.cache.grantFromRead(id, raw, epoch, now)
	switch {
	case err != nil:
		return domain.Grant{}, fail(op, err)
	case !live:
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

package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
//
// The single writer is what limits /token, so the work that needs no
// lock runs before it, on the caller's goroutine: reading and decoding
// the code and its grant (readRedeemable). The write transaction then checks that the
// code and grant still hold the bytes that were read, asks issue and
// stores the records; if anything changed in between, it decides again
// from what it reads itself. A code that is missing, expired or already redeemed stays
// so, and is answered from the read alone, without queueing for a write:
// replayed and made-up codes cost no commit.
func (s *Store) RedeemCode(ctx context.Context, hash string, now time.Time, issue func(domain.AuthorizationCode, domain.Grant) (*domain.RefreshToken, error)) (domain.AuthorizationCode, domain.Grant, error) {
	const op = "redeem code"
	var (
		plan  redeemPlan
		found bool
	)
	epoch := s.grants.snapshot()
	err := s.view(ctx, op, func(tx *bolt.Tx) error {
		var err error
		plan, found, err = readRedeemable(tx, hash, now)
		return err
	})
	if err == nil && found {
		plan.grant, found, err = s.grantFromRead(plan.code.GrantID, plan.grantRaw, epoch, now)
		err = wrapErr(op, err)
	}
	switch {
	case err != nil:
		return domain.AuthorizationCode{}, domain.Grant{}, err
	case !found:
		return domain.AuthorizationCode{}, domain.Grant{}, fail(op, domain.ErrNotFound)
	case plan.code.Redeemed():
		return plan.code, plan.grant, fail(op, domain.ErrAlreadyConsumed)
	}
	plan.code.RedeemedAt = now.UTC()

	var (
		code    domain.AuthorizationCode
		grant   domain.Grant
		outcome error
	)
	err = s.write(ctx, op, true, func(tx *bolt.Tx) error {
		code, grant, outcome = domain.AuthorizationCode{}, domain.Grant{}, nil
		if plan.current(tx) {
			return plan.apply(tx, op, issue, &code, &grant, &outcome)
		}
		var err error
		code, grant, outcome, err = redeemInTx(tx, op, hash, now, issue)
		return err
	})
	if err != nil {
		return domain.AuthorizationCode{}, domain.Grant{}, err
	}
	return code, grant, outcome
}

// redeemPlan is RedeemCode's work done before the write transaction.
type redeemPlan struct {
	// code and grant as read; prepare sets code.RedeemedAt.
	code  domain.AuthorizationCode
	grant domain.Grant
	// codeRaw and grantRaw are copies of the bytes they were decoded from.
	codeRaw, grantRaw []byte
}

// readRedeemable reads a live code and the bytes of its grant, which the
// caller decodes (grantFromRead) after the transaction.
func readRedeemable(tx *bolt.Tx, hash string, now time.Time) (redeemPlan, bool, error) {
	c, ok, err := loadCode(tx, hash)
	if err != nil || !ok || expired(now, c.ExpiresAt) {
		return redeemPlan{}, false, err
	}
	grantRaw := tx.Bucket(bucketGrants).Get([]byte(c.GrantID))
	if grantRaw == nil {
		return redeemPlan{}, false, nil
	}
	return redeemPlan{
		code:     c,
		codeRaw:  bytes.Clone(tx.Bucket(bucketCodes).Get([]byte(hash))),
		grantRaw: bytes.Clone(grantRaw),
	}, true, nil
}

// grantFromRead decodes grant id from raw, its bytes as a read transaction
// saw them, and reports whether it is live at now. That transaction began
// after s.grants.snapshot returned epoch: if no grant has changed since,
// the cached grant is the one raw holds and nothing needs decoding (the
// cache serves every bearer check too, so a fresh grant is usually in it).
func (s *Store) grantFromRead(id string, raw []byte, epoch uint64, now time.Time) (domain.Grant, bool, error) {
	g, ok := s.grants.get(id)
	if !ok || s.grants.snapshot() != epoch {
		var r grantRecord
		if err := json.Unmarshal(raw, &r); err != nil {
			return domain.Grant{}, false, fmt.Errorf("decode %s record: %w", bucketGrants, err)
		}
		g = r.domain()
		s.grants.fill(epoch, g)
	}
	if g.Expired(now) {
		return domain.Grant{}, false, nil
	}
	return g, true, nil
}

// wrapErr wraps a non-nil err with the operation's name.
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return fail(op, err)
}

// current reports whether the code and grant still hold the bytes read
// and the code is still unredeemed.
func (p *redeemPlan) current(tx *bolt.Tx) bool {
	if _, redeemed := redeemedMark(tx, p.code); redeemed {
		return false
	}
	return bytes.Equal(tx.Bucket(bucketCodes).Get([]byte(p.code.Hash)), p.codeRaw) &&
		bytes.Equal(tx.Bucket(bucketGrants).Get([]byte(p.grant.ID)), p.grantRaw)
}

// apply asks issue, inside the transaction so that of concurrent
// redemptions only the one that commits reaches it, and stores the
// outcome, reporting through the pointers as the write closure does.
func (p *redeemPlan) apply(tx *bolt.Tx, op string, issue func(domain.AuthorizationCode, domain.Grant) (*domain.RefreshToken, error), code *domain.AuthorizationCode, grant *domain.Grant, outcome *error) error {
	rt, err := issue(p.code.Clone(), p.grant.Clone())
	if err != nil {
		*outcome = err
		return markRedeemed(tx, p.code) // commit the burn
	}
	if rt != nil {
		if err := checkKey(rt.Hash); err != nil {
			*outcome = fail(op, err)
			return errNoChange
		}
		if rt.GrantID != p.grant.ID {
			*outcome = fail(op, errors.New("the refresh token belongs to another grant"))
			return errNoChange
		}
		if exists(tx, bucketRefresh, rt.Hash) {
			*outcome = fail(op, domain.ErrAlreadyExists)
			return errNoChange
		}
		if err := insertToken(tx, *rt); err != nil {
			return err
		}
	}
	if err := markRedeemed(tx, p.code); err != nil {
		return err
	}
	*code, *grant = p.code.Clone(), p.grant.Clone()
	return nil
}

// redeemInTx is RedeemCode decided entirely inside the transaction, for
// when the code or its grant changed after readRedeemable read them.
func redeemInTx(tx *bolt.Tx, op, hash string, now time.Time, issue func(domain.AuthorizationCode, domain.Grant) (*domain.RefreshToken, error)) (domain.AuthorizationCode, domain.Grant, error, error) {
	c, g, ok, err := liveCode(tx, hash, now)
	if err != nil {
		return domain.AuthorizationCode{}, domain.Grant{}, nil, err
	}
	if !ok {
		return domain.AuthorizationCode{}, domain.Grant{}, fail(op, domain.ErrNotFound), errNoChange
	}
	if c.Redeemed() {
		return c, g, fail(op, domain.ErrAlreadyConsumed), errNoChange
	}
	c.RedeemedAt = now.UTC()
	rt, err := issue(c.Clone(), g.Clone())
	if err != nil {
		return domain.AuthorizationCode{}, domain.Grant{}, err, markRedeemed(tx, c) // commit the burn
	}
	if rt != nil {
		if err := checkKey(rt.Hash); err != nil {
			return domain.AuthorizationCode{}, domain.Grant{}, fail(op, err), errNoChange
		}
		if rt.GrantID != g.ID {
			return domain.AuthorizationCode{}, domain.Grant{}, fail(op, errors.New("the refresh token belongs to another grant")), errNoChange
		}
		if exists(tx, bucketRefresh, rt.Hash) {
			return domain.AuthorizationCode{}, domain.Grant{}, fail(op, domain.ErrAlreadyExists), errNoChange
		}
		if err := insertToken(tx, *rt); err != nil {
			return domain.AuthorizationCode{}, domain.Grant{}, nil, err
		}
	}
	if err := markRedeemed(tx, c); err != nil {
		return domain.AuthorizationCode{}, domain.Grant{}, nil, err
	}
	return c, g, nil, nil
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
func (s *Store) RotateRefreshToken(ctx context.Context, hash string, now time.Time, use domain.RefreshUse, rotate func(domain.RefreshToken, *domain.Grant) (domain.RefreshToken, error)) (domain.RefreshToken, domain.RefreshDecision, error) {
	const op = "rotate refresh token"
	var pre tokenRead
	epoch := s.grants.snapshot()
	err := s.view(ctx, op, func(tx *bolt.Tx) error {
		var err error
		pre, err = readLiveToken(tx, hash, now)
		return err
	})
	if err == nil && pre.found {
		pre.grant, pre.found, err = s.grantFromRead(pre.token.GrantID, pre.grantRaw, epoch, now)
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
			_, err := deleteGrantTree(tx, g.ID)
			return err
		case domain.RefreshRefuse:
			result, outcome = old, fail(op, domain.ErrWrongClient)
			return errNoChange
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
		if err := updateGrant(tx, g, next); err != nil {
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
// (see grantCache); expiry is judged on every call.
func (s *Store) GetGrant(ctx context.Context, id string, now time.Time) (domain.Grant, error) {
	const op = "get grant"
	if err := ctx.Err(); err != nil {
		return domain.Grant{}, fail(op, err)
	}
	if g, ok := s.grants.get(id); ok {
		if g.Expired(now) {
			return domain.Grant{}, fail(op, domain.ErrNotFound)
		}
		return g, nil
	}
	epoch := s.grants.snapshot()
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
	g, live, err := s.grantFromRead(id, raw, epoch, now)
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

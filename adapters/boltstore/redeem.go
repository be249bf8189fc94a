package boltstore

import (
	"bytes"
	"context"
	"errors"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/oidcproxy/oidcproxy/domain"
)

// RedeemCode marks the code redeemed and stores the refresh token issue
// returns, in one group-committed transaction. issue sees the code as it
// will be stored (RedeemedAt = now). A check or issue error burns the code
// with its grant, and a replay that check accepts revokes the grant, in
// that same transaction.
//
// The single writer is what limits /token, so the work that needs no lock
// runs before it, on the caller's goroutine: reading and decoding the code
// and its grant (preReadCode). A code that is missing or expired stays
// so, and a redeemed one stays redeemed: they are answered from that read
// alone, without queueing for a write, unless check accepts the replay
// and the grant must go. Made-up codes and replays by someone who holds
// the code alone cost no commit. The write transaction uses the read if
// the code and grant still hold the bytes it was decoded from, and reads
// them again itself otherwise; either read goes through the same rule
// (redeem).
func (s *Store) RedeemCode(ctx context.Context, hash string, now time.Time, use domain.CodeUse) (domain.AuthorizationCode, domain.Grant, error) {
	const op = "redeem code"
	pre, err := s.preReadCode(ctx, op, hash, now)
	if err != nil {
		return domain.AuthorizationCode{}, domain.Grant{}, err
	}
	if d, err := pre.refusal(op, use); err != nil && d.revoke == "" {
		return d.code, d.grant, err
	}
	var (
		d       redemption
		outcome error
	)
	err = s.write(ctx, op, true, func(tx *bolt.Tx) error {
		r := pre
		if !pre.current(tx) {
			var err error
			if r, err = readCode(tx, hash, now); err != nil {
				return err
			}
		}
		d, outcome = redeem(tx, r, op, now, use)
		return s.writeRedemption(tx, d)
	})
	if err != nil {
		return domain.AuthorizationCode{}, domain.Grant{}, err
	}
	return d.code, d.grant, outcome
}

// codeRead is a code and its grant as one read found them.
type codeRead struct {
	code  domain.AuthorizationCode
	grant domain.Grant
	// found: the code is there and unexpired, and its grant is live.
	found bool
	// codeRaw and grantRaw are copies of the bytes the pre-read decoded
	// (nil for a read inside the write transaction).
	codeRaw, grantRaw []byte
}

// preReadCode reads the code and the bytes of its grant in a read
// transaction, then decodes the grant outside it (from the cache when it
// holds the grant decoded from the same bytes).
func (s *Store) preReadCode(ctx context.Context, op, hash string, now time.Time) (codeRead, error) {
	var r codeRead
	epoch := s.cache.grants.Epoch()
	err := s.view(ctx, op, func(tx *bolt.Tx) error {
		c, ok, err := loadCode(tx, hash)
		if err != nil || !ok || expired(now, c.ExpiresAt) {
			return err
		}
		grantRaw := tx.Bucket(bucketGrants).Get([]byte(c.GrantID))
		if grantRaw == nil {
			return nil
		}
		r = codeRead{
			code:     c,
			codeRaw:  bytes.Clone(tx.Bucket(bucketCodes).Get([]byte(hash))),
			grantRaw: bytes.Clone(grantRaw),
			found:    true,
		}
		return nil
	})
	if err != nil || !r.found {
		return codeRead{}, err
	}
	r.grant, r.found, err = s.cache.grantFromRead(r.code.GrantID, r.grantRaw, epoch, now)
	return r, wrapErr(op, err)
}

// readCode is the read inside the write transaction, for when the code or
// its grant changed after the pre-read.
func readCode(tx *bolt.Tx, hash string, now time.Time) (codeRead, error) {
	c, g, ok, err := liveCode(tx, hash, now)
	return codeRead{code: c, grant: g, found: ok}, err
}

// current reports whether tx still holds the bytes r was decoded from and
// no redemption of the code, so that deciding from r is deciding from tx.
func (r codeRead) current(tx *bolt.Tx) bool {
	if _, redeemed := redeemedMark(tx, r.code); redeemed {
		return false
	}
	return bytes.Equal(tx.Bucket(bucketCodes).Get([]byte(r.code.Hash)), r.codeRaw) &&
		bytes.Equal(tx.Bucket(bucketGrants).Get([]byte(r.grant.ID)), r.grantRaw)
}

// redemption is what the rule decided for one read: the answer the caller
// gets, and what the transaction writes.
type redemption struct {
	// code and grant are returned to the caller: the redeemed code and its
	// grant, or on ErrAlreadyConsumed the stored ones; zero otherwise.
	code  domain.AuthorizationCode
	grant domain.Grant
	// spend: the code is spent, and spent is the code whose redemption is
	// written, token the refresh token stored with it.
	spend bool
	spent domain.AuthorizationCode
	token *domain.RefreshToken
	// revoke names the grant that goes, with the code and every token
	// issued from it: the code was burned, or replayed by a presenter
	// check accepts. Empty: no revocation.
	revoke string
}

// refusal is the part of the rule that a read decides alone: an absent
// or dead code, or one whose grant is gone, is not found; a redeemed code
// is consumed, and the caller learns which code and grant it was. A
// replay that check accepts also revokes the grant (revoke), which only a
// write can do. A nil error means the code may be redeemed.
func (r codeRead) refusal(op string, use domain.CodeUse) (redemption, error) {
	switch {
	case !r.found:
		return redemption{}, fail(op, domain.ErrNotFound)
	case r.code.Redeemed():
		d := redemption{code: r.code, grant: r.grant}
		if use.Check(r.code.Clone()) == nil {
			d.revoke = r.grant.ID
		}
		return d, fail(op, domain.ErrAlreadyConsumed)
	}
	return redemption{}, nil
}

// redeem is RedeemCode's rule, applied to a read made in tx or checked
// against it (current). It asks check and issue, inside the transaction so
// that of concurrent redemptions only the one that commits reaches issue,
// and returns the decision with the caller's answer. It only reads tx;
// writeRedemption stores the decision.
func redeem(tx *bolt.Tx, r codeRead, op string, now time.Time, use domain.CodeUse) (redemption, error) {
	if d, err := r.refusal(op, use); err != nil {
		return d, err
	}
	if err := use.Check(r.code.Clone()); err != nil {
		return redemption{revoke: r.grant.ID}, err // the code is burned
	}
	c := r.code
	c.RedeemedAt = now.UTC()
	rt, err := use.Issue(c.Clone(), r.grant.Clone())
	if err != nil {
		return redemption{revoke: r.grant.ID}, err // the code is burned
	}
	if rt != nil {
		if err := checkKey(rt.Hash); err != nil {
			return redemption{}, fail(op, err)
		}
		if rt.GrantID != r.grant.ID {
			return redemption{}, fail(op, errors.New("the refresh token belongs to another grant"))
		}
		if exists(tx, bucketRefresh, rt.Hash) {
			return redemption{}, fail(op, domain.ErrAlreadyExists)
		}
	}
	return redemption{code: c, grant: r.grant, spend: true, spent: c, token: rt}, nil
}

// writeRedemption stores what d decided: the grant's revocation, the
// refresh token and the code's redemption mark, or nothing (errNoChange).
func (s *Store) writeRedemption(tx *bolt.Tx, d redemption) error {
	if d.revoke != "" {
		_, err := s.deleteGrantTree(tx, d.revoke)
		return err
	}
	if !d.spend {
		return errNoChange
	}
	if d.token != nil {
		if err := insertToken(tx, *d.token); err != nil {
			return err
		}
	}
	return markRedeemed(tx, d.spent)
}

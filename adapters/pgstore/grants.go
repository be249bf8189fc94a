package pgstore

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// CreateGrant stores a new grant and its first authorization code in one
// statement (sqlCreateGrant).
func (s *Store) CreateGrant(ctx context.Context, g domain.Grant, code domain.AuthorizationCode) error {
	const op = "create grant"
	if err := ctx.Err(); err != nil {
		return fail(op, err)
	}
	if !validKey(g.ID) || !validKey(code.Hash) {
		return fail(op, errInvalidKey)
	}
	if code.GrantID != g.ID {
		return fail(op, errors.New("the code belongs to another grant"))
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	args := grantArgs(g)
	codeVals := codeArgs(code)
	args = append(args, codeVals[0])
	args = append(args, codeVals[2:]...) // the grant id comes from the inserted grant
	tag, err := s.pool.Exec(ctx, sqlCreateGrant, args...)
	if s.cache != nil {
		// The same statement may have recorded the client's first grant:
		// this instance reads its own write at once (the others hear of it
		// from the trigger).
		s.cache.clients.Forget(g.ClientID)
	}
	switch {
	case err != nil:
		return fail(op, alreadyExists(err))
	case tag.RowsAffected() == 0:
		return fail(op, domain.ErrAlreadyExists)
	}
	return nil
}

// GetGrant returns a live grant: from memory when the store caches (see
// cache.go), else from the database, in one read for all the callers that
// miss it at once (reads).
func (s *Store) GetGrant(ctx context.Context, id string, now time.Time) (domain.Grant, error) {
	const op = "get grant"
	if err := ctx.Err(); err != nil {
		return domain.Grant{}, fail(op, err)
	}
	if !validKey(id) {
		return domain.Grant{}, fail(op, domain.ErrNotFound)
	}
	if s.cache == nil {
		g, err := s.readGrant(ctx, id, now)
		if err != nil {
			return domain.Grant{}, fail(op, err)
		}
		return g, nil
	}
	if g, ok := s.cache.grant(id, now); ok {
		return g, nil
	}
	epoch := s.cache.grants.Epoch()
	g, err := s.grantReads.do(ctx, id, epoch, func(ctx context.Context) (domain.Grant, error) {
		g, err := s.readGrant(ctx, id, now)
		if err == nil {
			s.cache.fillGrant(epoch, g)
		}
		return g, err
	})
	switch {
	case err != nil:
		return domain.Grant{}, fail(op, err)
	case g.Expired(now):
		// The read was for the now of the caller that led it, which
		// may be earlier than this caller's. (A later one can only have
		// found gone a grant that was about to expire for this caller:
		// refused a moment early, never served late.)
		return domain.Grant{}, fail(op, domain.ErrNotFound)
	}
	return grantCopy(g), nil
}

// readGrant reads grant id from the database if it is live at now.
func (s *Store) readGrant(ctx context.Context, id string, now time.Time) (domain.Grant, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var r grantRow
	if err := s.pool.QueryRow(ctx, sqlGetGrant, id, ns(now)).Scan(r.dest()...); err != nil {
		return domain.Grant{}, notFound(err)
	}
	return r.domain(), nil
}

// RevokeGrant deletes a grant; the foreign keys' cascade deletes its codes
// and refresh tokens in the same statement (revokeGrants, which the
// operator's revocations share), and the trigger notifies the other
// instances.
func (s *Store) RevokeGrant(ctx context.Context, id string) error {
	const op = "revoke grant"
	if err := ctx.Err(); err != nil {
		return fail(op, err)
	}
	if !validKey(id) {
		return nil
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	_, err := revokeGrants(ctx, s.pool, ports.GrantFilter{GrantID: id})
	// Also after an error: the deletion may have committed before the
	// answer was lost.
	s.forgetGrant(id)
	if err != nil {
		return fail(op, err)
	}
	return nil
}

// forgetGrant drops a grant this instance just changed from its cache, so
// that it reads its own write without waiting for the notification.
func (s *Store) forgetGrant(id string) {
	if s.cache != nil {
		s.cache.grants.Forget(id)
	}
}

// RedeemCode marks the code redeemed and stores the refresh token
// use.Issue returns. A domain.CodeRedemption (a token request) is decided
// in one statement, one round trip and one commit in the usual cases
// (claim); any other use, and the rare cases a claim leaves open, go
// through redeemLocked. Both hold the contract of ports.GrantStore.
func (s *Store) RedeemCode(ctx context.Context, hash string, now time.Time, use domain.CodeUse) (domain.AuthorizationCode, domain.Grant, error) {
	const op = "redeem code"
	if err := ctx.Err(); err != nil {
		return domain.AuthorizationCode{}, domain.Grant{}, fail(op, err)
	}
	if !validKey(hash) {
		return domain.AuthorizationCode{}, domain.Grant{}, fail(op, domain.ErrNotFound)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if r, ok := use.(domain.CodeRedemption); ok && r.Now.Equal(now) {
		if c, ok := r.Claim(); ok && claimable(c) {
			code, grant, done, err := s.claim(ctx, hash, now, r, c)
			if done {
				return code, grant, err
			}
		}
	}
	return s.redeemLocked(ctx, hash, now, use)
}

// claim runs sqlClaimCode and answers from its row; done is false when
// only redeemLocked can decide, and then nothing has changed.
//
// A claimed code is checked again in Go: the statement's conditions are
// CodeRedemption's rule as its CodeClaim states it, and should the two
// ever disagree, the rule in Go wins and the code is burned as the
// contract says, by a second statement (the refresh token the claim
// stored is deleted with the grant, and its value was never returned). A
// replay the statement revoked is answered as one; a replay it left alone
// is refused without a change if the rule refuses it too, and is left to
// redeemLocked otherwise.
func (s *Store) claim(ctx context.Context, hash string, now time.Time, use domain.CodeRedemption, c domain.CodeClaim) (code domain.AuthorizationCode, grant domain.Grant, done bool, err error) {
	const op = "redeem code"
	if use.RefreshHash != "" && !validKey(use.RefreshHash) {
		return domain.AuthorizationCode{}, domain.Grant{}, true, fail(op, errInvalidKey)
	}
	// A statement whose answer is lost may have committed a revocation;
	// this instance then learns of it from the notification, since the
	// grant's id is not known here.
	var (
		claimed, revoked bool
		cr               codeRow
		gr               grantRow
		tokenExpiryNS    *int64
	)
	dest := append(append([]any{&claimed, &revoked}, cr.dest()...), gr.dest()...)
	found, err := s.claims.queryRow(ctx, hash, []any{hash, ns(now), c.ClientID, c.RedirectURI, c.Challenge, c.Resources,
		use.RefreshHash, ns(now.Add(use.RefreshTTL))}, append(dest, &tokenExpiryNS)...)
	switch {
	case err != nil:
		return domain.AuthorizationCode{}, domain.Grant{}, true, fail(op, alreadyExists(err))
	case !found:
		return domain.AuthorizationCode{}, domain.Grant{}, true, fail(op, domain.ErrNotFound)
	}
	code, grant = cr.domain(), gr.domain()
	switch {
	case claimed:
		if err := checkClaim(use, code, grant, tokenExpiryNS); err != nil {
			if rerr := s.revoke(ctx, grant.ID); rerr != nil {
				return domain.AuthorizationCode{}, domain.Grant{}, true, fail(op, rerr)
			}
			return domain.AuthorizationCode{}, domain.Grant{}, true, err
		}
		return code, grant, true, nil
	case revoked:
		s.forgetGrant(grant.ID)
		return code, grant, true, fail(op, domain.ErrAlreadyConsumed)
	case code.Redeemed() && use.Check(code.Clone()) != nil:
		return code, grant, true, fail(op, domain.ErrAlreadyConsumed)
	}
	return domain.AuthorizationCode{}, domain.Grant{}, false, nil
}

// claimable reports whether every value of c can be a parameter: text
// PostgreSQL refuses (invalid UTF-8, NUL) fails the whole statement,
// while the rule in Go simply refuses it (redeemLocked burns the code).
func claimable(c domain.CodeClaim) bool {
	if !validKey(c.ClientID) || !validText(c.RedirectURI) {
		return false
	}
	for _, r := range c.Resources {
		if !validText(r) {
			return false
		}
	}
	return true
}

// checkClaim applies use's rule in Go to the code and grant a claim
// returned and to the expiry of the token it stored (nil: none), and
// returns the error that must burn the code when they disagree.
func checkClaim(use domain.CodeRedemption, code domain.AuthorizationCode, grant domain.Grant, tokenExpiryNS *int64) error {
	if err := use.Check(code.Clone()); err != nil {
		return err
	}
	rt, err := use.Issue(code.Clone(), grant.Clone())
	if err != nil {
		return err
	}
	if (rt == nil) != (tokenExpiryNS == nil) || rt != nil && ns(rt.ExpiresAt) != *tokenExpiryNS {
		return errClaimDiffers
	}
	return nil
}

// errClaimDiffers is a claim whose stored refresh token is not the one
// domain.CodeRedemption.Issue builds: sqlClaimCode and the rule in Go
// have drifted apart.
var errClaimDiffers = errors.New("redeem code: the stored refresh token differs from the one the redemption issues")

// revoke deletes grant id, with its codes and tokens, in one statement;
// this instance forgets it at once, also after an error (the deletion
// may have committed before the answer was lost).
func (s *Store) revoke(ctx context.Context, id string) error {
	_, err := s.pool.Exec(ctx, sqlRevokeGrant, id)
	s.forgetGrant(id)
	return err
}

// redeemLocked is RedeemCode in a transaction of two round trips (see
// rwTx): the first reads the live code and its grant and locks them,
// use.Check and use.Issue decide in Go, the second writes and commits. Of
// concurrent redemptions of one code, on any number of instances, the
// first to lock the rows reaches Issue; the others wait, then find the
// code redeemed (ErrAlreadyConsumed) or gone with its grant (ErrNotFound),
// without reaching Issue.
//
// A burn (Check or Issue refuses a code not yet redeemed) and a replay
// that Check accepts delete the grant in the second round trip, in the
// transaction that found them: its codes and tokens go with it by the
// foreign keys' cascade, and the grants trigger notifies the other
// instances when it commits. A replay Check refuses changes nothing, and
// its transaction is rolled back.
func (s *Store) redeemLocked(ctx context.Context, hash string, now time.Time, use domain.CodeUse) (domain.AuthorizationCode, domain.Grant, error) {
	const op = "redeem code"
	var (
		cr codeRow
		gr grantRow
	)
	tx, found, err := s.begin(ctx, sqlLockCode, []any{hash, ns(now)}, append(cr.dest(), gr.dest()...)...)
	if err != nil {
		return domain.AuthorizationCode{}, domain.Grant{}, fail(op, err)
	}
	defer tx.rollback()
	if !found {
		return domain.AuthorizationCode{}, domain.Grant{}, fail(op, domain.ErrNotFound)
	}
	code, grant := cr.domain(), gr.domain()
	if code.Redeemed() {
		if use.Check(code.Clone()) != nil {
			return code, grant, fail(op, domain.ErrAlreadyConsumed)
		}
		if err := s.revokeIn(ctx, tx, grant.ID); err != nil {
			return domain.AuthorizationCode{}, domain.Grant{}, fail(op, err)
		}
		return code, grant, fail(op, domain.ErrAlreadyConsumed)
	}
	if err := use.Check(code.Clone()); err != nil {
		if rerr := s.revokeIn(ctx, tx, grant.ID); rerr != nil {
			return domain.AuthorizationCode{}, domain.Grant{}, fail(op, rerr)
		}
		return domain.AuthorizationCode{}, domain.Grant{}, err
	}
	code.RedeemedAt = fromNS(ns(now))
	rt, err := use.Issue(code.Clone(), grant.Clone())
	if err != nil {
		if rerr := s.revokeIn(ctx, tx, grant.ID); rerr != nil {
			return domain.AuthorizationCode{}, domain.Grant{}, fail(op, rerr)
		}
		return domain.AuthorizationCode{}, domain.Grant{}, err
	}
	b := &pgx.Batch{}
	b.Queue(sqlRedeemCode, hash, ns(now))
	if rt != nil {
		if !validKey(rt.Hash) {
			return domain.AuthorizationCode{}, domain.Grant{}, fail(op, errInvalidKey)
		}
		if rt.GrantID != grant.ID {
			return domain.AuthorizationCode{}, domain.Grant{}, fail(op, errors.New("the refresh token belongs to another grant"))
		}
		b.Queue(sqlInsertRefreshToken, refreshArgs(*rt)...)
	}
	if err := tx.commit(ctx, b); err != nil {
		return domain.AuthorizationCode{}, domain.Grant{}, fail(op, alreadyExists(err))
	}
	return code, grant, nil
}

// revokeIn deletes grant id, with its codes and tokens, as the last step
// of tx, and commits. This instance forgets the grant at once, also after
// an error: the deletion may have committed before the answer was lost.
func (s *Store) revokeIn(ctx context.Context, tx *rwTx, id string) error {
	b := &pgx.Batch{}
	b.Queue(sqlRevokeGrant, id)
	err := tx.commit(ctx, b)
	s.forgetGrant(id)
	return err
}

// RotateRefreshToken applies domain.DecideRefresh to the presented token
// and its successor. A plain domain.Rotation's usual case, RefreshRotate,
// is one statement (rotatePlain); everything else, and every other
// rotate, is one transaction of two round trips (see rwTx) with
// the grant and the token locked from the first. Only a rotated token that
// may still be a retry (domain.RefreshToken.Retryable) costs a third round
// trip, to read and lock the successor it names: that is the rare path of a
// client whose response was lost. The outcomes, each a fixed set of
// statements queued before COMMIT:
//   - RefreshRotate: the presented token is marked rotated and names the
//     new token, which is inserted; the grant is saved as rotate left it;
//   - RefreshRetry: the unused successor is withdrawn (rotated, no
//     successor of its own), the presented token names the new token
//     instead (its rotation time stays, so retries never extend the
//     window), the new token is inserted and the grant saved;
//   - RefreshRevoke: the grant is deleted in the same transaction (RFC 9700
//     4.14.2; its codes and tokens go with it by the foreign keys' cascade)
//     and the stored token returned with domain.ErrAlreadyConsumed;
//   - RefreshRefuse: nothing changes; domain.ErrWrongClient.
//
// A rotate error changes nothing and is returned as is. Of concurrent
// callers presenting one token, each locks it in turn and decides on what
// the previous one committed, as the contract requires.
func (s *Store) RotateRefreshToken(ctx context.Context, hash string, now time.Time, use domain.RefreshUse, rotate domain.Rotator) (domain.RefreshToken, domain.RefreshDecision, error) {
	const op = "rotate refresh token"
	if err := ctx.Err(); err != nil {
		return domain.RefreshToken{}, 0, fail(op, err)
	}
	if !validKey(hash) {
		return domain.RefreshToken{}, 0, fail(op, domain.ErrNotFound)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if r, ok := rotate.(domain.Rotation); ok && r.Plain() && r.Now.Equal(now) && r.ClientID == use.ClientID && validKey(r.SuccessorHash) {
		t, done, err := s.rotatePlain(ctx, hash, now, r)
		switch {
		case done && err != nil:
			return domain.RefreshToken{}, 0, err // nothing was decided
		case done:
			return t, domain.RefreshRotate, nil
		}
	}
	var (
		gr grantRow
		tr refreshRow
	)
	tx, found, err := s.begin(ctx, sqlLockRefreshToken, []any{hash, ns(now)}, append(gr.dest(), tr.dest()...)...)
	if err != nil {
		return domain.RefreshToken{}, 0, fail(op, err)
	}
	defer tx.rollback()
	if !found {
		return domain.RefreshToken{}, 0, fail(op, domain.ErrNotFound)
	}
	old, g := tr.domain(), gr.domain()

	var successor domain.RefreshToken
	if old.Retryable(use, now) {
		var sr refreshRow
		err := tx.conn.QueryRow(ctx, sqlLockSuccessor, old.SuccessorHash).Scan(sr.dest()...)
		switch {
		case err == nil:
			successor = sr.domain()
		case !errors.Is(err, pgx.ErrNoRows):
			return domain.RefreshToken{}, 0, fail(op, err)
		}
	}
	decision := domain.DecideRefresh(old, successor, use, now)

	b := &pgx.Batch{}
	switch decision {
	case domain.RefreshRevoke:
		if err := s.revokeIn(ctx, tx, g.ID); err != nil {
			return domain.RefreshToken{}, decision, fail(op, err)
		}
		return old, decision, fail(op, domain.ErrAlreadyConsumed)
	case domain.RefreshRefuse:
		return old, decision, fail(op, domain.ErrWrongClient)
	}

	next := g.Clone()
	succ, err := rotate.Rotate(old.Clone(), &next)
	if err != nil {
		return domain.RefreshToken{}, decision, err
	}
	if !validKey(succ.Hash) {
		return domain.RefreshToken{}, decision, fail(op, errInvalidKey)
	}
	if succ.GrantID != g.ID || next.ID != g.ID {
		return domain.RefreshToken{}, decision, fail(op, errors.New("the rotation moved the token to another grant"))
	}
	if decision == domain.RefreshRetry {
		b.Queue(sqlWithdrawRefreshToken, successor.Hash, ns(now))
		b.Queue(sqlRenameSuccessor, hash, succ.Hash)
	} else {
		b.Queue(sqlRotateRefreshToken, hash, ns(now), succ.Hash)
	}
	b.Queue(sqlInsertRefreshToken, refreshArgs(succ)...)
	b.Queue(sqlSaveGrant, grantArgs(next)...)
	err = tx.commit(ctx, b)
	s.forgetGrant(g.ID)
	if err != nil {
		return domain.RefreshToken{}, decision, fail(op, alreadyExists(err))
	}
	return normalRefreshToken(succ), decision, nil
}

// rotatePlain rotates by sqlRotatePlain, the usual case decided in one
// statement: a live token, not rotated yet, presented by its client
// (domain.DecideRefresh's RefreshRotate). done is false when the statement
// changed nothing, and the locking transaction must decide.
func (s *Store) rotatePlain(ctx context.Context, hash string, now time.Time, r domain.Rotation) (t domain.RefreshToken, done bool, err error) {
	const op = "rotate refresh token"
	var (
		tr refreshRow
		gr grantRow
	)
	found, err := s.rotations.queryRow(ctx, hash, []any{hash, ns(now), r.SuccessorHash, r.ClientID, ns(now.Add(r.TTL))},
		append(tr.dest(), gr.dest()...)...)
	switch {
	case err != nil:
		return domain.RefreshToken{}, true, fail(op, alreadyExists(err))
	case !found:
		return domain.RefreshToken{}, false, nil
	}
	g := gr.domain()
	s.forgetGrant(g.ID)
	succ, err := r.Rotate(tr.domain(), &g)
	if err != nil {
		return domain.RefreshToken{}, true, err
	}
	return normalRefreshToken(succ), true, nil
}

// GetRefreshToken returns a refresh token (live or rotated) whose grant is live.
func (s *Store) GetRefreshToken(ctx context.Context, hash string, now time.Time) (domain.RefreshToken, error) {
	const op = "get refresh token"
	if err := ctx.Err(); err != nil {
		return domain.RefreshToken{}, fail(op, err)
	}
	if !validKey(hash) {
		return domain.RefreshToken{}, fail(op, domain.ErrNotFound)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var r refreshRow
	if err := s.pool.QueryRow(ctx, sqlGetRefreshToken, hash, ns(now)).Scan(r.dest()...); err != nil {
		return domain.RefreshToken{}, fail(op, notFound(err))
	}
	return r.domain(), nil
}

// normalRefreshToken is t as a read would return it: times in UTC at the
// stored precision, no slice shared with the caller.
func normalRefreshToken(t domain.RefreshToken) domain.RefreshToken {
	t = t.Clone()
	t.IssuedAt = fromNS(ns(t.IssuedAt))
	t.ExpiresAt = fromNS(ns(t.ExpiresAt))
	t.RotatedAt = fromNS(ns(t.RotatedAt))
	return t
}

// CreateDirectGrant stores a new grant without a code, in one statement.
func (s *Store) CreateDirectGrant(ctx context.Context, g domain.Grant) error {
	return s.insertOnce(ctx, "create direct grant", g.ID, sqlCreateDirectGrant, grantArgs(g))
}

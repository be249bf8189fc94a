package pgstore

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/oidcproxy/oidcproxy/domain"
)

// errBornExpired refuses a record that would expire before it is stored:
// it could not guard against anything.
var errBornExpired = errors.New("expiry is not after now")

// ConsumeAssertionID records that the assertion (issuer, jti) was used,
// in one statement (sqlConsumeAssertionID): the database decides, for
// every instance at once, which of concurrent consumptions wins.
func (s *Store) ConsumeAssertionID(ctx context.Context, issuer, jti string, now, expiresAt time.Time) error {
	const op = "consume assertion id"
	switch {
	case issuer == "" || jti == "":
		return fail(op, errInvalidKey)
	case !now.Before(expiresAt):
		return fail(op, errBornExpired)
	}
	if err := ctx.Err(); err != nil {
		return fail(op, err)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var one int
	err := s.pool.QueryRow(ctx, sqlConsumeAssertionID, domain.AssertionReplayKey(issuer, jti), ns(expiresAt), ns(now)).Scan(&one)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fail(op, domain.ErrAlreadyConsumed)
	case err != nil:
		return fail(op, err)
	}
	return nil
}

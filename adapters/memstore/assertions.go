package memstore

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/oidcproxy/oidcproxy/domain"
)

// assertionShards splits the used-assertion records so that consuming the
// jti of one client never waits for another's: unlike the rest of the
// store, this table is written on every private_key_jwt authentication.
const assertionShards = 16

// errBornExpired refuses a record that would expire before it is stored:
// it could not guard against anything.
var errBornExpired = errors.New("expiry is not after now")

// assertionIDs remembers used assertions: key (domain.AssertionReplayKey)
// → when it may be forgotten. It has its own locks, not the store's.
type assertionIDs struct {
	shards [assertionShards]assertionShard
}

type assertionShard struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func (a *assertionIDs) shard(key string) *assertionShard {
	// The key is a base64url hash: its last character is as good as any.
	return &a.shards[int(key[len(key)-1])%assertionShards]
}

// ConsumeAssertionID records that the assertion (issuer, jti) was used; an
// unexpired record of it is domain.ErrAlreadyConsumed.
func (s *Store) ConsumeAssertionID(ctx context.Context, issuer, jti string, now, expiresAt time.Time) error {
	const op = "consume assertion id"
	switch {
	case issuer == "" || jti == "":
		return fail(op, errEmptyKey)
	case expired(now, expiresAt):
		return fail(op, errBornExpired)
	case ctx.Err() != nil:
		return fail(op, ctx.Err())
	}
	key := domain.AssertionReplayKey(issuer, jti)
	sh := s.assertions.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if until, ok := sh.seen[key]; ok && !expired(now, until) {
		return fail(op, domain.ErrAlreadyConsumed)
	}
	if sh.seen == nil {
		sh.seen = map[string]time.Time{}
	}
	sh.seen[key] = expiresAt.UTC()
	return nil
}

// sweep removes the records expired at now and counts them.
func (a *assertionIDs) sweep(now time.Time) int {
	n := 0
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.Lock()
		for k, until := range sh.seen {
			if expired(now, until) {
				delete(sh.seen, k)
				n++
			}
		}
		sh.mu.Unlock()
	}
	return n
}

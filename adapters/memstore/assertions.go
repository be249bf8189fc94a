package memstore

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
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

// live lists the records unexpired at now, in key order, for an export.
// Every shard is locked at once, so that the list is one snapshot.
func (a *assertionIDs) live(now time.Time) []ports.UsedAssertion {
	a.lockAll()
	defer a.unlockAll()
	var out []ports.UsedAssertion
	for i := range a.shards {
		for k, until := range a.shards[i].seen {
			if !expired(now, until) {
				out = append(out, ports.UsedAssertion{Key: k, ExpiresAt: until})
			}
		}
	}
	slices.SortFunc(out, func(x, y ports.UsedAssertion) int { return strings.Compare(x.Key, y.Key) })
	return out
}

// len counts the records, expired or not.
func (a *assertionIDs) len() int {
	a.lockAll()
	defer a.unlockAll()
	n := 0
	for i := range a.shards {
		n += len(a.shards[i].seen)
	}
	return n
}

// put stores an imported record as it is.
func (a *assertionIDs) put(u ports.UsedAssertion) {
	sh := a.shard(u.Key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.seen == nil {
		sh.seen = map[string]time.Time{}
	}
	sh.seen[u.Key] = u.ExpiresAt.UTC()
}

// lockAll locks every shard, in index order: nothing else holds two at
// once, so this cannot deadlock.
func (a *assertionIDs) lockAll() {
	for i := range a.shards {
		a.shards[i].mu.Lock()
	}
}

func (a *assertionIDs) unlockAll() {
	for i := range a.shards {
		a.shards[i].mu.Unlock()
	}
}

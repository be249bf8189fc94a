package tokens_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/memstore"
	"github.com/oidcproxy/oidcproxy/adapters/tokens"
	"github.com/oidcproxy/oidcproxy/domain"
)

func jwksKeyIDs(t *testing.T, e *env) []string {
	t.Helper()
	doc, err := e.issuer.JWKS(t.Context())
	require.NoError(t, err)
	var set jose.JSONWebKeySet
	require.NoError(t, json.Unmarshal(doc, &set))
	ids := make([]string, 0, len(set.Keys))
	for _, k := range set.Keys {
		ids = append(ids, k.KeyID)
	}
	return ids
}

func TestRotateSignsWithANewKeyAndKeepsTheOldOneVerifying(t *testing.T) {
	e := newEnv(t)
	oldKID := e.issuer.ActiveKeyID()
	oldToken, err := e.issuer.Issue(t.Context(), sampleToken(e.clock.Now()))
	require.NoError(t, err)

	e.clock.Advance(time.Minute)
	rotatedAt := e.clock.Now()
	next, err := e.issuer.Rotate(t.Context(), time.Hour)
	require.NoError(t, err)
	require.NotEqual(t, oldKID, next.ID)
	require.Equal(t, next.ID, e.issuer.ActiveKeyID())
	require.True(t, next.CreatedAt.Equal(rotatedAt))

	newToken, err := e.issuer.Issue(t.Context(), sampleToken(e.clock.Now()))
	require.NoError(t, err)
	got, err := e.issuer.Verify(t.Context(), newToken)
	require.NoError(t, err)
	require.Equal(t, next.ID, got.KeyID)

	got, err = e.issuer.Verify(t.Context(), oldToken)
	require.NoError(t, err, "tokens signed before the rotation stay valid")
	require.Equal(t, oldKID, got.KeyID)
	require.ElementsMatch(t, []string{oldKID, next.ID}, jwksKeyIDs(t, e))

	for _, k := range e.storedKeys(t) {
		if k.ID == oldKID {
			require.True(t, k.NotAfter.Equal(rotatedAt))
			require.True(t, k.RemoveAfter.Equal(rotatedAt.Add(time.Hour)))
		} else {
			require.True(t, k.NotAfter.IsZero())
			require.True(t, k.RemoveAfter.IsZero())
		}
	}

	require.Equal(t, next.ID, e.open(t).ActiveKeyID(), "a restart keeps signing with the new key")
}

func TestPruneRemovesARetiredKeyOnlyAfterRemoveAfter(t *testing.T) {
	e := newEnv(t)
	oldKID := e.issuer.ActiveKeyID()
	oldToken, err := e.issuer.Issue(t.Context(), sampleToken(e.clock.Now()))
	require.NoError(t, err)
	next, err := e.issuer.Rotate(t.Context(), time.Hour)
	require.NoError(t, err)

	e.clock.Advance(time.Hour - time.Second)
	n, err := e.issuer.Prune(t.Context())
	require.NoError(t, err)
	require.Zero(t, n)
	require.Len(t, e.storedKeys(t), 2)
	_, err = e.issuer.Verify(t.Context(), oldToken)
	require.NoError(t, err)

	e.clock.Advance(time.Second)
	n, err = e.issuer.Prune(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, n)
	stored := e.storedKeys(t)
	require.Len(t, stored, 1)
	require.Equal(t, next.ID, stored[0].ID)
	require.Equal(t, []string{next.ID}, jwksKeyIDs(t, e))
	_, err = e.issuer.Verify(t.Context(), oldToken)
	require.ErrorContains(t, err, "unknown key id")
	require.NotEqual(t, oldKID, e.issuer.ActiveKeyID())

	n, err = e.issuer.Prune(t.Context())
	require.NoError(t, err)
	require.Zero(t, n, "pruning twice removes nothing more")
}

func TestKeysPastRemoveAfterLeaveJWKSOnReloadEvenBeforePrune(t *testing.T) {
	e := newEnv(t)
	oldKID := e.issuer.ActiveKeyID()
	_, err := e.issuer.Rotate(t.Context(), time.Hour)
	require.NoError(t, err)
	require.Contains(t, jwksKeyIDs(t, e), oldKID)

	e.clock.Advance(time.Hour)
	require.NoError(t, e.issuer.Reload(t.Context()))
	require.NotContains(t, jwksKeyIDs(t, e), oldKID)
	require.Len(t, e.storedKeys(t), 2, "the record stays until Prune")
}

func TestReloadPicksUpARotationMadeByAnotherProcess(t *testing.T) {
	e := newEnv(t)
	admin := e.open(t) // `oidcproxy keys rotate` runs as its own process
	e.clock.Advance(time.Minute)
	next, err := admin.Rotate(t.Context(), time.Hour)
	require.NoError(t, err)
	require.NotEqual(t, next.ID, e.issuer.ActiveKeyID(), "the server reads the store only when it reloads")

	require.NoError(t, e.issuer.Reload(t.Context()))
	require.Equal(t, next.ID, e.issuer.ActiveKeyID())
	require.Contains(t, jwksKeyIDs(t, e), next.ID)
}

// countingKeys is the real store, counting the key-ring reads.
type countingKeys struct {
	*memstore.Store
	lists atomic.Int64
}

func (c *countingKeys) ListKeys(ctx context.Context) ([]domain.SigningKey, error) {
	c.lists.Add(1)
	return c.Store.ListKeys(ctx)
}

// Another instance sharing the store may sign with a key it has just
// made active before this one hears of the rotation: a token with an
// unknown key id makes Verify reload the ring once, but never more than
// once a second, whatever key ids are presented.
func TestVerifyReloadsTheRingForAnUnknownKeyIDAtMostOnceASecond(t *testing.T) {
	e := newEnv(t)
	keys := &countingKeys{Store: e.store}
	server, err := tokens.Open(t.Context(), keys, e.sealer, e.clock)
	require.NoError(t, err)
	other := e.open(t)
	e.clock.Advance(time.Minute)
	next, err := other.Rotate(t.Context(), time.Hour)
	require.NoError(t, err)
	token, err := other.Issue(t.Context(), sampleToken(e.clock.Now()))
	require.NoError(t, err)

	before := keys.lists.Load()
	got, err := server.Verify(t.Context(), token)
	require.NoError(t, err, "the token of the new key verifies at once")
	require.Equal(t, next.ID, got.KeyID)
	require.Equal(t, next.ID, server.ActiveKeyID())
	require.Equal(t, before+1, keys.lists.Load(), "one reload")

	foreign, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	forged := sign(t, jose.ES256, foreign, "made-up-kid", "at+jwt", sampleClaims(e.clock.Now()))
	e.clock.Advance(time.Second)
	for range 20 {
		_, err = server.Verify(t.Context(), forged)
		require.ErrorContains(t, err, "unknown key id")
	}
	require.Equal(t, before+2, keys.lists.Load(), "twenty unknown key ids within a second: one reload")

	e.clock.Advance(time.Second)
	_, err = server.Verify(t.Context(), forged)
	require.ErrorContains(t, err, "unknown key id")
	require.Equal(t, before+3, keys.lists.Load(), "a second later, one more")
}

func TestRotateRejectsANonPositiveTTL(t *testing.T) {
	e := newEnv(t)
	for _, ttl := range []time.Duration{0, -time.Hour} {
		_, err := e.issuer.Rotate(t.Context(), ttl)
		require.Error(t, err)
	}
	require.Len(t, e.storedKeys(t), 1)
}

func TestOpenGeneratesAKeyWhenEveryStoredKeyIsRetired(t *testing.T) {
	e := newEnv(t)
	k := e.storedKeys(t)[0]
	k.NotAfter = e.clock.Now()
	k.RemoveAfter = e.clock.Now().Add(time.Hour)
	require.NoError(t, e.store.PutKey(t.Context(), k))

	e.clock.Advance(time.Second)
	again := e.open(t)
	require.NotEqual(t, k.ID, again.ActiveKeyID())
	require.Len(t, e.storedKeys(t), 2)
}

func TestIssueVerifyAndRotateAreSafeForConcurrentUse(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 4 {
		wg.Go(func() {
			for range 50 {
				token, err := e.issuer.Issue(t.Context(), sampleToken(e.clock.Now()))
				if err == nil {
					_, err = e.issuer.Verify(t.Context(), token)
				}
				if err == nil {
					_, err = e.issuer.JWKS(t.Context())
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 5 {
			if _, err := e.issuer.Rotate(t.Context(), time.Hour); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, e.storedKeys(t), 6)
}

package storetest

import (
	"bytes"
	"context"
	"errors"
	"iter"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// CopyStore is a store that can be copied: what `oidcproxy store copy`
// needs of a source and a destination.
type CopyStore interface {
	ports.Store
	ports.Exporter
	ports.Importer
}

// FillTime is the time at which Fill's live records are live and its
// expired ones expired: export at FillTime.
var FillTime = base.Add(time.Minute)

// Fill stores one record of every kind and every shape a copy must carry,
// through the store's own ports, as the service would have written them:
// clients with every field set and with none, the active and a retired
// signing key, authorizations in progress, a grant whose code was redeemed
// and whose refresh tokens were rotated, retried (a withdrawn successor)
// and rotated again, a grant with a fresh code, a grant whose code was
// redeemed without a refresh token, a grant with nothing optional; used
// assertion ids (filledAssertions); and records that have expired by
// FillTime, which an export leaves out. Ids are chosen so that byte order
// and a locale's order differ ("B…" before "a…").
//
// With a sealer, the grants' upstream tokens and the keys' private halves
// are sealed as the service seals them (associated data: the grant id, the
// key id), so that a copy can check its encryption key against them; nil
// leaves placeholder bytes.
func Fill(t *testing.T, s ports.Store, sealer ports.Sealer) {
	t.Helper()
	ctx := t.Context()
	sealed := func(plain, owner string) []byte {
		if sealer == nil {
			return []byte("sealed-" + plain)
		}
		out, err := sealer.Seal([]byte(plain), []byte(owner))
		require.NoError(t, err)
		return out
	}

	require.NoError(t, s.CreateClient(ctx, fullClient("a-client")))
	require.NoError(t, s.CreateClient(ctx, domain.Client{ID: "B-client", TokenEndpointAuthMethod: domain.AuthNone, CreatedAt: base}))

	active := fullKey("a-key", base)
	active.NotAfter, active.RemoveAfter = time.Time{}, time.Time{}
	active.SealedPrivate = sealed("private a-key", active.ID)
	retired := fullKey("B-key", base.Add(-48*time.Hour))
	retired.SealedPrivate = sealed("private B-key", retired.ID)
	for _, k := range []domain.SigningKey{active, retired} {
		require.NoError(t, s.PutKey(ctx, k))
	}

	require.NoError(t, s.CreateTransaction(ctx, fullTransaction("a-tx")))
	require.NoError(t, s.CreateTransaction(ctx, domain.Transaction{ID: "B-tx", CreatedAt: base, ExpiresAt: base.Add(domain.TransactionTTL)}))
	gone := fullTransaction("expired-tx")
	gone.ExpiresAt = FillTime
	require.NoError(t, s.CreateTransaction(ctx, gone))

	grant := func(id string) domain.Grant {
		g := fullGrant(id)
		g.SealedUpstream = sealed("upstream "+id, id)
		return g
	}
	// g-chain: redeemed, then rt-1 → rt-2, a retry of rt-1 → rt-3 (rt-2
	// withdrawn), rt-3 → rt-4.
	seedToken(t, s, grant("g-chain"), liveToken("rt-1", "g-chain"))
	use := within("g-chain", time.Hour)
	for i, step := range []struct{ presented, next string }{{"rt-1", "rt-2"}, {"rt-1", "rt-3"}, {"rt-3", "rt-4"}} {
		_, _, err := s.RotateRefreshToken(ctx, step.presented, base.Add(time.Duration(i+1)*time.Second), use, domain.RotateFunc(successor(step.next)))
		require.NoError(t, err)
	}
	// g-fresh: a code not yet redeemed.
	seedGrant(t, s, grant("g-fresh"))
	// g-redeemed: a code redeemed without a refresh token (its client may
	// not refresh). A burned code leaves nothing to copy: its grant goes.
	redeemed := seedGrant(t, s, grant("g-redeemed"))
	_, _, err := s.RedeemCode(ctx, redeemed.Hash, base, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: func(domain.AuthorizationCode, domain.Grant) (*domain.RefreshToken, error) {
		return nil, nil
	}})

	require.NoError(t, err)
	// G-bare: nothing optional set; its code's expiry passed, its grant lives.
	bare := domain.Grant{ID: "G-bare", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
	bareCode := domain.AuthorizationCode{Hash: "code-G-bare", GrantID: bare.ID, IssuedAt: base, ExpiresAt: FillTime}
	require.NoError(t, s.CreateGrant(ctx, bare, bareCode))
	// g-expired: a grant past its expiry, with its redeemed code and token.
	old := grant("g-expired")
	old.ExpiresAt = FillTime.Add(-time.Nanosecond)
	seedToken(t, s, old, liveToken("rt-of-expired-grant", "g-expired"))
	// An expired refresh token of a live grant.
	short := grant("g-short")
	shortToken := liveToken("rt-expired", "g-short")
	shortToken.ExpiresAt = FillTime
	seedToken(t, s, short, shortToken)

	for _, a := range filledAssertions {
		require.NoError(t, s.ConsumeAssertionID(ctx, a.issuer, a.jti, base, a.expiresAt))
	}
}

// filledAssertions are the assertions Fill uses: two whose ids are live at
// FillTime (a client assertion and an ID-JAG with the same jti), and one
// whose id expires at FillTime, which an export leaves out.
var filledAssertions = []struct {
	issuer, jti string
	expiresAt   time.Time
	live        bool
}{
	{"https://client.example/metadata.json", "jti-1", base.Add(5 * time.Minute), true},
	{"https://idp.example", "jti-1", base.Add(3 * time.Minute), true},
	{"https://client.example/metadata.json", "jti-expired", FillTime, false},
}

// liveAssertionKeys are the keys of filledAssertions live at FillTime, in
// byte order.
func liveAssertionKeys() []string {
	var keys []string
	for _, a := range filledAssertions {
		if a.live {
			keys = append(keys, domain.AssertionReplayKey(a.issuer, a.jti))
		}
	}
	slices.Sort(keys)
	return keys
}

// RequireCopiedAssertionsRefused checks, at FillTime, that s — a copy of a
// store Fill filled, taken at FillTime — refuses again every assertion
// whose id was live in the source, as the source would: single use holds
// across the copy. The assertion whose id had expired is accepted, as the
// source would accept it (and so s is changed).
func RequireCopiedAssertionsRefused(t testing.TB, s ports.AssertionStore) {
	t.Helper()
	for _, a := range filledAssertions {
		err := s.ConsumeAssertionID(t.Context(), a.issuer, a.jti, FillTime, FillTime.Add(5*time.Minute))
		if a.live {
			require.ErrorIs(t, err, domain.ErrAlreadyConsumed, "the copied id of %s from %s", a.jti, a.issuer)
		} else {
			require.NoError(t, err, "an expired id was not copied, and guards nothing")
		}
	}
}

// filledKeys are the keys Fill's live records have at FillTime, by kind, in
// export order.
var filledKeys = map[ports.RecordKind][]string{
	ports.KindClient:       {"B-client", "a-client"},
	ports.KindSigningKey:   {"B-key", "a-key"},
	ports.KindTransaction:  {"B-tx", "a-tx"},
	ports.KindGrant:        {"G-bare", "g-chain", "g-fresh", "g-redeemed", "g-short"},
	ports.KindCode:         {"code-g-chain", "code-g-fresh", "code-g-redeemed", "code-g-short"},
	ports.KindRefreshToken: {"rt-1", "rt-2", "rt-3", "rt-4"},
	// Hashes: their order is whatever their bytes say.
	ports.KindUsedAssertion: liveAssertionKeys(),
}

// Exported collects everything e exports at now, failing t on an error.
func Exported(t testing.TB, e ports.Exporter, now time.Time) []ports.Record {
	t.Helper()
	var out []ports.Record
	for r, err := range e.Export(t.Context(), now) {
		require.NoError(t, err)
		out = append(out, r)
	}
	return out
}

// keysByKind lists the records' keys by kind, in the order given.
func keysByKind(records []ports.Record) map[ports.RecordKind][]string {
	out := map[ports.RecordKind][]string{}
	for _, r := range records {
		out[r.Kind()] = append(out[r.Kind()], r.Key())
	}
	return out
}

// sequence yields records, then err if it is not nil.
func sequence(records []ports.Record, err error) iter.Seq2[ports.Record, error] {
	return func(yield func(ports.Record, error) bool) {
		for _, r := range records {
			if !yield(r, nil) {
				return
			}
		}
		if err != nil {
			yield(ports.Record{}, err)
		}
	}
}

// RunCopy runs the conformance suite of ports.Exporter and ports.Importer.
// newStore must return a fresh, empty store for every call.
func RunCopy(t *testing.T, newStore func(t *testing.T) CopyStore) {
	t.Helper()
	t.Run("every record survives an export and an import with every field equal", func(t *testing.T) {
		src := newStore(t)
		Fill(t, src, nil)
		records := Exported(t, src, FillTime)
		for _, r := range records {
			switch r.Key() {
			case "a-client":
				requireEveryFieldSet(t, *r.Client)
			case "a-tx":
				requireEveryFieldSet(t, *r.Transaction)
			case "g-chain":
				requireEveryFieldSet(t, *r.Grant)
			case "B-key":
				requireEveryFieldSet(t, *r.SigningKey)
			case "code-g-chain":
				requireEveryFieldSet(t, *r.Code)
			case "rt-1":
				requireEveryFieldSet(t, *r.RefreshToken)
			}
			if r.UsedAssertion != nil {
				requireEveryFieldSet(t, *r.UsedAssertion)
			}
		}

		dst := newStore(t)
		counts, err := dst.Import(t.Context(), sequence(records, nil))
		require.NoError(t, err)
		want := ports.RecordCounts{}
		for kind, keys := range filledKeys {
			want[kind] = len(keys)
		}
		require.Equal(t, want, counts)
		require.Equal(t, records, Exported(t, dst, FillTime), "the copy exports exactly what the original did")

		// And the ports read the copy as they read the original.
		for _, id := range filledKeys[ports.KindClient] {
			a, err := src.GetClient(t.Context(), id)
			require.NoError(t, err)
			b, err := dst.GetClient(t.Context(), id)
			require.NoError(t, err)
			require.Equal(t, a, b)
		}
		for _, id := range filledKeys[ports.KindGrant] {
			a, err := src.GetGrant(t.Context(), id, FillTime)
			require.NoError(t, err)
			b, err := dst.GetGrant(t.Context(), id, FillTime)
			require.NoError(t, err)
			require.Equal(t, a, b)
		}
		for _, hash := range filledKeys[ports.KindRefreshToken] {
			a, err := src.GetRefreshToken(t.Context(), hash, FillTime)
			require.NoError(t, err)
			b, err := dst.GetRefreshToken(t.Context(), hash, FillTime)
			require.NoError(t, err)
			require.Equal(t, a, b)
		}
		srcKeys, err := src.ListKeys(t.Context())
		require.NoError(t, err)
		dstKeys, err := dst.ListKeys(t.Context())
		require.NoError(t, err)
		require.Equal(t, srcKeys, dstKeys)
	})

	t.Run("the copy keeps single use, reuse detection and the retry window", func(t *testing.T) {
		src := newStore(t)
		Fill(t, src, nil)
		dst := newStore(t)
		_, err := dst.Import(t.Context(), src.Export(t.Context(), FillTime))
		require.NoError(t, err)
		ctx, now := t.Context(), FillTime

		_, _, err = dst.RedeemCode(ctx, "code-g-chain", now, domain.CodeUseFuncs{CheckFunc: stranger, IssueFunc: noIssue(t)})
		require.ErrorIs(t, err, domain.ErrAlreadyConsumed, "a redeemed code stays redeemed")
		_, _, err = dst.RedeemCode(ctx, "code-g-redeemed", now, domain.CodeUseFuncs{CheckFunc: stranger, IssueFunc: noIssue(t)})
		require.ErrorIs(t, err, domain.ErrAlreadyConsumed, "a code redeemed without a refresh token stays redeemed")
		_, _, err = dst.RedeemCode(ctx, "code-G-bare", now, domain.CodeUseFuncs{CheckFunc: stranger, IssueFunc: noIssue(t)})
		require.ErrorIs(t, err, domain.ErrNotFound, "an expired code is not copied")
		code, _, err := dst.RedeemCode(ctx, "code-g-fresh", now, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: func(c domain.AuthorizationCode, g domain.Grant) (*domain.RefreshToken, error) {
			return nil, nil
		}})

		require.NoError(t, err, "a fresh code can be redeemed once")
		require.Equal(t, now, code.RedeemedAt)

		// rt-4 is the live end of g-chain's chain: it rotates.
		_, decision, err := dst.RotateRefreshToken(ctx, "rt-4", now, within("g-chain", 0), domain.RotateFunc(successor("rt-5")))
		require.NoError(t, err)
		require.Equal(t, domain.RefreshRotate, decision)
		// The withdrawn rt-2 is reuse: the grant goes, with everything on it.
		_, decision, err = dst.RotateRefreshToken(ctx, "rt-2", now, within("g-chain", time.Hour), domain.RotateFunc(discarded(t, dst)))
		require.ErrorIs(t, err, domain.ErrAlreadyConsumed)
		require.Equal(t, domain.RefreshRevoke, decision)
		_, err = dst.GetGrant(ctx, "g-chain", now)
		require.ErrorIs(t, err, domain.ErrNotFound)
		_, err = dst.GetRefreshToken(ctx, "rt-5", now)
		require.ErrorIs(t, err, domain.ErrNotFound)

		// The assertions used on the source are used on the copy: their
		// replays are refused there too.
		RequireCopiedAssertionsRefused(t, dst)
		// And their ids are swept once expired, like the store's own (an
		// export as of before they expired still sees every stored one).
		require.Len(t, keysByKind(Exported(t, dst, base))[ports.KindUsedAssertion], len(filledAssertions))
		_, err = dst.Sweep(ctx, base.Add(time.Hour))
		require.NoError(t, err)
		require.Empty(t, keysByKind(Exported(t, dst, base))[ports.KindUsedAssertion])

		// None of it touched the source.
		_, err = src.GetRefreshToken(ctx, "rt-4", now)
		require.NoError(t, err)
	})

	t.Run("an export leaves out what has expired and comes in kind and byte order", func(t *testing.T) {
		s := newStore(t)
		Fill(t, s, nil)
		records := Exported(t, s, FillTime)
		require.Equal(t, filledKeys, keysByKind(records))
		kinds := make([]ports.RecordKind, len(records))
		for i, r := range records {
			kinds[i] = r.Kind()
		}
		require.True(t, slices.IsSorted(kinds), "kinds in export order: %v", kinds)
		for _, keys := range keysByKind(records) {
			require.True(t, slices.IsSortedFunc(keys, func(a, b string) int { return bytes.Compare([]byte(a), []byte(b)) }), "%v in byte order", keys)
		}
		// Later, more has expired.
		later := keysByKind(Exported(t, s, base.Add(2*time.Hour)))
		require.NotContains(t, later[ports.KindGrant], "G-bare")
		require.Empty(t, later[ports.KindTransaction])
		require.Empty(t, later[ports.KindUsedAssertion])
	})

	t.Run("an empty store exports nothing and imports into another", func(t *testing.T) {
		src, dst := newStore(t), newStore(t)
		require.Empty(t, Exported(t, src, FillTime))
		counts, err := dst.Import(t.Context(), src.Export(t.Context(), FillTime))
		require.NoError(t, err)
		require.Zero(t, counts.Total())
	})

	t.Run("an import refuses a store that holds anything, before reading a record", func(t *testing.T) {
		src := newStore(t)
		Fill(t, src, nil)
		records := Exported(t, src, FillTime)
		for name, seed := range map[string]func(s ports.Store) error{
			"a signing key": func(s ports.Store) error { return s.PutKey(t.Context(), fullKey("k", base)) },
			"a used assertion id": func(s ports.Store) error {
				return s.ConsumeAssertionID(t.Context(), "https://client.example", "jti", base, base.Add(time.Minute))
			},
			"an expired authorization": func(s ports.Store) error {
				tx := fullTransaction("tx")
				tx.ExpiresAt = base
				return s.CreateTransaction(t.Context(), tx)
			},
		} {
			t.Run(name, func(t *testing.T) {
				dst := newStore(t)
				require.NoError(t, seed(dst))
				before := Exported(t, dst, base.Add(-time.Hour))
				read := false
				_, err := dst.Import(t.Context(), func(yield func(ports.Record, error) bool) {
					read = true
					for _, r := range records {
						if !yield(r, nil) {
							return
						}
					}
				})
				require.ErrorIs(t, err, ports.ErrStoreNotEmpty)
				var notEmpty *ports.NotEmptyError
				require.ErrorAs(t, err, &notEmpty)
				require.Equal(t, 1, notEmpty.Holds.Total(), "it says what the store holds")
				require.False(t, read, "refused before reading")
				require.Equal(t, before, Exported(t, dst, base.Add(-time.Hour)), "and nothing changed")
			})
		}
	})

	t.Run("a refused sequence stores nothing", func(t *testing.T) {
		src := newStore(t)
		Fill(t, src, nil)
		records := Exported(t, src, FillTime)
		require.Greater(t, len(records), 10)
		var codeIdx, grantIdx int
		for i, r := range records {
			switch r.Key() {
			case "code-g-fresh":
				codeIdx = i
			case "g-fresh":
				grantIdx = i
			}
		}
		withoutGrant := slices.Delete(slices.Clone(records), grantIdx, grantIdx+1)
		dup := slices.Insert(slices.Clone(records), 1, records[0])
		malformed := slices.Clone(records)
		malformed[codeIdx].RefreshToken = &domain.RefreshToken{Hash: "both"}
		emptyKey := slices.Clone(records)
		c := *records[0].Client
		c.ID = ""
		emptyKey[0] = ports.Record{Client: &c}
		for name, tc := range map[string]struct {
			seq  iter.Seq2[ports.Record, error]
			want error
		}{
			"an error from the source after some records": {sequence(records[:len(records)-1], errSentinel), errSentinel},
			"a code whose grant is not in the sequence":   {sequence(withoutGrant, nil), nil},
			"a key twice":                 {sequence(dup, nil), domain.ErrAlreadyExists},
			"a record holding two values": {sequence(malformed, nil), nil},
			"a record with an empty key":  {sequence(emptyKey, nil), nil},
		} {
			t.Run(name, func(t *testing.T) {
				dst := newStore(t)
				_, err := dst.Import(t.Context(), tc.seq)
				require.Error(t, err)
				if tc.want != nil {
					require.ErrorIs(t, err, tc.want)
				}
				require.Empty(t, Exported(t, dst, base.Add(-time.Hour)), "nothing was stored")
				// The store is still empty, and usable.
				_, err = dst.Import(t.Context(), sequence(records, nil))
				require.NoError(t, err)
			})
		}
	})

	t.Run("an export is one snapshot, and stopping it early releases it", func(t *testing.T) {
		s := newStore(t)
		Fill(t, s, nil)
		for range 30 {
			for _, err := range s.Export(t.Context(), FillTime) {
				require.NoError(t, err)
				break
			}
		}
		var (
			seen  []string
			wrote sync.WaitGroup
		)
		for r, err := range s.Export(t.Context(), FillTime) {
			require.NoError(t, err)
			if len(seen) == 0 {
				// A write while the export is under way, from elsewhere
				// (bbolt cannot write from the goroutine that reads).
				wrote.Go(func() {
					c := fullClient("zz-client-added-during-the-export")
					if err := s.CreateClient(t.Context(), c); err != nil {
						t.Errorf("create client during an export: %v", err)
					}
				})
				done := make(chan struct{})
				go func() { wrote.Wait(); close(done) }()
				select {
				case <-done:
				case <-time.After(300 * time.Millisecond):
				}
			}
			seen = append(seen, r.Key())
		}
		wrote.Wait()
		require.NotContains(t, seen, "zz-client-added-during-the-export")
		require.Len(t, seen, len(Exported(t, s, FillTime))-1, "the next export has it")
	})

	t.Run("a cancelled context ends an export with its error", func(t *testing.T) {
		s := newStore(t)
		Fill(t, s, nil)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var last error
		n := 0
		for _, err := range s.Export(ctx, FillTime) {
			n++
			if n == 2 {
				cancel()
			}
			last = err
		}
		require.True(t, errors.Is(last, context.Canceled), "the export ends with the cancellation: %v", last)
	})
}

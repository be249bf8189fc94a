package storetest

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// racers is how many goroutines fight over one single-use record.
const racers = 32

// base is the suite's "now". Nanoseconds are set so that a backend that
// truncates time precision fails the round trips.
var base = time.Date(2026, 1, 1, 12, 0, 0, 123456789, time.UTC)

// Run runs the whole conformance suite. newStore must return a fresh, empty
// store for every call; it is called once per subtest with that subtest's t,
// so it can use t.TempDir and t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) ports.Store) {
	t.Helper()
	t.Run("Clients", func(t *testing.T) { testClients(t, newStore) })
	t.Run("Registration", func(t *testing.T) { testRegistration(t, newStore) })
	t.Run("Transactions", func(t *testing.T) { testTransactions(t, newStore) })
	t.Run("Grants", func(t *testing.T) { testGrants(t, newStore) })
	t.Run("DirectGrants", func(t *testing.T) { testDirectGrants(t, newStore) })
	t.Run("Assertions", func(t *testing.T) { testAssertions(t, newStore) })
	t.Run("Codes", func(t *testing.T) { testCodes(t, newStore) })
	t.Run("Redemptions", func(t *testing.T) { testRedemptions(t, newStore) })
	t.Run("RefreshTokens", func(t *testing.T) { testRefreshTokens(t, newStore) })
	t.Run("RefreshRetries", func(t *testing.T) { testRefreshRetries(t, newStore) })
	t.Run("Rotations", func(t *testing.T) { testRotations(t, newStore) })
	t.Run("Keys", func(t *testing.T) { testKeys(t, newStore) })
	t.Run("Expiry", func(t *testing.T) { testExpiry(t, newStore) })
	t.Run("Sweep", func(t *testing.T) { testSweep(t, newStore) })
	t.Run("Copies", func(t *testing.T) { testCopies(t, newStore) })
	t.Run("Context", func(t *testing.T) { testContext(t, newStore) })
	t.Run("ClientAdmin", func(t *testing.T) { testClientAdmin(t, newStore) })
	t.Run("GrantAdmin", func(t *testing.T) { testGrantAdmin(t, newStore) })
}

// errSentinel stands for a caller's callback error; stores must return it
// so that errors.Is finds it.
var errSentinel = errors.New("callback refused")

// fullClient returns a client with every field set.
func fullClient(id string) domain.Client {
	return domain.Client{
		ID:                      id,
		SecretHash:              []byte("secret-hash-" + id),
		Name:                    "Client " + id,
		RedirectURIs:            []string{"http://127.0.0.1/callback", "https://app.example.com/cb"},
		ApplicationType:         domain.ApplicationWeb,
		TokenEndpointAuthMethod: domain.AuthClientSecretBasic,
		GrantTypes:              []string{domain.GrantAuthorizationCode, domain.GrantRefreshToken},
		ResponseTypes:           []string{domain.ResponseTypeCode},
		Scope:                   "openid email",
		ClientURI:               "https://app.example.com",
		LogoURI:                 "https://app.example.com/logo.png",
		Contacts:                []string{"ops@example.com"},
		SoftwareID:              "software-" + id,
		SoftwareVersion:         "1.2.3",
		JWKS:                    []byte(`{"keys":[]}`),
		JWKSURI:                 "https://app.example.com/jwks.json",
		Operator:                true,
		CreatedAt:               base,
		FirstGrantAt:            base.Add(time.Minute),
	}
}

// fullTransaction returns a transaction with every field set, valid for ten
// minutes from base.
func fullTransaction(id string) domain.Transaction {
	return domain.Transaction{
		ID:               id,
		ClientID:         "client-" + id,
		RedirectURI:      "http://127.0.0.1:5555/callback",
		State:            "client-state-" + id,
		CodeChallenge:    "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		Scopes:           []string{"openid", "email"},
		Resource:         "https://mcp.example.com/mcp",
		UpstreamVerifier: "upstream-verifier-" + id,
		Nonce:            "nonce-" + id,
		CSRFHash:         "csrf-" + id,
		Approved:         true,
		BindingHash:      "binding-" + id,
		CreatedAt:        base,
		ExpiresAt:        base.Add(domain.TransactionTTL),
	}
}

// fullGrant returns a grant with every field set, valid for a day from base.
func fullGrant(id string) domain.Grant {
	return domain.Grant{
		ID:       id,
		ClientID: "client-" + id,
		Subject:  "subject-" + id,
		Identity: domain.Identity{
			Subject:       "subject-" + id,
			Issuer:        "https://idp.example.com",
			Email:         "user@example.com",
			EmailVerified: true,
			Name:          "A User",
			Claims: map[string]any{
				"groups": []any{"admins", "ops"},
				"locale": "en",
				"level":  2.5,
				"active": true,
				"org":    map[string]any{"id": "org-1", "tags": []any{"a"}},
			},
		},
		Scopes:             []string{"openid", "email", "offline_access"},
		Resource:           "https://mcp.example.com/mcp",
		SealedUpstream:     []byte("sealed-upstream-" + id),
		UpstreamExpiry:     base.Add(time.Hour),
		HasUpstreamRefresh: true,
		Machine:            true,
		CreatedAt:          base,
		LastUsedAt:         base.Add(30 * time.Minute),
		ExpiresAt:          base.Add(24 * time.Hour),
	}
}

// freshCode returns an unredeemed code of grantID, valid for CodeTTL.
func freshCode(hash, grantID string) domain.AuthorizationCode {
	return domain.AuthorizationCode{
		Hash:          hash,
		ClientID:      "client-" + grantID,
		RedirectURI:   "http://127.0.0.1:5555/callback",
		CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		GrantID:       grantID,
		Scopes:        []string{"openid", "email"},
		Resource:      "https://mcp.example.com/mcp",
		IssuedAt:      base,
		ExpiresAt:     base.Add(domain.CodeTTL),
	}
}

// liveToken returns a live (not rotated) refresh token of grantID, valid
// for twelve hours.
func liveToken(hash, grantID string) domain.RefreshToken {
	return domain.RefreshToken{
		Hash:      hash,
		GrantID:   grantID,
		ClientID:  "client-" + grantID,
		Scopes:    []string{"openid", "offline_access"},
		IssuedAt:  base,
		ExpiresAt: base.Add(12 * time.Hour),
	}
}

// fullKey returns a signing key with every field set.
func fullKey(id string, created time.Time) domain.SigningKey {
	return domain.SigningKey{
		ID:            id,
		Algorithm:     "ES256",
		SealedPrivate: []byte("sealed-private-" + id),
		PublicJWK:     []byte(`{"kty":"EC","kid":"` + id + `"}`),
		CreatedAt:     created,
		NotAfter:      created.Add(30 * 24 * time.Hour),
		RemoveAfter:   created.Add(31 * 24 * time.Hour),
	}
}

// requireEveryFieldSet fails when a fixture leaves an exported field at its
// zero value, so that a field added to a domain type later cannot slip
// through the round-trip tests untested.
func requireEveryFieldSet(t *testing.T, v any) {
	t.Helper()
	var walk func(path string, rv reflect.Value)
	walk = func(path string, rv reflect.Value) {
		for i := range rv.NumField() {
			f := rv.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			fv := rv.Field(i)
			name := path + "." + f.Name
			require.Falsef(t, fv.IsZero(), "fixture leaves %s zero: fill every field so the round trip covers it", name)
			if fv.Kind() == reflect.Struct && fv.Type() != reflect.TypeFor[time.Time]() {
				walk(name, fv)
			}
		}
	}
	rv := reflect.ValueOf(v)
	walk(rv.Type().Name(), rv)
}

// race runs fn on n goroutines released at once and returns their errors
// by goroutine index.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// winners returns the indexes of the nil errors.
func winners(errs []error) []int {
	var out []int
	for i, err := range errs {
		if err == nil {
			out = append(out, i)
		}
	}
	return out
}

// seedGrant stores g with a fresh code named after it and returns the code.
func seedGrant(t *testing.T, s ports.Store, g domain.Grant) domain.AuthorizationCode {
	t.Helper()
	code := freshCode("code-"+g.ID, g.ID)
	require.NoError(t, s.CreateGrant(t.Context(), g, code))
	return code
}

// seedToken stores g, redeems its code at base and stores rt through issue.
func seedToken(t *testing.T, s ports.Store, g domain.Grant, rt domain.RefreshToken) {
	t.Helper()
	code := seedGrant(t, s, g)
	_, _, err := s.RedeemCode(t.Context(), code.Hash, base, domain.CodeUseFuncs{CheckFunc: rightful, IssueFunc: func(domain.AuthorizationCode, domain.Grant) (*domain.RefreshToken, error) {
		return &rt, nil
	}})

	require.NoError(t, err)
}

// noIssue is an issue callback for calls that must not reach it.
func noIssue(t *testing.T) func(domain.AuthorizationCode, domain.Grant) (*domain.RefreshToken, error) {
	return func(domain.AuthorizationCode, domain.Grant) (*domain.RefreshToken, error) {
		t.Error("issue was called, but the store should have refused before it")
		return nil, errSentinel
	}
}

// rightful is a RedeemCode check that accepts every presenter, as the use
// case accepts one who holds everything the code was issued for: a
// replay it accepts revokes the grant.
func rightful(domain.AuthorizationCode) error { return nil }

// stranger is a RedeemCode check that refuses every presenter, as the use
// case refuses one who holds the code alone: a replay it refuses changes
// nothing, and it burns a code not redeemed yet.
func stranger(domain.AuthorizationCode) error { return errStranger }

// refusesReplays is a RedeemCode check that accepts a code not redeemed
// yet and refuses a replay, so that racers for one code leave the grant in
// place and the winner's redemption can be inspected.
func refusesReplays(c domain.AuthorizationCode) error {
	if c.Redeemed() {
		return errStranger
	}
	return nil
}

// errStranger is stranger's refusal.
var errStranger = errors.New("the presenter does not hold what the code was issued for")

// noRotate is a rotate callback for calls that must not reach it.
func noRotate(t *testing.T) func(domain.RefreshToken, *domain.Grant) (domain.RefreshToken, error) {
	return func(domain.RefreshToken, *domain.Grant) (domain.RefreshToken, error) {
		t.Error("rotate was called, but the store should have refused before it")
		return domain.RefreshToken{}, errSentinel
	}
}

// discarded returns a rotate callback for presentations the store must
// refuse after reading the token (reuse, a foreign client): a store may
// call rotate before it decides (ports.GrantStore allows that, so that a
// SQL store can decide in one statement), but it must not store what
// rotate returned. The check runs when the test ends.
func discarded(t *testing.T, s ports.Store) func(domain.RefreshToken, *domain.Grant) (domain.RefreshToken, error) {
	t.Cleanup(func() {
		_, err := s.GetRefreshToken(context.WithoutCancel(t.Context()), "rt-discarded", base)
		if !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("the token of a refused rotation was stored (GetRefreshToken: %v)", err)
		}
	})
	return func(old domain.RefreshToken, g *domain.Grant) (domain.RefreshToken, error) {
		return liveToken("rt-discarded", g.ID), nil
	}
}

// strict is a presentation by the client that liveToken(_, grantID) was
// issued to, without a retry window.
func strict(grantID string) domain.RefreshUse {
	return domain.RefreshUse{ClientID: "client-" + grantID}
}

// within is that presentation with a retry window of grace.
func within(grantID string, grace time.Duration) domain.RefreshUse {
	return domain.RefreshUse{ClientID: "client-" + grantID, Grace: grace}
}

// successor returns a rotate callback that issues a live token named hash.
func successor(hash string) func(domain.RefreshToken, *domain.Grant) (domain.RefreshToken, error) {
	return func(old domain.RefreshToken, g *domain.Grant) (domain.RefreshToken, error) {
		next := liveToken(hash, g.ID)
		next.IssuedAt = old.IssuedAt.Add(time.Minute)
		return next, nil
	}
}

// noop is an update that changes nothing.
func noop(*domain.Transaction) error { return nil }

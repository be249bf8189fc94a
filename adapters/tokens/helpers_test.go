package tokens_test

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/memstore"
	"github.com/oidcproxy/oidcproxy/adapters/seal"
	"github.com/oidcproxy/oidcproxy/adapters/tokens"
	"github.com/oidcproxy/oidcproxy/domain"
)

// fakeClock is a settable clock, so rotation and pruning can be tested
// without sleeping.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is an issuer together with the real parts behind it.
type env struct {
	store  *memstore.Store
	sealer *seal.Sealer
	clock  *fakeClock
	issuer *tokens.Issuer
}

func newSealer(t testing.TB) *seal.Sealer {
	t.Helper()
	master := make([]byte, seal.KeySize)
	_, err := rand.Read(master)
	require.NoError(t, err)
	key, err := seal.DeriveKey(master, seal.LabelSeal)
	require.NoError(t, err)
	s, err := seal.New(key)
	require.NoError(t, err)
	return s
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{store: memstore.New(), sealer: newSealer(t), clock: newFakeClock()}
	e.issuer = e.open(t)
	return e
}

// open opens another issuer on the same store, as a restart would.
func (e *env) open(t testing.TB) *tokens.Issuer {
	t.Helper()
	iss, err := tokens.Open(t.Context(), e.store, e.sealer, e.clock)
	require.NoError(t, err)
	return iss
}

// storedKeys lists the key ring as the store holds it.
func (e *env) storedKeys(t testing.TB) []domain.SigningKey {
	t.Helper()
	keys, err := e.store.ListKeys(t.Context())
	require.NoError(t, err)
	return keys
}

// activePrivateKey unseals the active key the way only the issuer should,
// so tests can sign tokens that differ from Issue's in one detail.
func (e *env) activePrivateKey(t testing.TB) (*ecdsa.PrivateKey, string) {
	t.Helper()
	kid := e.issuer.ActiveKeyID()
	for _, k := range e.storedKeys(t) {
		if k.ID != kid {
			continue
		}
		der, err := e.sealer.Open(k.SealedPrivate, []byte(k.ID))
		require.NoError(t, err)
		priv, err := x509.ParsePKCS8PrivateKey(der)
		require.NoError(t, err)
		return priv.(*ecdsa.PrivateKey), kid
	}
	t.Fatalf("active key %q is not in the store", kid)
	return nil, ""
}

// sign produces a compact JWS with the given algorithm, key and headers over
// payload (a value marshalled to JSON, or raw bytes).
func sign(t testing.TB, alg jose.SignatureAlgorithm, key any, kid, typ string, payload any) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	require.NoError(t, err)
	raw, ok := payload.([]byte)
	if !ok {
		raw, err = json.Marshal(payload)
		require.NoError(t, err)
	}
	jws, err := signer.Sign(raw)
	require.NoError(t, err)
	token, err := jws.CompactSerialize()
	require.NoError(t, err)
	return token
}

func sampleToken(now time.Time) domain.AccessToken {
	return domain.AccessToken{
		Issuer:    "https://proxy.example.com",
		Subject:   "user-42",
		Audience:  "https://proxy.example.com/mcp",
		ClientID:  "client-7",
		Scopes:    []string{"openid", "profile", "mcp:tools"},
		GrantID:   "grant-99",
		JTI:       "jti-123",
		IssuedAt:  now,
		NotBefore: now,
		ExpiresAt: now.Add(time.Hour),
	}
}

// sampleClaims is sampleToken as a JWT payload, for hand-signed tokens.
func sampleClaims(now time.Time) map[string]any {
	return map[string]any{
		"iss":       "https://proxy.example.com",
		"sub":       "user-42",
		"aud":       "https://proxy.example.com/mcp",
		"client_id": "client-7",
		"scope":     "openid profile mcp:tools",
		"gid":       "grant-99",
		"jti":       "jti-123",
		"iat":       now.Unix(),
		"nbf":       now.Unix(),
		"exp":       now.Add(time.Hour).Unix(),
	}
}

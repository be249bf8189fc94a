package tokens_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/memstore"
	"github.com/oidcproxy/oidcproxy/adapters/tokens"
	"github.com/oidcproxy/oidcproxy/domain"
)

// fixedPrivateKey is a P-256 test key (PKCS#8 DER, base64), fixed so that the
// committed fuzz corpus can hold tokens it signed. It signs nothing outside
// this file.
const fixedPrivateKey = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg0qck8yOe3Ncsrm+TCmkiGBfab1lBCDxyhZEaIVwi7WahRANCAAQQwTUgR1wUvW9+9SEAnle25jKIITBnqZMAfcXZlLIOUEoR45rHKVS6duzVaAjMYs9FH0cBX6+l0MRsfsXYrr/Q"

// fixedToken is fixedClaims signed by fixedPrivateKey; it is also the first
// entry of testdata/fuzz/FuzzVerify.
const fixedToken = "eyJhbGciOiJFUzI1NiIsImtpZCI6IlNxdjFvalZvMXk0MzRIdVQ3bXMtb1Z4SS05NUxvZjBZMEtyN3NqMHk3SFEiLCJ0eXAiOiJhdCtqd3QifQ.eyJpc3MiOiJodHRwczovL3Byb3h5LmV4YW1wbGUuY29tIiwic3ViIjoidXNlci00MiIsImF1ZCI6Imh0dHBzOi8vcHJveHkuZXhhbXBsZS5jb20vbWNwIiwiY2xpZW50X2lkIjoiY2xpZW50LTciLCJzY29wZSI6Im9wZW5pZCBwcm9maWxlIG1jcDp0b29scyIsImV4cCI6MTg5MzU1NzA0NSwiaWF0IjoxODkzNTUzNDQ1LCJuYmYiOjE4OTM1NTM0NDUsImp0aSI6Imp0aS0xMjMiLCJnaWQiOiJncmFudC05OSJ9.rZxdvHsypd_PXnR7Z-yTisQBrA7tAhrD0cUiZ4B7i50Y3PxbqYZqx6drgp7B6CbwQ0BvEf3KSSdJCY7EZ9w71A"

var fixedNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func fixedClaims() domain.AccessToken { return sampleToken(fixedNow) }

// openFixedIssuer returns an issuer whose only key is fixedPrivateKey.
func openFixedIssuer(t testing.TB) *tokens.Issuer {
	t.Helper()
	der, err := base64.StdEncoding.DecodeString(fixedPrivateKey)
	require.NoError(t, err)
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	require.NoError(t, err)
	priv := parsed.(*ecdsa.PrivateKey)

	pub := jose.JSONWebKey{Key: &priv.PublicKey, Algorithm: "ES256", Use: "sig"}
	thumb, err := pub.Thumbprint(crypto.SHA256)
	require.NoError(t, err)
	pub.KeyID = base64.RawURLEncoding.EncodeToString(thumb)
	pubJSON, err := pub.MarshalJSON()
	require.NoError(t, err)
	sealer := newSealer(t)
	sealed, err := sealer.Seal(der, []byte(pub.KeyID))
	require.NoError(t, err)

	store := memstore.New()
	require.NoError(t, store.PutKey(t.Context(), domain.SigningKey{
		ID: pub.KeyID, Algorithm: "ES256", SealedPrivate: sealed, PublicJWK: pubJSON, CreatedAt: fixedNow,
	}))
	clock := &fakeClock{now: fixedNow}
	iss, err := tokens.Open(t.Context(), store, sealer, clock)
	require.NoError(t, err)
	require.Equal(t, pub.KeyID, iss.ActiveKeyID())
	return iss
}

// signedPart is a token without its signature: the bytes the signature
// covers.
func signedPart(token string) string {
	i := strings.LastIndexByte(token, '.')
	if i < 0 {
		return token
	}
	return token[:i]
}

func TestTheCommittedFuzzSeedTokenIsValid(t *testing.T) {
	iss := openFixedIssuer(t)
	got, err := iss.Verify(t.Context(), fixedToken)
	require.NoError(t, err)
	want := fixedClaims()
	want.KeyID = iss.ActiveKeyID()
	require.Equal(t, want.Subject, got.Subject)
	require.True(t, got.ExpiresAt.Equal(want.ExpiresAt))

	seed, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzVerify", "valid"))
	require.NoError(t, err)
	require.Contains(t, string(seed), strconv.Quote(fixedToken))
}

// FuzzVerify checks that Verify never panics and accepts nothing but what
// Issue signed: an accepted token must carry, byte for byte, the header and
// claims of a token Issue produced. (Only the signature may differ: ECDSA
// signatures are randomised, and (r, n-s) verifies like (r, s).)
func FuzzVerify(f *testing.F) {
	iss := openFixedIssuer(f)
	fresh, err := iss.Issue(f.Context(), fixedClaims())
	require.NoError(f, err)
	require.Equal(f, signedPart(fixedToken), signedPart(fresh), "Issue is deterministic up to the signature")
	f.Add(fresh)

	f.Fuzz(func(t *testing.T, token string) {
		got, err := iss.Verify(t.Context(), token)
		if err != nil {
			// Short inputs can occur in error text by coincidence
			// ("token"); a token-sized one must not.
			if len(token) >= 32 {
				require.NotContains(t, err.Error(), token)
			}
			return
		}
		require.Equal(t, signedPart(fixedToken), signedPart(token), "accepted a token Issue did not produce")
		want := fixedClaims()
		require.Equal(t, want.Subject, got.Subject)
		require.Equal(t, want.JTI, got.JTI)
		require.Equal(t, iss.ActiveKeyID(), got.KeyID)
	})
}

package assertion_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/assertion"
	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

var algs = domain.AssertionAlgorithms

// keys are generated once: RSA generation is slow under the race detector.
var keys = sync.OnceValue(func() (k struct {
	ec, ec2 *ecdsa.PrivateKey
	p384    *ecdsa.PrivateKey
	rsa     *rsa.PrivateKey
	ed      ed25519.PrivateKey
},
) {
	k.ec, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k.ec2, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k.p384, _ = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	k.rsa, _ = rsa.GenerateKey(rand.Reader, 2048)
	_, k.ed, _ = ed25519.GenerateKey(rand.Reader)
	return k
})

func claims() map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": "client-1", "sub": "client-1", "aud": "https://as.example", "jti": "jti-1",
		"exp": now.Add(time.Minute).Unix(), "iat": now.Unix(),
	}
}

func sign(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, c map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	require.NoError(t, err)
	token, err := jwt.Signed(signer).Claims(c).Serialize()
	require.NoError(t, err)
	return token
}

// set renders public keys as a JWK Set.
func set(t *testing.T, ks ...jose.JSONWebKey) []byte {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: ks})
	require.NoError(t, err)
	return b
}

func pub(key crypto.Signer, kid, alg string) jose.JSONWebKey {
	return jose.JSONWebKey{Key: key.Public(), KeyID: kid, Algorithm: alg, Use: "sig"}
}

func TestVerifyAcceptsEachAllowedAlgorithmWithItsKey(t *testing.T) {
	k := keys()
	for _, tc := range []struct {
		alg jose.SignatureAlgorithm
		key crypto.Signer
	}{{jose.ES256, k.ec}, {jose.RS256, k.rsa}, {jose.EdDSA, k.ed}} {
		t.Run(string(tc.alg), func(t *testing.T) {
			token := sign(t, tc.alg, tc.key, "k1", claims())
			a, err := assertion.Verifier{}.VerifyAssertion(token, set(t, pub(k.ec2, "other", "ES256"), pub(tc.key, "k1", "")), algs)
			require.NoError(t, err)
			require.Equal(t, "client-1", a.Issuer)
			require.Equal(t, []string{"https://as.example"}, a.Audience)
			require.False(t, a.AudienceArray)
			require.Equal(t, "jti-1", a.JTI)
			require.Equal(t, "JWT", a.Type)
			require.Equal(t, string(tc.alg), a.Algorithm)
			require.WithinDuration(t, time.Now().Add(time.Minute), a.ExpiresAt, 2*time.Second)
		})
	}
}

func TestVerifyWithoutKidTriesEveryFittingKey(t *testing.T) {
	k := keys()
	token := sign(t, jose.ES256, k.ec, "", claims())
	_, err := assertion.Verifier{}.VerifyAssertion(token, set(t, pub(k.ec2, "a", ""), pub(k.ec, "b", "")), algs)
	require.NoError(t, err)
}

func TestVerifyRefusesWhatItMust(t *testing.T) {
	k := keys()
	ecSet := set(t, pub(k.ec, "k1", "ES256"))
	enc := base64.RawURLEncoding
	body := func() string {
		b, _ := json.Marshal(claims())
		return enc.EncodeToString(b)
	}
	rsaDER, err := x509.MarshalPKIXPublicKey(k.rsa.Public())
	require.NoError(t, err)

	for _, tc := range []struct {
		name    string
		token   string
		keys    []byte
		unknown bool // the error is ErrUnknownKey: no key fits
	}{
		{name: "a wrong key under the right kid", token: sign(t, jose.ES256, k.ec2, "k1", claims()), keys: ecSet},
		{name: "an unknown kid", token: sign(t, jose.ES256, k.ec, "k2", claims()), keys: ecSet, unknown: true},
		{name: "alg none", token: enc.EncodeToString([]byte(`{"alg":"none","kid":"k1"}`)) + "." + body() + ".", keys: ecSet},
		{
			// The classic confusion: the public key's bytes as the HMAC
			// secret. go-jose never gets to it: HS256 is not allowed.
			name:  "HS256 keyed with the public key",
			token: sign(t, jose.HS256, rsaDER, "k1", claims()),
			keys:  set(t, pub(k.rsa, "k1", "")),
		},
		{name: "an algorithm outside the allow list", token: sign(t, jose.ES384, k.p384, "k1", claims()), keys: set(t, pub(k.p384, "k1", ""))},
		{name: "a key whose alg is another", token: sign(t, jose.ES256, k.ec, "k1", claims()), keys: set(t, pub(k.ec, "k1", "RS256")), unknown: true},
		{name: "an RSA key for ES256", token: sign(t, jose.ES256, k.ec, "", claims()), keys: set(t, pub(k.rsa, "r", "")), unknown: true},
		{name: "a key for encryption", token: sign(t, jose.ES256, k.ec, "k1", claims()), keys: set(t, jose.JSONWebKey{Key: k.ec.Public(), KeyID: "k1", Use: "enc"}), unknown: true},
		{
			name:    "a set holding the private key",
			token:   sign(t, jose.ES256, k.ec, "k1", claims()),
			keys:    set(t, jose.JSONWebKey{Key: k.ec, KeyID: "k1"}),
			unknown: true,
		},
		{name: "claims of the wrong type", token: sign(t, jose.ES256, k.ec, "k1", map[string]any{"iss": 42, "exp": time.Now().Unix()}), keys: ecSet},
		{name: "exp that is not a number", token: sign(t, jose.ES256, k.ec, "k1", map[string]any{"iss": "c", "exp": "soon"}), keys: ecSet},
		{name: "a JSON serialization", token: `{"payload":"e30","signatures":[]}`, keys: ecSet},
		{name: "an oversized token", token: strings.Repeat("a", assertion.MaxAssertionSize+1), keys: ecSet},
		{name: "a key set that is not one", token: sign(t, jose.ES256, k.ec, "k1", claims()), keys: []byte(`[1,2]`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := assertion.Verifier{}.VerifyAssertion(tc.token, tc.keys, algs)
			require.Error(t, err)
			require.Equal(t, tc.unknown, errors.Is(err, ports.ErrUnknownKey), "%v", err)
		})
	}
}

func TestParseReadsClaimsWithoutVerifying(t *testing.T) {
	k := keys()
	c := claims()
	c["aud"] = []string{"https://as.example"}
	c["resource"] = "https://as.example/mcp"
	c["client_id"] = "client-9"
	c["scope"] = "a b"
	a, err := assertion.Verifier{}.ParseAssertion(sign(t, jose.ES256, k.ec, "k1", c))
	require.NoError(t, err)
	require.True(t, a.AudienceArray)
	require.Equal(t, []string{"https://as.example/mcp"}, a.Resource)
	require.Equal(t, "client-9", a.ClientID)
	require.True(t, a.HasScope)
	require.Equal(t, "a b", a.Scope)
	require.Equal(t, "client-9", a.Claims["client_id"])

	_, err = assertion.Verifier{}.ParseAssertion("not.a.jwt")
	require.Error(t, err)
}

func TestCheckKeySetAcceptsPublicSigningKeysOnly(t *testing.T) {
	k := keys()
	good := set(t, pub(k.ec, "a", "ES256"), pub(k.rsa, "b", ""), jose.JSONWebKey{Key: k.ed.Public(), KeyID: "c"})
	require.NoError(t, assertion.Verifier{}.CheckKeySet(good, algs))

	small, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	many := make([]jose.JSONWebKey, assertion.MaxRegisteredKeys+1)
	for i := range many {
		many[i] = pub(k.ec, "k", "")
	}
	for name, ks := range map[string][]byte{
		"a private key":         set(t, jose.JSONWebKey{Key: k.ec, KeyID: "a"}),
		"a symmetric key":       []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}]}`),
		"an encryption key":     set(t, jose.JSONWebKey{Key: k.ec.Public(), Use: "enc"}),
		"a short RSA key":       set(t, jose.JSONWebKey{Key: small.Public()}),
		"a P-384 key":           set(t, jose.JSONWebKey{Key: k.p384.Public()}),
		"an HMAC alg":           set(t, pub(k.ec, "a", "HS256")),
		"no keys":               []byte(`{"keys":[]}`),
		"not a set":             []byte(`{"kty":"EC"}`),
		"too many keys":         set(t, many...),
		"an unknown key type":   []byte(`{"keys":[{"kty":"XYZ"}]}`),
		"a key that is garbage": []byte(`{"keys":[17]}`),
	} {
		require.Error(t, assertion.Verifier{}.CheckKeySet(ks, algs), name)
	}
}

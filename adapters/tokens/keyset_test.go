package tokens_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/tokens"
)

// jwk encodes key as a JWK with the given members set.
func jwk(t *testing.T, key any, kid, alg, use string) json.RawMessage {
	t.Helper()
	raw, err := json.Marshal(jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: alg, Use: use})
	require.NoError(t, err)
	return raw
}

// jwks wraps keys in a JWK Set document.
func jwks(t *testing.T, keys ...json.RawMessage) []byte {
	t.Helper()
	raw, err := json.Marshal(map[string]any{"keys": keys})
	require.NoError(t, err)
	return raw
}

func TestAClientKeySetMustHoldPublicSignatureKeysOfAnAcceptedAlgorithm(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ec384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	rsa2048, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	var pub crypto.PublicKey = &ec.PublicKey

	accepted := map[string][]byte{
		"an EC P-256 key":                    jwks(t, jwk(t, pub, "", "", "")),
		"an EC P-256 key for ES256, to sign": jwks(t, jwk(t, pub, "k1", "ES256", "sig")),
		"an RSA key of 2048 bits":            jwks(t, jwk(t, &rsa2048.PublicKey, "", "RS256", "")),
		"an Ed25519 key":                     jwks(t, jwk(t, edPub, "", "EdDSA", "")),
		"a key and its successor":            jwks(t, jwk(t, pub, "old", "", ""), jwk(t, edPub, "new", "", "")),
	}
	for name, doc := range accepted {
		out, err := tokens.KeySets{}.ValidatePublicKeySet(doc)
		require.NoError(t, err, name)
		var set jose.JSONWebKeySet
		require.NoError(t, json.Unmarshal(out, &set), name)
		var in jose.JSONWebKeySet
		require.NoError(t, json.Unmarshal(doc, &in), name)
		require.Len(t, set.Keys, len(in.Keys), name)
		for i := range set.Keys {
			require.True(t, set.Keys[i].IsPublic(), name)
			require.Equal(t, in.Keys[i].KeyID, set.Keys[i].KeyID, name)
		}
	}

	many := make([]json.RawMessage, 9)
	for i := range many {
		many[i] = jwk(t, pub, string(rune('a'+i)), "", "")
	}
	refused := []struct {
		name, doc, says string
	}{
		{"not JSON", "not json", "not a JWK Set"},
		{"a single JWK instead of a set", string(jwk(t, pub, "", "", "")), "holds no key"},
		{"an empty set", `{"keys":[]}`, "holds no key"},
		{"a private EC key", string(jwks(t, jwk(t, ec, "", "", ""))), "private key"},
		{"a private Ed25519 key", string(jwks(t, jwk(t, edPriv, "", "", ""))), "private key"},
		{"a private RSA key", string(jwks(t, jwk(t, rsa2048, "", "", ""))), "private key"},
		{"a shared secret", `{"keys":[{"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}]}`, "shared secret"},
		{"an HS256 key", `{"keys":[{"kty":"oct","alg":"HS256","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}]}`, "shared secret"},
		{"an EC key on P-384", string(jwks(t, jwk(t, &ec384.PublicKey, "", "", ""))), "P-256"},
		{"an RSA key of 1024 bits", string(jwks(t, jwk(t, &rsa1024.PublicKey, "", "", ""))), "1024-bit"},
		{"an EC key declared for RS256", string(jwks(t, jwk(t, pub, "", "RS256", ""))), `"alg" is "RS256"`},
		{"an EC key declared for none", `{"keys":[` + strings.Replace(string(jwk(t, pub, "", "", "")), `{`, `{"alg":"none",`, 1) + `]}`, `"alg" is "none"`},
		{"an RSA key declared for PS256", string(jwks(t, jwk(t, &rsa2048.PublicKey, "", "PS256", ""))), `"alg" is "PS256"`},
		{"an encryption key", string(jwks(t, jwk(t, pub, "", "", "enc"))), `"use" is "enc"`},
		{"two keys without kids", string(jwks(t, jwk(t, pub, "", "", ""), jwk(t, edPub, "", "", ""))), `no "kid"`},
		{"two keys with one kid", string(jwks(t, jwk(t, pub, "k", "", ""), jwk(t, edPub, "k", "", ""))), `the "kid" "k"`},
		{"too many keys", string(jwks(t, many...)), "at most 8"},
		{"a huge document", `{"keys":[],"pad":"` + strings.Repeat("a", 40<<10) + `"}`, "larger than"},
		{"a point off the curve", `{"keys":[{"kty":"EC","crv":"P-256","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}`, ""},
	}
	for _, tc := range refused {
		out, err := tokens.KeySets{}.ValidatePublicKeySet([]byte(tc.doc))
		require.Error(t, err, tc.name)
		require.Nil(t, out, tc.name)
		require.Contains(t, err.Error(), tc.says, tc.name)
	}
}

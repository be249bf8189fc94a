package tokens

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/oidcproxy/oidcproxy/ports"
)

// Bounds on a client's key set: room for a key and its successor during a
// rotation, and then some; small enough that a mistaken file (a
// certificate bundle, a whole JWKS of an identity provider) is refused
// rather than stored, and that a set fits, with the rest of the request,
// in the admin listener's request body bound.
const (
	maxKeySetBytes = 32 << 10
	maxClientKeys  = 8
	// minRSABits is the smallest RSA modulus accepted (RFC 7518 3.3 asks
	// for 2048 bits or more).
	minRSABits = 2048
)

// KeySets judges the public key sets operators register for machine
// clients that authenticate with private_key_jwt.
type KeySets struct{}

var _ ports.KeySetValidator = KeySets{}

// ValidatePublicKeySet parses doc as a JWK Set and accepts it when it holds
// one to maxClientKeys public signature keys, each usable with one of the
// algorithms private_key_jwt accepts — ES256 on P-256, RS256 with RSA of
// at least 2048 bits, EdDSA with Ed25519; never "none", never an HMAC
// algorithm, for a shared secret is not a public key — (an "alg" member,
// when present, must name that algorithm; "use", when present, must be
// "sig"), and, when there are several, each with its
// own "kid", so that an assertion's header can say which key signed it. It
// returns the set re-encoded from the parsed keys: what is stored is what
// was judged, without members go-jose does not read.
func (KeySets) ValidatePublicKeySet(doc []byte) ([]byte, error) {
	if len(doc) > maxKeySetBytes {
		return nil, fmt.Errorf("the key set is larger than %d KiB", maxKeySetBytes>>10)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, fmt.Errorf("the key set is not a JWK Set: %w", err)
	}
	switch n := len(set.Keys); {
	case n == 0:
		return nil, errors.New(`the key set holds no key: it must be a JWK Set, {"keys":[…]}`)
	case n > maxClientKeys:
		return nil, fmt.Errorf("the key set holds %d keys; at most %d are accepted", n, maxClientKeys)
	}
	kids := map[string]bool{}
	for i, k := range set.Keys {
		if err := checkClientKey(k); err != nil {
			return nil, fmt.Errorf("key %d of the set: %w", i+1, err)
		}
		if len(set.Keys) > 1 {
			if k.KeyID == "" {
				return nil, fmt.Errorf("key %d of the set has no \"kid\"; with several keys each needs one", i+1)
			}
			if kids[k.KeyID] {
				return nil, fmt.Errorf("two keys of the set have the \"kid\" %q", k.KeyID)
			}
			kids[k.KeyID] = true
		}
	}
	out, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("encode the key set: %w", err)
	}
	return out, nil
}

// checkClientKey judges one key of a client's set.
func checkClientKey(k jose.JSONWebKey) error {
	if _, symmetric := k.Key.([]byte); symmetric {
		return errors.New("it is a shared secret (kty oct), not a public key")
	}
	if !k.IsPublic() {
		return errors.New("it is a private key; register the public key only (the private key never leaves the client)")
	}
	if !k.Valid() {
		return errors.New("its key material is incomplete or malformed")
	}
	if k.Use != "" && k.Use != "sig" {
		return fmt.Errorf("its \"use\" is %q; a client's key signs assertions (\"sig\")", k.Use)
	}
	var alg jose.SignatureAlgorithm
	switch key := k.Key.(type) {
	case *ecdsa.PublicKey:
		if key.Curve != elliptic.P256() {
			return fmt.Errorf("it is an EC key on %s; only P-256 (ES256) is accepted", key.Curve.Params().Name)
		}
		alg = jose.ES256
	case *rsa.PublicKey:
		if key.N.BitLen() < minRSABits {
			return fmt.Errorf("it is a %d-bit RSA key; at least %d bits are required", key.N.BitLen(), minRSABits)
		}
		alg = jose.RS256
	case ed25519.PublicKey:
		alg = jose.EdDSA
	default:
		return fmt.Errorf("its key type (%T) is not accepted; use EC P-256, RSA or Ed25519", k.Key)
	}
	if k.Algorithm != "" && k.Algorithm != string(alg) {
		return fmt.Errorf("its \"alg\" is %q; a key of this type is accepted for %s only", k.Algorithm, alg)
	}
	return nil
}

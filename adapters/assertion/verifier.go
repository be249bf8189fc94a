package assertion

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/wire"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// Bounds on what the verifier reads.
const (
	// MaxAssertionSize bounds a compact JWS: client assertions are a few
	// hundred bytes, ID-JAGs with user claims a few kilobytes.
	MaxAssertionSize = 16 << 10
	// MaxRegisteredKeys bounds the keys a client may register: a current
	// key and a couple of rotation successors.
	MaxRegisteredKeys = 10
	// minRSABits refuses RSA keys too short to trust (RFC 7518 3.3).
	minRSABits = 2048
)

// privateMembers are the JWK members that carry private or symmetric key
// material (RFC 7518 6.2.2, 6.3.2, 6.4; RFC 8037 2): a key holding one
// is never used to verify, and never accepted at registration.
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"}

// Verifier checks JWT assertions other parties signed with go-jose. It
// holds no state and is safe for concurrent use.
type Verifier struct{}

var _ ports.AssertionVerifier = Verifier{}

// ProviderSet provides the Verifier as the use cases' ports.AssertionVerifier.
// The trusted issuers' key source (NewIssuers) is not in it: the
// composition root builds one only when issuers are configured.
var ProviderSet = wire.NewSet(wire.Value(Verifier{}), wire.Bind(new(ports.AssertionVerifier), new(Verifier)))

// ParseAssertion reads token's header and claims without checking the
// signature. Only the algorithms of domain.AssertionAlgorithms parse.
func (Verifier) ParseAssertion(token string) (domain.Assertion, error) {
	jws, err := parseCompact(token, domain.AssertionAlgorithms)
	if err != nil {
		return domain.Assertion{}, err
	}
	return decode(jws, jws.UnsafePayloadWithoutVerification())
}

// VerifyAssertion checks token's signature with a fitting key of keySet
// and returns its header and claims.
func (Verifier) VerifyAssertion(token string, keySet []byte, algs []string) (domain.Assertion, error) {
	jws, err := parseCompact(token, algs)
	if err != nil {
		return domain.Assertion{}, err
	}
	keys, err := parseKeySet(keySet)
	if err != nil {
		return domain.Assertion{}, err
	}
	h := jws.Signatures[0].Header
	alg := h.Algorithm
	var candidates []jose.JSONWebKey
	for _, k := range keys {
		if (h.KeyID == "" || k.KeyID == h.KeyID) && fits(k, alg) {
			candidates = append(candidates, k)
		}
	}
	if len(candidates) == 0 {
		return domain.Assertion{}, fmt.Errorf("assertion: %w (kid %q, alg %s)", ports.ErrUnknownKey, clip(h.KeyID), alg)
	}
	for _, k := range candidates {
		if payload, err := jws.Verify(k.Key); err == nil {
			return decode(jws, payload)
		}
	}
	return domain.Assertion{}, errors.New("assertion: the signature does not verify")
}

// CheckKeySet accepts a JWK Set a client may register: an object with a
// non-empty keys array of at most MaxRegisteredKeys keys, each public,
// parseable, of a type and size usable with one of algs, its alg (when
// named) one of algs and its use (when named) "sig".
func (Verifier) CheckKeySet(keySet []byte, algs []string) error {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(keySet, &set); err != nil {
		return errors.New("assertion: the key set is not a JWK Set")
	}
	switch {
	case len(set.Keys) == 0:
		return errors.New("assertion: the key set has no keys")
	case len(set.Keys) > MaxRegisteredKeys:
		return fmt.Errorf("assertion: the key set has more than %d keys", MaxRegisteredKeys)
	}
	for i, raw := range set.Keys {
		k, err := parseKey(raw)
		if err != nil {
			return fmt.Errorf("assertion: key %d: %w", i, err)
		}
		if k.Use != "" && k.Use != "sig" {
			return fmt.Errorf("assertion: key %d: use is not sig", i)
		}
		usable := false
		for _, alg := range algs {
			usable = usable || fits(k, alg)
		}
		if !usable {
			return fmt.Errorf("assertion: key %d: not a key for %v", i, algs)
		}
	}
	return nil
}

// parseCompact parses a compact JWS with one signature by one of algs; go-
// jose refuses every other algorithm ("none" and the HMACs among them)
// before anything else happens.
func parseCompact(token string, algs []string) (*jose.JSONWebSignature, error) {
	if len(token) > MaxAssertionSize {
		return nil, fmt.Errorf("assertion: longer than %d bytes", MaxAssertionSize)
	}
	allowed := make([]jose.SignatureAlgorithm, 0, len(algs))
	for _, a := range algs {
		allowed = append(allowed, jose.SignatureAlgorithm(a))
	}
	jws, err := jose.ParseSignedCompact(token, allowed)
	if err != nil {
		return nil, fmt.Errorf("assertion: not a compact JWS signed with %v: %w", algs, err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("assertion: not exactly one signature")
	}
	return jws, nil
}

// parseKeySet reads the usable keys of a JWK Set. A key this code cannot
// read, or one holding private material, is skipped rather than failing
// the set: an IdP may publish keys of other kinds next to its signing
// keys. The set itself must be an object with a keys array.
func parseKeySet(keySet []byte) ([]jose.JSONWebKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if t := bytes.TrimLeft(keySet, " \t\r\n"); len(t) == 0 || t[0] != '{' || json.Unmarshal(keySet, &set) != nil {
		return nil, errors.New("assertion: the key set is not a JWK Set")
	}
	keys := make([]jose.JSONWebKey, 0, len(set.Keys))
	for _, raw := range set.Keys {
		if k, err := parseKey(raw); err == nil {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// parseKey reads one public JWK, refusing private and symmetric material.
func parseKey(raw json.RawMessage) (jose.JSONWebKey, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return jose.JSONWebKey{}, errors.New("not a JSON object")
	}
	for _, m := range privateMembers {
		if _, ok := members[m]; ok {
			return jose.JSONWebKey{}, errors.New("holds private or symmetric key material")
		}
	}
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(raw); err != nil {
		return jose.JSONWebKey{}, errors.New("not a usable JWK")
	}
	if !k.Valid() || !k.IsPublic() {
		return jose.JSONWebKey{}, errors.New("not a public key")
	}
	return k, nil
}

// fits reports whether k can verify a signature by alg: the algorithm
// the key names (if any) is alg, and the key's type and size are alg's.
// This is where "alg: ES256 with an RSA key" and the like are refused.
func fits(k jose.JSONWebKey, alg string) bool {
	if k.Algorithm != "" && k.Algorithm != alg {
		return false
	}
	if k.Use != "" && k.Use != "sig" {
		return false
	}
	switch key := k.Key.(type) {
	case *ecdsa.PublicKey:
		return alg == string(jose.ES256) && key.Curve == elliptic.P256()
	case *rsa.PublicKey:
		return alg == string(jose.RS256) && key.N.BitLen() >= minRSABits
	case ed25519.PublicKey:
		return alg == string(jose.EdDSA)
	}
	return false
}

// wireClaims are the claims the rules need, typed strictly: a claim of the
// wrong JSON type fails the decoding, and with it the assertion.
type wireClaims struct {
	Issuer    string       `json:"iss"`
	Subject   string       `json:"sub"`
	Audience  stringOrList `json:"aud"`
	ExpiresAt *numericDate `json:"exp"`
	IssuedAt  *numericDate `json:"iat"`
	NotBefore *numericDate `json:"nbf"`
	JTI       string       `json:"jti"`
	ClientID  string       `json:"client_id"`
	Resource  stringOrList `json:"resource"`
	Scope     *string      `json:"scope"`
}

// decode builds the domain's view of a parsed (and, from VerifyAssertion,
// verified) assertion.
func decode(jws *jose.JSONWebSignature, payload []byte) (domain.Assertion, error) {
	var c wireClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return domain.Assertion{}, errors.New("assertion: the claims are not a JSON object of the expected types")
	}
	var all map[string]any
	if err := json.Unmarshal(payload, &all); err != nil {
		return domain.Assertion{}, errors.New("assertion: the claims are not a JSON object")
	}
	h := jws.Signatures[0].Header
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	a := domain.Assertion{
		Type:          typ,
		Algorithm:     h.Algorithm,
		KeyID:         h.KeyID,
		Issuer:        c.Issuer,
		Subject:       c.Subject,
		Audience:      c.Audience.values,
		AudienceArray: c.Audience.array,
		ExpiresAt:     c.ExpiresAt.time(),
		IssuedAt:      c.IssuedAt.time(),
		NotBefore:     c.NotBefore.time(),
		JTI:           c.JTI,
		ClientID:      c.ClientID,
		Resource:      c.Resource.values,
		Claims:        all,
	}
	if c.Scope != nil {
		a.Scope, a.HasScope = *c.Scope, true
	}
	return a, nil
}

// stringOrList is a claim that RFC 7519 lets be a string or an array of
// strings (aud; the resource claim of an ID-JAG).
type stringOrList struct {
	values []string
	array  bool
}

// UnmarshalJSON implements json.Unmarshaler.
func (s *stringOrList) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		s.values = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("neither a string nor an array of strings")
	}
	s.values, s.array = many, true
	return nil
}

// numericDate is an RFC 7519 NumericDate: seconds since the epoch, an
// integer or not, finite and not negative.
type numericDate struct{ t time.Time }

// UnmarshalJSON implements json.Unmarshaler.
func (d *numericDate) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return errors.New("not a number")
	}
	// Beyond year 9999 a date means nothing but overflow.
	if math.IsNaN(f) || f < 0 || f > 253402300799 {
		return errors.New("out of range")
	}
	sec, frac := math.Modf(f)
	d.t = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	return nil
}

func (d *numericDate) time() time.Time {
	if d == nil {
		return time.Time{}
	}
	return d.t
}

// clip shortens a value quoted in an error.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

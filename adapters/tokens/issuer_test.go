package tokens_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/memstore"
	"github.com/oidcproxy/oidcproxy/adapters/tokens"
	"github.com/oidcproxy/oidcproxy/domain"
)

func TestIssuedTokensVerifyWithEveryClaim(t *testing.T) {
	e := newEnv(t)
	// Sub-second parts are dropped: JWT times are whole seconds.
	now := e.clock.Now().Add(700 * time.Millisecond)
	want := sampleToken(now)

	token, err := e.issuer.Issue(t.Context(), want)
	require.NoError(t, err)

	got, err := e.issuer.Verify(t.Context(), token)
	require.NoError(t, err)
	require.Equal(t, want.Issuer, got.Issuer)
	require.Equal(t, want.Subject, got.Subject)
	require.Equal(t, want.Audience, got.Audience)
	require.Equal(t, want.ClientID, got.ClientID)
	require.Equal(t, want.Scopes, got.Scopes)
	require.Equal(t, want.GrantID, got.GrantID)
	require.Equal(t, want.JTI, got.JTI)
	require.Equal(t, e.issuer.ActiveKeyID(), got.KeyID)
	require.True(t, got.IssuedAt.Equal(now.Truncate(time.Second)), "iat %v", got.IssuedAt)
	require.True(t, got.NotBefore.Equal(now.Truncate(time.Second)), "nbf %v", got.NotBefore)
	require.True(t, got.ExpiresAt.Equal(now.Add(time.Hour).Truncate(time.Second)), "exp %v", got.ExpiresAt)
}

func TestIssuedTokensCarryTheRFC9068HeaderAndClaimNames(t *testing.T) {
	e := newEnv(t)
	token, err := e.issuer.Issue(t.Context(), sampleToken(e.clock.Now()))
	require.NoError(t, err)

	parts := strings.Split(token, ".")
	require.Len(t, parts, 3)
	var header map[string]any
	decodeSegment(t, parts[0], &header)
	require.Equal(t, map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": e.issuer.ActiveKeyID()}, header)

	var payload map[string]any
	decodeSegment(t, parts[1], &payload)
	require.ElementsMatch(t,
		[]string{"iss", "sub", "aud", "client_id", "scope", "exp", "iat", "nbf", "jti", "gid"},
		slices.Collect(maps.Keys(payload)))
	require.Equal(t, "openid profile mcp:tools", payload["scope"])
	require.Equal(t, "https://proxy.example.com/mcp", payload["aud"], "aud is a single string")
}

func TestTokensWithoutScopesOrNotBeforeRoundTrip(t *testing.T) {
	e := newEnv(t)
	want := sampleToken(e.clock.Now())
	want.Scopes = nil
	want.NotBefore = time.Time{}

	token, err := e.issuer.Issue(t.Context(), want)
	require.NoError(t, err)
	got, err := e.issuer.Verify(t.Context(), token)
	require.NoError(t, err)
	require.Empty(t, got.Scopes)
	require.True(t, got.NotBefore.IsZero())
}

func TestIssueRefusesTokensMissingARequiredClaim(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name  string
		clear func(*domain.AccessToken)
	}{
		{"iss", func(a *domain.AccessToken) { a.Issuer = "" }},
		{"sub", func(a *domain.AccessToken) { a.Subject = "" }},
		{"aud", func(a *domain.AccessToken) { a.Audience = "" }},
		{"client_id", func(a *domain.AccessToken) { a.ClientID = "" }},
		{"jti", func(a *domain.AccessToken) { a.JTI = "" }},
		{"gid", func(a *domain.AccessToken) { a.GrantID = "" }},
		{"exp", func(a *domain.AccessToken) { a.ExpiresAt = time.Time{} }},
		{"iat", func(a *domain.AccessToken) { a.IssuedAt = time.Time{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := sampleToken(e.clock.Now())
			tt.clear(&at)
			token, err := e.issuer.Issue(t.Context(), at)
			require.ErrorContains(t, err, tt.name)
			require.Empty(t, token)
		})
	}
}

func TestOpenGeneratesOneKeyAndReusesItOnTheNextOpen(t *testing.T) {
	e := newEnv(t)
	keys := e.storedKeys(t)
	require.Len(t, keys, 1)
	k := keys[0]
	require.Equal(t, e.issuer.ActiveKeyID(), k.ID)
	require.Equal(t, "ES256", k.Algorithm)
	require.True(t, k.CreatedAt.Equal(e.clock.Now()))
	require.True(t, k.NotAfter.IsZero())
	require.True(t, k.RemoveAfter.IsZero())

	token, err := e.issuer.Issue(t.Context(), sampleToken(e.clock.Now()))
	require.NoError(t, err)

	again := e.open(t)
	require.Equal(t, k.ID, again.ActiveKeyID())
	require.Len(t, e.storedKeys(t), 1)
	_, err = again.Verify(t.Context(), token)
	require.NoError(t, err, "a restarted issuer verifies tokens issued before the restart")
}

func TestKeyIDIsTheRFC7638Thumbprint(t *testing.T) {
	e := newEnv(t)
	k := e.storedKeys(t)[0]
	var jwk jose.JSONWebKey
	require.NoError(t, jwk.UnmarshalJSON(k.PublicJWK))
	thumb, err := jwk.Thumbprint(crypto.SHA256)
	require.NoError(t, err)
	require.Equal(t, base64.RawURLEncoding.EncodeToString(thumb), k.ID)
}

func TestPrivateKeysAreStoredSealed(t *testing.T) {
	e := newEnv(t)
	k := e.storedKeys(t)[0]

	der, err := e.sealer.Open(k.SealedPrivate, []byte(k.ID))
	require.NoError(t, err, "the private key is sealed with the kid as associated data")
	priv, err := x509.ParsePKCS8PrivateKey(der)
	require.NoError(t, err)
	require.IsType(t, &ecdsa.PrivateKey{}, priv)

	require.False(t, bytes.Contains(k.SealedPrivate, der), "stored bytes contain the PKCS#8 DER")
	scalar, err := priv.(*ecdsa.PrivateKey).Bytes()
	require.NoError(t, err)
	require.False(t, bytes.Contains(k.SealedPrivate, scalar), "stored bytes contain the private scalar")

	_, err = e.sealer.Open(k.SealedPrivate, []byte("another-kid"))
	require.Error(t, err, "a sealed key cannot be moved to another record")

	var public map[string]any
	require.NoError(t, json.Unmarshal(k.PublicJWK, &public))
	require.NotContains(t, public, "d")
	require.Equal(t, "EC", public["kty"])
	require.Equal(t, "P-256", public["crv"])
}

func TestOpenFailsWhenTheStoredKeyCannotBeUnsealed(t *testing.T) {
	e := newEnv(t)
	// A different encryption key must stop the server, not make it mint a
	// fresh key and silently orphan every token issued before.
	_, err := tokens.Open(t.Context(), e.store, newSealer(t), e.clock)
	require.ErrorContains(t, err, "unseal")
	require.Len(t, e.storedKeys(t), 1)
}

func TestOpenFailsOnACorruptStoredKey(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(*domain.SigningKey)
	}{
		{"unknown algorithm", func(k *domain.SigningKey) { k.Algorithm = "RS256" }},
		{"garbage public jwk", func(k *domain.SigningKey) { k.PublicJWK = []byte("{") }},
		{"truncated sealed private key", func(k *domain.SigningKey) { k.SealedPrivate = k.SealedPrivate[:10] }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			k := e.storedKeys(t)[0]
			tt.corrupt(&k)
			require.NoError(t, e.store.PutKey(t.Context(), k))
			_, err := tokens.Open(t.Context(), e.store, e.sealer, e.clock)
			require.Error(t, err)
		})
	}
}

func TestOpenRefusesAPublicKeyThatDoesNotMatchThePrivateKey(t *testing.T) {
	e := newEnv(t)
	other := newEnv(t)
	k := e.storedKeys(t)[0]
	var jwk jose.JSONWebKey
	require.NoError(t, jwk.UnmarshalJSON(other.storedKeys(t)[0].PublicJWK))
	jwk.KeyID = k.ID
	swapped, err := jwk.MarshalJSON()
	require.NoError(t, err)
	k.PublicJWK = swapped
	require.NoError(t, e.store.PutKey(t.Context(), k))

	_, err = tokens.Open(t.Context(), e.store, e.sealer, e.clock)
	require.ErrorContains(t, err, "does not match")
}

func TestOpenRejectsNilDependencies(t *testing.T) {
	store, sealer, clock := memstore.New(), newSealer(t), newFakeClock()
	_, err := tokens.Open(t.Context(), nil, sealer, clock)
	require.Error(t, err)
	_, err = tokens.Open(t.Context(), store, nil, clock)
	require.Error(t, err)
	_, err = tokens.Open(t.Context(), store, sealer, nil)
	require.Error(t, err)
}

func TestVerifyRejectsForgedAndMalformedTokens(t *testing.T) {
	e := newEnv(t)
	now := e.clock.Now()
	priv, kid := e.activePrivateKey(t)
	valid, err := e.issuer.Issue(t.Context(), sampleToken(now))
	require.NoError(t, err)
	parts := strings.Split(valid, ".")

	foreignEC, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	foreignP384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	publicJWK := e.storedKeys(t)[0].PublicJWK
	publicDER, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	require.NoError(t, err)

	flipped := []byte(parts[2])
	flipped[10] ^= 'A' ^ 'B'
	if flipped[10] == parts[2][10] {
		flipped[10] = 'C'
	}
	lastSig := parts[2][len(parts[2])-1]
	// The signature's last base64url character carries 4 padding bits; a
	// neighbour with the same top two bits decodes to the same bytes in
	// lenient decoders.
	nonCanonical := parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-1] + string(sameBytesDifferentChar(lastSig))

	claims := sampleClaims(now)
	with := func(k string, v any) map[string]any {
		c := maps.Clone(claims)
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}

	tests := []struct {
		name  string
		token string
	}{
		{"empty", ""},
		{"garbage", "not a token"},
		{"two segments", parts[0] + "." + parts[1]},
		{"four segments", valid + "." + parts[2]},
		{"empty signature", parts[0] + "." + parts[1] + "."},
		{"tampered signature", parts[0] + "." + parts[1] + "." + string(flipped)},
		{"tampered payload", parts[0] + "." + segment(t, with("sub", "admin")) + "." + parts[2]},
		{"non-canonical base64url", nonCanonical},
		{"padded base64url", parts[0] + "==." + parts[1] + "." + parts[2]},
		{"whitespace inside", parts[0] + ". " + parts[1] + "." + parts[2]},
		{"carriage returns inside a segment", parts[0] + "." + parts[1][:20] + "\r\r" + parts[1][20:] + "." + parts[2]},
		{"a newline inside the signature", parts[0] + "." + parts[1] + "." + parts[2][:8] + "\n" + parts[2][8:]},
		{"a trailing newline", valid + "\n"},
		{"JSON serialization", jsonSerialization(t, valid)},
		{"oversized but validly signed", sign(t, jose.ES256, priv, kid, "at+jwt", with("pad", strings.Repeat("x", tokens.MaxTokenSize)))},
		{"alg none", segment(t, map[string]any{"alg": "none", "typ": "at+jwt", "kid": kid}) + "." + parts[1] + "."},
		{"alg none with the original signature", segment(t, map[string]any{"alg": "none", "typ": "at+jwt", "kid": kid}) + "." + parts[1] + "." + parts[2]},
		{"HS256 keyed with the public JWK", sign(t, jose.HS256, publicJWK, kid, "at+jwt", claims)},
		{"HS256 keyed with the public key DER", sign(t, jose.HS256, publicDER, kid, "at+jwt", claims)},
		{"RS256", sign(t, jose.RS256, rsaKey, kid, "at+jwt", claims)},
		{"ES384", sign(t, jose.ES384, foreignP384, kid, "at+jwt", claims)},
		{"ES256 by a foreign key under our kid", sign(t, jose.ES256, foreignEC, kid, "at+jwt", claims)},
		{"unknown kid", sign(t, jose.ES256, priv, "no-such-key", "at+jwt", claims)},
		{"no kid", sign(t, jose.ES256, priv, "", "at+jwt", claims)},
		{"typ JWT", sign(t, jose.ES256, priv, kid, "JWT", claims)},
		{"typ of an ID token", sign(t, jose.ES256, priv, kid, "id_token+jwt", claims)},
		{"no typ", sign(t, jose.ES256, priv, kid, "", claims)},
		{"missing sub", sign(t, jose.ES256, priv, kid, "at+jwt", with("sub", nil))},
		{"missing jti", sign(t, jose.ES256, priv, kid, "at+jwt", with("jti", nil))},
		{"missing gid", sign(t, jose.ES256, priv, kid, "at+jwt", with("gid", nil))},
		{"missing exp", sign(t, jose.ES256, priv, kid, "at+jwt", with("exp", nil))},
		{"missing aud", sign(t, jose.ES256, priv, kid, "at+jwt", with("aud", nil))},
		{"aud with two values", sign(t, jose.ES256, priv, kid, "at+jwt", with("aud", []string{"a", "b"}))},
		{"aud as an empty array", sign(t, jose.ES256, priv, kid, "at+jwt", with("aud", []string{}))},
		{"aud as a number", sign(t, jose.ES256, priv, kid, "at+jwt", with("aud", 7))},
		{"sub as a number", sign(t, jose.ES256, priv, kid, "at+jwt", with("sub", 42))},
		{"exp as a string", sign(t, jose.ES256, priv, kid, "at+jwt", with("exp", "tomorrow"))},
		{"exp as a fraction", sign(t, jose.ES256, priv, kid, "at+jwt", with("exp", 1.5))},
		{"scope as an array", sign(t, jose.ES256, priv, kid, "at+jwt", with("scope", []string{"openid"}))},
		{"payload that is not JSON", sign(t, jose.ES256, priv, kid, "at+jwt", []byte("hello"))},
		{"payload that is a JSON array", sign(t, jose.ES256, priv, kid, "at+jwt", []byte("[1,2]"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.issuer.Verify(t.Context(), tt.token)
			require.Error(t, err)
			require.Equal(t, domain.AccessToken{}, got)
			require.True(t, strings.HasPrefix(err.Error(), "tokens: verify: "), err.Error())
			if tt.token != "" {
				require.NotContains(t, err.Error(), tt.token)
				for _, p := range strings.Split(tt.token, ".") {
					if len(p) > 8 {
						require.NotContains(t, err.Error(), p)
					}
				}
			}
		})
	}

	// Control: the same hand-signing path yields a token Verify accepts, so
	// the rejections above are about the one detail each case changes.
	_, err = e.issuer.Verify(t.Context(), sign(t, jose.ES256, priv, kid, "at+jwt", claims))
	require.NoError(t, err)
}

func TestVerifyAcceptsTokensUpToTheSizeLimit(t *testing.T) {
	e := newEnv(t)
	priv, kid := e.activePrivateKey(t)
	claims := sampleClaims(e.clock.Now())
	claims["pad"] = ""
	base := len(sign(t, jose.ES256, priv, kid, "at+jwt", claims))
	// Every 3 bytes of payload add 4 characters of base64url.
	claims["pad"] = strings.Repeat("x", (tokens.MaxTokenSize-base)/4*3)
	token := sign(t, jose.ES256, priv, kid, "at+jwt", claims)
	require.LessOrEqual(t, len(token), tokens.MaxTokenSize)
	require.Greater(t, len(token), tokens.MaxTokenSize-8)

	_, err := e.issuer.Verify(t.Context(), token)
	require.NoError(t, err)
}

func TestVerifyAcceptsEveryAccessTokenTypeSpelling(t *testing.T) {
	e := newEnv(t)
	priv, kid := e.activePrivateKey(t)
	for _, typ := range []string{"at+jwt", "AT+JWT", "At+Jwt", "application/at+jwt", "Application/AT+JWT"} {
		t.Run(typ, func(t *testing.T) {
			_, err := e.issuer.Verify(t.Context(), sign(t, jose.ES256, priv, kid, typ, sampleClaims(e.clock.Now())))
			require.NoError(t, err)
		})
	}
}

func TestVerifyMapsASingleElementAudienceArray(t *testing.T) {
	e := newEnv(t)
	priv, kid := e.activePrivateKey(t)
	claims := sampleClaims(e.clock.Now())
	claims["aud"] = []string{"https://proxy.example.com/mcp"}
	got, err := e.issuer.Verify(t.Context(), sign(t, jose.ES256, priv, kid, "at+jwt", claims))
	require.NoError(t, err)
	require.Equal(t, "https://proxy.example.com/mcp", got.Audience)
}

func TestVerifyDoesNotJudgeIssuerAudienceOrTime(t *testing.T) {
	e := newEnv(t)
	at := sampleToken(e.clock.Now().Add(-48 * time.Hour)) // expired a day ago
	at.Issuer = "https://someone-else.example"
	at.Audience = "https://other-resource.example"
	token, err := e.issuer.Issue(t.Context(), at)
	require.NoError(t, err)

	got, err := e.issuer.Verify(t.Context(), token)
	require.NoError(t, err, "judging iss, aud and exp is the use case's job")
	require.Equal(t, at.Issuer, got.Issuer)
	require.Equal(t, at.Audience, got.Audience)
}

func TestJWKSPublishesTheKeysThatVerifyTokens(t *testing.T) {
	e := newEnv(t)
	token, err := e.issuer.Issue(t.Context(), sampleToken(e.clock.Now()))
	require.NoError(t, err)

	doc, err := e.issuer.JWKS(t.Context())
	require.NoError(t, err)
	require.NotContains(t, string(doc), `"d"`, "no private material")

	var set jose.JSONWebKeySet
	require.NoError(t, json.Unmarshal(doc, &set))
	require.Len(t, set.Keys, 1)
	k := set.Keys[0]
	require.Equal(t, e.issuer.ActiveKeyID(), k.KeyID)
	require.Equal(t, "sig", k.Use)
	require.Equal(t, "ES256", k.Algorithm)
	require.True(t, k.IsPublic())

	// A resource server with nothing but the JWKS verifies the token.
	parsed, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	require.NoError(t, err)
	require.Equal(t, k.KeyID, parsed.Headers[0].KeyID)
	var claims jwt.Claims
	require.NoError(t, parsed.Claims(set, &claims))
	require.Equal(t, "user-42", claims.Subject)
}

func TestJWKSCallersCannotChangeWhatOthersAreServed(t *testing.T) {
	e := newEnv(t)
	first, err := e.issuer.JWKS(t.Context())
	require.NoError(t, err)
	want := bytes.Clone(first)
	clear(first)
	second, err := e.issuer.JWKS(t.Context())
	require.NoError(t, err)
	require.Equal(t, want, second)
}

func decodeSegment(t *testing.T, seg string, v any) {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, v))
}

func segment(t *testing.T, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	require.NoError(t, err)
	return base64.RawURLEncoding.EncodeToString(raw)
}

// jsonSerialization re-encodes a compact token in the flattened JSON
// serialization, which an access token never uses.
func jsonSerialization(t *testing.T, compact string) string {
	t.Helper()
	jws, err := jose.ParseSignedCompact(compact, []jose.SignatureAlgorithm{jose.ES256})
	require.NoError(t, err)
	return jws.FullSerialize()
}

// sameBytesDifferentChar returns another base64url character whose top two
// bits are those of c, for the last character of a 64-byte value.
func sameBytesDifferentChar(c byte) byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, c)
	return alphabet[i^1]
}

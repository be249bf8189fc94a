package idp

import (
	"crypto/rand"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// IDJAGType is the JWT typ of an Identity Assertion JWT Authorization
// Grant.
const IDJAGType = "oauth-id-jag+jwt"

// IDJAGClaims are the claims of an ID-JAG the IdP would issue for its user
// (sub, email) to client clientID, for the authorization server audience
// and its resource, valid for five minutes from now.
func (f *Faulty) IDJAGClaims(audience, clientID, resource string, now time.Time) map[string]any {
	return map[string]any{
		"iss":            f.TokenIssuer,
		"sub":            f.Subject,
		"aud":            audience,
		"client_id":      clientID,
		"resource":       resource,
		"jti":            rand.Text(),
		"iat":            now.Unix(),
		"exp":            now.Add(5 * time.Minute).Unix(),
		"email":          f.Email,
		"email_verified": true,
		"name":           f.Name,
	}
}

// SignJWT signs claims as the IdP signs its tokens: with its published
// key for alg (ES256 or RS256; HS256 uses the client secret), under typ.
// It is how the IdP plays an enterprise IdP issuing ID-JAGs (typ
// IDJAGType), whose keys are served at its JWKS.
func (f *Faulty) SignJWT(claims map[string]any, alg jose.SignatureAlgorithm, typ string) (string, error) {
	return f.sign(claims, alg, typ)
}

// SignRogueJWT signs claims with a key the IdP does not publish, under the
// kid of its published key: only the signature check can refuse it.
func (f *Faulty) SignRogueJWT(claims map[string]any, typ string) (string, error) {
	return f.signRogue(claims, jose.ES256, typ)
}

// UnsignedJWT builds an alg "none" token of claims.
func UnsignedJWT(claims map[string]any) (string, error) { return unsignedJWT(claims) }

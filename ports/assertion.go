package ports

import (
	"context"
	"errors"

	"github.com/oidcproxy/oidcproxy/domain"
)

// ErrUnknownKey marks an assertion whose kid names no key of the key set
// it was checked against (or, without a kid, that no key of the set could
// have signed): the signer may have rotated its keys since the set was
// cached, so the caller may fetch the set again, once, and retry.
var ErrUnknownKey = errors.New("no key of the key set matches the assertion")

// AssertionVerifier checks JWT assertions that other parties signed:
// client assertions (private_key_jwt) and ID-JAGs. It knows JOSE; the
// rules on the claims are the domain's (domain.CheckClientAssertion,
// domain.CheckIDJAG).
type AssertionVerifier interface {
	// ParseAssertion reads a compact JWS without verifying it, bounded in
	// size, so that the caller can tell whose keys to verify it with (its
	// iss and sub). Nothing it returns may be trusted before
	// VerifyAssertion accepted the same token.
	ParseAssertion(token string) (domain.Assertion, error)
	// VerifyAssertion checks token's signature with a key of keySet (a
	// JSON JWK Set document) whose kty (and alg, when the key names one)
	// fits the token's alg, which must be one of algs, and returns the
	// verified header and claims. A token with a kid is checked only
	// against keys with that kid. Errors wrap ErrUnknownKey when no key
	// fits.
	VerifyAssertion(token string, keySet []byte, algs []string) (domain.Assertion, error)
	// CheckKeySet reports whether keySet is a JWK Set a client may
	// register: public signing keys only (no private or symmetric key
	// material), each usable with one of algs, at most a handful.
	CheckKeySet(keySet []byte, algs []string) error
}

// JWKSFetcher fetches a client's JWK Set from its jwks_uri, behind the
// same SSRF guards, size cap and cache as client metadata documents.
type JWKSFetcher interface {
	// FetchJWKS returns the key set at uri, from the cache while it is
	// fresh (its max-age, clamped). fresh asks for a copy fetched after
	// the cached one grew stale or older than a minimum age (after an
	// ErrUnknownKey: the client may have rotated its keys), so that an
	// attacker sending unknown kids cannot make every request a fetch.
	FetchJWKS(ctx context.Context, uri string, fresh bool) ([]byte, error)
}

// IssuerKeys hands out the keys of the trusted enterprise IdPs whose
// ID-JAGs the jwt-bearer grant accepts, found through their discovery
// documents.
type IssuerKeys interface {
	// IssuerJWKS returns the JWK Set of the trusted issuer iss; fresh as
	// for JWKSFetcher. An issuer that is not configured is an error.
	IssuerJWKS(ctx context.Context, iss string, fresh bool) ([]byte, error)
}

// IssuerIdentifier is an identity provider that knows its issuer
// identifier (from discovery): the jwt-bearer grant gives an ID-JAG of the
// upstream IdP itself the same subject a browser login would
// (domain.IDJAGSubject).
type IssuerIdentifier interface {
	Issuer() string
}

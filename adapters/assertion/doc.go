// Package assertion checks JWT assertions that other parties sign, for the
// authorization server: client assertions (private_key_jwt, RFC 7523 2.2)
// and Identity Assertion JWT Authorization Grants (ID-JAGs) of enterprise
// IdPs (the jwt-bearer grant).
//
// Verifier (ports.AssertionVerifier) is the JOSE half: compact JWS only,
// algorithms from an allow list handed in by the caller (go-jose refuses
// every other one, "none" and the HMACs included, before anything else),
// and a key used only when its type, curve or size and its own alg fit
// the token's alg, so that no key is ever used with an algorithm it was
// not made for. Keys holding private or symmetric material are never
// used, and never accepted in a client's registration (CheckKeySet). The
// rules on the claims (issuer, audience, lifetimes, jti) are the domain's.
//
// Issuers (ports.IssuerKeys) is where the trusted enterprise IdPs' keys
// come from: their OpenID Connect discovery documents, fetched with the
// upstream HTTP client and cached by max-age. Clients' own jwks_uri key
// sets come from adapters/cimd instead, behind its SSRF guards: a client
// chooses its URL, an operator chose the IdPs'.
package assertion

package domain

import (
	"crypto/subtle"
	"encoding/base64"
)

// VerifyPKCE checks an RFC 7636 code_verifier against an S256 challenge in
// constant time. Only S256 exists here: "plain" is refused at /authorize.
func VerifyPKCE(challenge, verifier string) bool {
	if !ValidPKCEVerifier(verifier) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(S256Challenge(verifier)), []byte(challenge)) == 1
}

// S256Challenge is the RFC 7636 4.2 S256 code challenge of a verifier,
// BASE64URL(SHA256(verifier)): what the proxy sends the upstream IdP for
// its own verifier. It is the digest secrets are stored under (HashToken),
// computed by the same function.
func S256Challenge(verifier string) string { return sha256URL(verifier) }

// ValidPKCEVerifier reports whether v has the RFC 7636 4.1 form: 43 to 128
// characters of [A-Za-z0-9-._~].
func ValidPKCEVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if !isUnreserved(v[i]) {
			return false
		}
	}
	return true
}

// ValidPKCEChallenge reports whether c looks like a base64url SHA-256 digest,
// the only form an S256 challenge can take.
func ValidPKCEChallenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(c)
	return err == nil
}

func isUnreserved(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

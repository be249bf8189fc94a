package domain

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/url"
	"slices"
	"strings"
)

// maxScopeTokens bounds how many scopes a request may carry.
const maxScopeTokens = 64

// ParseScope splits a space-delimited scope parameter (RFC 6749 3.3),
// rejecting characters the grammar forbids and dropping duplicates while
// keeping order.
func ParseScope(raw string) ([]string, error) {
	if len(raw) > 4096 {
		return nil, ErrInvalidScope("scope parameter is too long")
	}
	var out []string
	for _, s := range strings.Split(raw, " ") {
		if s == "" {
			continue
		}
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
				return nil, ErrInvalidScope("scope contains a forbidden character")
			}
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
		if len(out) > maxScopeTokens {
			return nil, ErrInvalidScope("too many scopes")
		}
	}
	return out, nil
}

// JoinScope renders scopes as a scope parameter.
func JoinScope(scopes []string) string { return strings.Join(scopes, " ") }

// IsSubset reports whether every element of sub is in set.
func IsSubset(sub, set []string) bool {
	for _, s := range sub {
		if !slices.Contains(set, s) {
			return false
		}
	}
	return true
}

// VerifyPKCE checks an RFC 7636 code_verifier against an S256 challenge in
// constant time. Only S256 exists here: "plain" is refused at /authorize.
func VerifyPKCE(challenge, verifier string) bool {
	if !ValidPKCEVerifier(verifier) {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	computed := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(computed), []byte(challenge)) == 1
}

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

// CanonicalResource normalises an RFC 8707 resource indicator for
// comparison: absolute, no fragment, lower-case scheme and host, no trailing
// slash (the MCP specification's canonical server URI).
func CanonicalResource(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return "", ErrInvalidTarget("resource must be an absolute URI")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return "", ErrInvalidTarget("resource must not contain a fragment")
	}
	if u.User != nil {
		return "", ErrInvalidTarget("resource must not contain user information")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

// HashToken returns the storage key of a secret value (code, refresh token,
// transaction id, CSRF token, client secret): base64url SHA-256. The values
// hashed are 256-bit random strings, so a fast hash is enough and a store
// leak reveals nothing usable.
func HashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// EqualHash compares a secret against a stored hash in constant time.
func EqualHash(secret, hash string) bool {
	return subtle.ConstantTimeCompare([]byte(HashToken(secret)), []byte(hash)) == 1
}

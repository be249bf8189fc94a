package domain

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
)

// HashToken returns the storage key of a secret value (code, refresh token,
// transaction id, CSRF token, client secret): base64url SHA-256. The values
// hashed are 256-bit random strings, so a fast hash is enough and a store
// leak reveals nothing usable.
func HashToken(secret string) string { return sha256URL(secret) }

// EqualHash compares a secret against a stored hash in constant time.
func EqualHash(secret, hash string) bool {
	return subtle.ConstantTimeCompare([]byte(HashToken(secret)), []byte(hash)) == 1
}

// sha256URL is base64url (unpadded) SHA-256 of s: the one digest behind
// HashToken and S256Challenge.
func sha256URL(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

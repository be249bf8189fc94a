package domain

import "time"

// SigningKey is one key of oidcproxy's signing key ring. The private key is
// sealed; the public JWK is stored in the clear for JWKS.
type SigningKey struct {
	ID            string // kid
	Algorithm     string // JWS alg, e.g. ES256
	SealedPrivate []byte
	PublicJWK     []byte
	CreatedAt     time.Time
	// NotAfter is when the key stops signing (zero while it is the active
	// key); RemoveAfter is when it may leave JWKS because every token it
	// signed has expired.
	NotAfter    time.Time
	RemoveAfter time.Time
}

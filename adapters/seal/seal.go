package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/oidcproxy/oidcproxy/ports"
)

// KeySize is the size in bytes of every key this package uses (AES-256).
const KeySize = 32

// version1 tags the format version byte || 96-bit nonce || ciphertext+tag.
// The version byte lets a later format (another cipher, another nonce size)
// coexist with values sealed today.
const version1 byte = 1

const (
	nonceSize = 12 // the standard GCM nonce; random nonces are safe for 2^32 seals per key
	tagSize   = 16
	// overhead is what Seal adds to the plaintext.
	overhead = 1 + nonceSize + tagSize
)

// Errors returned by Open. They say why a sealed value was refused, never
// what it contained.
var (
	// ErrMalformed: the input is too short to be a sealed value.
	ErrMalformed = errors.New("sealed value is malformed")
	// ErrUnsupportedVersion: the input was sealed in a format this build
	// does not know.
	ErrUnsupportedVersion = errors.New("sealed value has an unsupported version")
	// ErrAuthentication: the input was tampered with, sealed under another
	// key, or bound to other associated data.
	ErrAuthentication = errors.New("sealed value failed authentication")
)

// Sealer is an AES-256-GCM ports.Sealer. It is safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

var _ ports.Sealer = (*Sealer)(nil)

// New returns a Sealer for a 32-byte key. Use DeriveKey with LabelSeal to
// obtain the key from the master key rather than using the master key
// directly.
func New(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("seal: new: key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal: new: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("seal: new: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts and authenticates plaintext, binding it to associatedData
// (which is authenticated but not stored: Open needs the same value). Every
// call uses a fresh random nonce, so sealing the same value twice gives
// different outputs.
func (s *Sealer) Seal(plaintext, associatedData []byte) ([]byte, error) {
	out := make([]byte, 1+nonceSize, overhead+len(plaintext))
	out[0] = version1
	nonce := out[1 : 1+nonceSize]
	// crypto/rand.Read does not fail on supported platforms (it crashes the
	// program instead), but the signature keeps an error for the others.
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: seal: read nonce: %w", err)
	}
	return s.aead.Seal(out, nonce, plaintext, additionalData(associatedData)), nil
}

// Open checks and decrypts a value produced by Seal with the same key and
// associated data. Errors wrap ErrMalformed, ErrUnsupportedVersion or
// ErrAuthentication.
func (s *Sealer) Open(sealed, associatedData []byte) ([]byte, error) {
	if len(sealed) < overhead {
		return nil, fmt.Errorf("seal: open: %w", ErrMalformed)
	}
	if sealed[0] != version1 {
		return nil, fmt.Errorf("seal: open: %w", ErrUnsupportedVersion)
	}
	nonce := sealed[1 : 1+nonceSize]
	plaintext, err := s.aead.Open(nil, nonce, sealed[1+nonceSize:], additionalData(associatedData))
	if err != nil {
		// GCM's own error carries no detail; ours says the same in words
		// that callers can match with errors.Is.
		return nil, fmt.Errorf("seal: open: %w", ErrAuthentication)
	}
	return plaintext, nil
}

// additionalData prefixes the caller's associated data with the version
// byte, so the version is authenticated too and a future format cannot be
// swapped in for this one.
func additionalData(ad []byte) []byte {
	out := make([]byte, 0, 1+len(ad))
	out = append(out, version1)
	return append(out, ad...)
}

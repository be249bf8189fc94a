package seal

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Labels for DeriveKey: one per purpose, so that a key derived for one use is
// useless for another. Changing a label changes the key, which would make
// every sealed value or cookie unreadable: bump the version suffix instead of
// editing a label in place.
const (
	// LabelSeal derives the AES-256-GCM key that seals values at rest.
	LabelSeal = "oidcproxy seal v1"
	// LabelCookie derives the key that signs the consent and binding cookies.
	LabelCookie = "oidcproxy cookie v1"
)

// DeriveKey derives a 32-byte key for one purpose from the master key with
// HKDF-SHA-256, using label as the HKDF info. The same master and label
// always give the same key; different labels give unrelated keys.
func DeriveKey(master []byte, label string) ([]byte, error) {
	if len(master) < KeySize {
		return nil, fmt.Errorf("seal: derive key: master key must be at least %d bytes, got %d", KeySize, len(master))
	}
	if label == "" {
		return nil, errors.New("seal: derive key: empty label")
	}
	// No salt: the master key is already uniformly random (RFC 5869 3.1
	// allows omitting the salt then), and a salt would have to be stored.
	key, err := hkdf.Key(sha256.New, master, nil, label, KeySize)
	if err != nil {
		return nil, fmt.Errorf("seal: derive key: %w", err)
	}
	return key, nil
}

// keyEncodings are the base64 alphabets a master key may be written in.
// Operators produce keys with `openssl rand -base64 32` (standard, padded),
// `head -c32 /dev/urandom | base64 -w0`, or URL-safe tools; all are accepted.
var keyEncodings = []*base64.Encoding{
	base64.StdEncoding,
	base64.RawStdEncoding,
	base64.URLEncoding,
	base64.RawURLEncoding,
}

// ParseKey decodes a base64 master key (standard or URL alphabet, padded or
// not, surrounding whitespace ignored) and checks that it is 32 bytes.
// Errors never repeat the input, which is a secret.
func ParseKey(s string) ([]byte, error) {
	key, err := decodeKey(s)
	if err != nil {
		return nil, fmt.Errorf("seal: parse key: %w", err)
	}
	return key, nil
}

func decodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("key is empty")
	}
	for _, enc := range keyEncodings {
		key, err := enc.Strict().DecodeString(s)
		if err != nil {
			continue
		}
		if len(key) != KeySize {
			return nil, fmt.Errorf("key must decode to %d bytes, got %d", KeySize, len(key))
		}
		return key, nil
	}
	// The base64 error would name an offset into the secret; say less.
	return nil, errors.New("key is not valid base64")
}

// EncodeKey renders a key the way ParseKey and key files expect it:
// standard base64 with padding.
func EncodeKey(key []byte) string {
	return base64.StdEncoding.EncodeToString(key)
}

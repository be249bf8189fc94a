package seal

import (
	"github.com/google/wire"

	"github.com/oidcproxy/oidcproxy/ports"
)

// MasterKey is the one root secret (OIDC_PROXY_ENCRYPTION_KEY, or the key
// file's content) from which a key per purpose is derived.
type MasterKey []byte

// CookieKey signs the consent and binding cookies. It is derived from the
// master key under LabelCookie, so that it never equals the sealing key.
type CookieKey []byte

// NewFromMaster builds the Sealer on the key derived from master under
// LabelSeal: the master key itself never encrypts anything.
func NewFromMaster(master MasterKey) (*Sealer, error) {
	key, err := DeriveKey(master, LabelSeal)
	if err != nil {
		return nil, err
	}
	return New(key)
}

// NewCookieKey derives the cookie signing key from master.
func NewCookieKey(master MasterKey) (CookieKey, error) {
	key, err := DeriveKey(master, LabelCookie)
	if err != nil {
		return nil, err
	}
	return key, nil
}

// ProviderSet builds the Sealer (also as ports.Sealer) and the cookie key
// from the MasterKey, which the composition root reads from its
// configuration.
var ProviderSet = wire.NewSet(NewFromMaster, NewCookieKey, wire.Bind(new(ports.Sealer), new(*Sealer)))

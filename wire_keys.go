package oidcproxy

import (
	"crypto/rand"
	"errors"
	"log/slog"
	"path/filepath"

	"github.com/google/wire"

	"github.com/oidcproxy/oidcproxy/adapters/config"
	"github.com/oidcproxy/oidcproxy/adapters/seal"
	"github.com/oidcproxy/oidcproxy/adapters/tokens"
	"github.com/oidcproxy/oidcproxy/ports"
)

// keySet reads the master key, derives the sealer and the cookie key from
// it (seal), and opens the signing key ring on the store (tokens).
var keySet = wire.NewSet(
	ProvideMasterKey,
	seal.ProviderSet,
	tokens.ProviderSet,
	ProvideKeyStore,
)

// ProvideMasterKey reads OIDC_PROXY_ENCRYPTION_KEY or, when unset, the key
// file next to the store (KeyFile, created on first start, with a warning:
// a key on the same disk as the data it protects only guards against
// leaked backups of the store alone). An in-memory store gets a key of its
// own, which is right since nothing it seals outlives the process.
func ProvideMasterKey(cfg config.Config, logger *slog.Logger) (seal.MasterKey, error) {
	if cfg.DatabaseURL != "" && cfg.EncryptionKey == "" {
		// Validate refuses this too; a key file here would differ per instance.
		return nil, errors.New("OIDC_PROXY_ENCRYPTION_KEY is required with OIDC_PROXY_DATABASE_URL")
	}
	if cfg.EncryptionKey != "" {
		key, err := cfg.EncryptionKeyBytes()
		if err != nil {
			return nil, err
		}
		return key, nil
	}
	if cfg.StorePath == MemoryStorePath {
		key := make([]byte, seal.KeySize)
		_, _ = rand.Read(key)
		return key, nil
	}
	path := KeyFile(cfg.StorePath)
	key, created, err := seal.LoadOrCreateKeyFile(path)
	if err != nil {
		return nil, err
	}
	if created {
		logger.Warn("OIDC_PROXY_ENCRYPTION_KEY is not set; created a key file next to the store. Set the variable from a secret store in production.",
			"key_file", filepath.Clean(path))
	}
	return key, nil
}

// KeyFile is the master key file that a server without
// OIDC_PROXY_ENCRYPTION_KEY keeps next to its bbolt file at storePath.
func KeyFile(storePath string) string { return storePath + ".key" }

// ProvideKeyStore is where the signing key ring lives: in the store.
func ProvideKeyStore(store ports.Store) ports.KeyStore { return store }

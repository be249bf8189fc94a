// Package seal encrypts oidcproxy's secrets at rest (sealed upstream tokens,
// signing private keys) with AES-256-GCM, and manages the one master key they
// hang on: parsing it from configuration, creating a key file when none is
// configured, and deriving a separate key per purpose with HKDF so that the
// sealing key and the cookie key never coincide.
package seal

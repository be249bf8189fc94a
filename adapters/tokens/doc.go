// Package tokens issues and verifies oidcproxy's own access tokens: RFC 9068
// JWTs (typ at+jwt) signed with ES256, and the key ring behind them.
//
// Signing keys live in a ports.KeyStore with their private half sealed (the
// key id is the associated data, so sealed keys cannot be swapped between
// records). The Issuer reads the ring once, keeps the parsed keys in memory
// and serves Issue, Verify and JWKS from that snapshot without touching the
// store; Reload, Rotate and Prune replace the snapshot atomically. The one
// exception is a token whose key id the snapshot lacks: a store shared by
// several instances may hold a key another instance has just made active,
// so Verify reloads once for it (at most once a second) before refusing.
package tokens

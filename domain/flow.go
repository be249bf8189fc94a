package domain

import (
	"fmt"
	"time"
)

// Lifetimes fixed by the protocol design rather than configuration.
const (
	// TransactionTTL bounds an authorization from /authorize to the callback
	// (the user must consent and log in upstream within it).
	TransactionTTL = 10 * time.Minute
	// CodeTTL is the lifetime of an authorization code; RFC 6749 4.1.2
	// recommends at most ten minutes, a few minutes is plenty for clients.
	CodeTTL = 5 * time.Minute
)

// Transaction is an authorization in progress: what the MCP client asked for
// and the secrets oidcproxy uses toward the upstream IdP. It is stored under
// the hash of its ID; the raw ID travels in the consent URL and, after
// consent, as the upstream state.
type Transaction struct {
	ID               string // SHA-256 of the raw id, base64url
	ClientID         string
	RedirectURI      string
	State            string // the client's state, echoed back verbatim
	CodeChallenge    string // the client's S256 challenge
	Scopes           []string
	Resource         string
	UpstreamVerifier string // our PKCE verifier toward the IdP
	Nonce            string // our OpenID nonce toward the IdP
	CSRFHash         string // hash of the CSRF token of the latest consent render
	Approved         bool   // consent given; the transaction now waits for the callback
	BindingHash      string // hash of the browser-binding secret set at approval
	CreatedAt        time.Time
	ExpiresAt        time.Time
}

// Expired reports whether the transaction may no longer be used.
func (t Transaction) Expired(now time.Time) bool { return !now.Before(t.ExpiresAt) }

// UpstreamTokens is what the IdP's token endpoint returned. It exists only
// in memory: before it reaches a store it is sealed, and it never leaves
// oidcproxy toward a client.
type UpstreamTokens struct {
	AccessToken  string    `json:"access_token,omitempty"`
	TokenType    string    `json:"token_type,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	IDToken      string    `json:"id_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	Scope        string    `json:"scope,omitempty"`
}

// grantIDRandomLen is how much of a random token a grant id keeps after
// its time prefix: 22 base64url characters, 132 bits.
const grantIDRandomLen = 22

// NewGrantID makes the id of a grant created at now from random (a
// Random.Token). It starts with the creation time in milliseconds as 12
// hex digits, so ids sort by age: a store indexing records by grant id
// then keeps the records of recent grants together, and the redemption
// of a fresh code touches what the previous ones just touched instead of
// one random place per grant. The random part keeps ids unguessable,
// though a grant id is not a secret (access tokens carry it).
func NewGrantID(now time.Time, random string) string {
	ms := max(now.UnixMilli(), 0)
	if len(random) > grantIDRandomLen {
		random = random[:grantIDRandomLen]
	}
	return fmt.Sprintf("%012x", ms) + random
}

// Grant is what a user authorized a client to do, and what every token
// issued for that authorization hangs on: deleting the grant revokes every
// access and refresh token derived from it.
type Grant struct {
	ID                 string
	ClientID           string
	Subject            string
	Identity           Identity
	Scopes             []string
	Resource           string
	SealedUpstream     []byte    // UpstreamTokens, sealed with the grant id as associated data
	UpstreamExpiry     time.Time // expiry of the upstream access token; zero if unknown
	HasUpstreamRefresh bool
	// Machine marks the grant of a machine client acting for itself
	// (client_credentials): Subject is the client id, and there is no
	// Identity and no upstream token. Its access tokens say so too
	// (AccessToken.Machine), and the gateway forwards them with a client
	// header instead of a user header.
	Machine   bool
	CreatedAt time.Time
	// LastUsedAt is when a refresh last rotated one of the grant's
	// tokens; zero until the first refresh. The rotation writes the grant
	// anyway, so recording it costs nothing; a use of an access token at
	// the gateway is not recorded, because that would add a write to every
	// proxied request.
	LastUsedAt time.Time
	ExpiresAt  time.Time
}

// Expired reports whether the grant may no longer be used.
func (g Grant) Expired(now time.Time) bool { return !now.Before(g.ExpiresAt) }

// AuthorizationCode is a one-time code handed to the client after the
// callback. It is stored under its hash and is single use: the store marks it
// redeemed atomically, and keeps the redeemed record until it expires so that
// a replay can be recognised and the grant revoked.
type AuthorizationCode struct {
	Hash          string
	ClientID      string
	RedirectURI   string
	CodeChallenge string
	GrantID       string
	Scopes        []string
	Resource      string
	IssuedAt      time.Time
	ExpiresAt     time.Time
	RedeemedAt    time.Time // zero until redeemed
}

// Redeemed reports whether the code was used (or burned) before.
func (c AuthorizationCode) Redeemed() bool { return !c.RedeemedAt.IsZero() }

// BindingName derives, from the upstream state, a short name that tells
// concurrent flows in one browser apart (it becomes part of the binding
// cookie's name). The state is public, so its hash prefix reveals nothing.
func BindingName(upstreamState string) string {
	return HashToken(upstreamState)[:16]
}

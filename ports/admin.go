package ports

import (
	"context"
	"time"

	"github.com/oidcproxy/oidcproxy/domain"
)

// The operator's side of oidcproxy: listing and deleting clients, creating
// machine clients, listing and revoking grants (`oidcproxy clients`,
// `oidcproxy grants` and the admin listener's /clients and /grants). The
// store ports below are part of Store, so every backend implements them
// and passes test/storetest; the use-case ports are grouped in Admin,
// apart from Application, because the command line builds them on a store
// alone when no server runs, without an identity provider or a key ring.

// Page bounds a listing: at most Limit records whose key sorts after After
// (byte order), so that a listing resumes where the previous page ended
// even while records come and go. Limit must be positive.
type Page struct {
	After string
	Limit int
}

// GrantFilter selects grants: every field that is set must match, so
// Subject and ClientID together select one user's grants of one client.
// An empty filter selects every grant.
type GrantFilter struct {
	Subject  string
	ClientID string
	GrantID  string
}

// IsEmpty reports whether the filter selects every grant.
func (f GrantFilter) IsEmpty() bool { return f == GrantFilter{} }

// ClientAdmin is what the operator does with clients besides what
// ClientStore does.
type ClientAdmin interface {
	// ListClients returns up to page.Limit clients whose id sorts after
	// page.After, in id order.
	ListClients(ctx context.Context, page Page) ([]domain.Client, error)
	// DeleteClient deletes a client and revokes every grant of it (as
	// RevokeGrant does, so every token issued to it dies), in one atomic
	// unit, and reports how many grants it deleted, expired ones not yet
	// swept included. An absent client is domain.ErrNotFound and nothing
	// changes.
	DeleteClient(ctx context.Context, id string) (int, error)
}

// GrantAdmin is what the operator does with grants besides what GrantStore
// does. Both methods find grants by subject and by client through an
// index, never by reading every grant.
type GrantAdmin interface {
	// ListGrants returns up to page.Limit live grants that match filter
	// and whose id sorts after page.After, in id order (grant ids start
	// with their creation time: domain.NewGrantID).
	ListGrants(ctx context.Context, filter GrantFilter, page Page, now time.Time) ([]domain.Grant, error)
	// RevokeGrants revokes every grant that matches filter, as RevokeGrant
	// does, in one atomic unit, and reports how many it deleted (expired
	// ones not yet swept included). An empty filter is refused: signing
	// everyone out is not one mistyped flag away.
	RevokeGrants(ctx context.Context, filter GrantFilter) (int, error)
}

// KeySetValidator judges the public keys an operator registers for a
// machine client that authenticates with private_key_jwt. Parsing keys is
// JOSE, which lives in an adapter.
type KeySetValidator interface {
	// ValidatePublicKeySet checks that doc is a JWK Set (RFC 7517 5) of
	// public signature keys of an accepted algorithm and size, and returns
	// the set to store: the keys as parsed, re-encoded, so that what is
	// stored is exactly what was judged. Its errors describe the problem
	// in words fit for the operator.
	ValidatePublicKeySet(doc []byte) ([]byte, error)
}

// ClientInfo is a client as the operator sees it: never its secret hash or
// its keys, only whether it has them.
type ClientInfo struct {
	ID   string
	Name string
	// Operator: created by an operator (a machine client); otherwise the
	// client registered itself at /register.
	Operator     bool
	AuthMethod   domain.AuthMethod
	GrantTypes   []string
	Scope        string
	RedirectURIs []string
	// HasJWKS and JWKSURI tell where a private_key_jwt client's public
	// keys come from.
	HasJWKS   bool
	JWKSURI   string
	CreatedAt time.Time
}

// GrantInfo is a grant as the operator sees it: who, which client, what,
// and when; never the user's claims or the sealed upstream tokens.
type GrantInfo struct {
	ID       string
	Subject  string
	ClientID string
	Scopes   []string
	Resource string
	// LastUsedAt is the grant's last refresh (domain.Grant.LastUsedAt):
	// uses of access tokens are not recorded.
	CreatedAt, LastUsedAt, ExpiresAt time.Time
}

// ListClientsCommand asks for one page of clients.
type ListClientsCommand struct {
	// After is the Next of the previous page, "" for the first.
	After string
	// Limit bounds the page; zero asks for the default size.
	Limit int
}

// ListClientsResult is one page of clients; Next, when set, is the After of
// the following page.
type ListClientsResult struct {
	Clients []ClientInfo
	Next    string
}

// ListClients lists clients.
type ListClients interface {
	Handle(ctx context.Context, cmd ListClientsCommand) (ListClientsResult, error)
}

// CreateClientCommand creates a machine client for the client_credentials
// grant: confidential, authenticated with a generated secret
// (client_secret_basic) or with a key of JWKS (private_key_jwt).
type CreateClientCommand struct {
	Name string
	// Scope is the space-separated scopes the client may ask for.
	Scope string
	// AuthMethod is client_secret_basic (the default when empty) or
	// private_key_jwt.
	AuthMethod domain.AuthMethod
	// JWKS is the client's public key set (a JWK Set document), required
	// with private_key_jwt and refused otherwise.
	JWKS []byte
}

// CreateClientResult is the new client and, for client_secret_basic, its
// secret: shown this once, stored only as a hash.
type CreateClientResult struct {
	Client       ClientInfo
	ClientSecret string
}

// CreateClient creates a machine client.
type CreateClient interface {
	Handle(ctx context.Context, cmd CreateClientCommand) (CreateClientResult, error)
}

// DeleteClientCommand deletes a client and every grant of it.
type DeleteClientCommand struct {
	ClientID string
}

// DeleteClientResult says how many grants went with the client.
type DeleteClientResult struct {
	ClientID      string
	RevokedGrants int
}

// DeleteClient deletes a client.
type DeleteClient interface {
	Handle(ctx context.Context, cmd DeleteClientCommand) (DeleteClientResult, error)
}

// ListGrantsCommand asks for one page of live grants, of one user, one
// client, or both (empty: every grant).
type ListGrantsCommand struct {
	Subject  string
	ClientID string
	After    string
	Limit    int
}

// ListGrantsResult is one page of grants; Next as in ListClientsResult.
type ListGrantsResult struct {
	Grants []GrantInfo
	Next   string
}

// ListGrants lists grants.
type ListGrants interface {
	Handle(ctx context.Context, cmd ListGrantsCommand) (ListGrantsResult, error)
}

// RevokeGrantsCommand names the grants to revoke: every grant of a user, of
// a client, or one grant; fields set together must all match. At least
// one is required.
type RevokeGrantsCommand struct {
	Subject  string
	ClientID string
	GrantID  string
}

// RevokeGrantsResult says how many grants were revoked.
type RevokeGrantsResult struct {
	Revoked int
}

// RevokeGrants revokes grants, and with them every token issued from them.
type RevokeGrants interface {
	Handle(ctx context.Context, cmd RevokeGrantsCommand) (RevokeGrantsResult, error)
}

// Admin groups the operator's use cases, which the admin listener and the
// command line drive. The composition root builds it from domain/usecase
// and may wrap each handler in a decorator, as it does Application.
type Admin struct {
	ListClients  ListClients
	CreateClient CreateClient
	DeleteClient DeleteClient
	ListGrants   ListGrants
	RevokeGrants RevokeGrants
}

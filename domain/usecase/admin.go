package usecase

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// The operator's use cases: list and delete clients, create machine
// clients, list and revoke grants. The admin listener and the command line
// drive them (ports.Admin); their audit records are written there, at the
// edge, where the actor is known.

// Page sizes of the operator's listings.
const (
	// DefaultListLimit is the page size when the command asks for none.
	DefaultListLimit = 100
	// MaxListLimit bounds a page, so one request cannot make the store
	// decode every record at once.
	MaxListLimit = 1000
)

// maxFilterLength bounds an id, subject or cursor the operator types: real
// ones are far shorter (domain.MaxSubjectLength, a client_id URL).
const maxFilterLength = 4096

// NewAdmin builds the operator's use cases on store. keys judges the
// public keys of private_key_jwt clients; supportedScopes are the scopes a
// new client may be allowed (SCOPES_SUPPORTED). Every missing dependency
// is reported at once.
func NewAdmin(store ports.Store, keys ports.KeySetValidator, clock ports.Clock, random ports.Random, supportedScopes []string) (ports.Admin, error) {
	err := need("NewAdmin", dep("store", store), dep("key set validator", keys), dep("clock", clock), dep("random source", random))
	if err != nil {
		return ports.Admin{}, err
	}
	return ports.Admin{
		ListClients:  &ListClientsHandler{clients: store},
		CreateClient: &CreateClientHandler{clients: store, keys: keys, clock: clock, random: random, supportedScopes: slices.Clone(supportedScopes)},
		DeleteClient: &DeleteClientHandler{clients: store},
		ListGrants:   &ListGrantsHandler{grants: store, clock: clock},
		RevokeGrants: &RevokeGrantsHandler{grants: store},
	}, nil
}

// ListClientsHandler lists clients a page at a time.
type ListClientsHandler struct {
	clients ports.ClientAdmin
}

var _ ports.ListClients = (*ListClientsHandler)(nil)

// Handle returns one page of clients in id order, without their secrets.
func (h *ListClientsHandler) Handle(ctx context.Context, cmd ports.ListClientsCommand) (ports.ListClientsResult, error) {
	limit, err := pageLimit(cmd.Limit)
	if err == nil {
		err = checkFilter("after", cmd.After)
	}
	if err != nil {
		return ports.ListClientsResult{}, err
	}
	// One more than asked tells whether another page follows.
	clients, err := h.clients.ListClients(ctx, ports.Page{After: cmd.After, Limit: limit + 1})
	if err != nil {
		return ports.ListClientsResult{}, serverError(fmt.Errorf("list clients: %w", err))
	}
	var res ports.ListClientsResult
	if len(clients) > limit {
		clients = clients[:limit]
		res.Next = clients[limit-1].ID
	}
	res.Clients = make([]ports.ClientInfo, 0, len(clients))
	for _, c := range clients {
		res.Clients = append(res.Clients, clientInfo(c))
	}
	return res, nil
}

// CreateClientHandler creates machine clients for the client_credentials
// grant.
type CreateClientHandler struct {
	clients         ports.ClientStore
	keys            ports.KeySetValidator
	clock           ports.Clock
	random          ports.Random
	supportedScopes []string
}

var _ ports.CreateClient = (*CreateClientHandler)(nil)

// Handle creates a confidential client that may use the client_credentials
// grant only, for the scopes it names, authenticated with a secret
// generated here (returned this once, stored as a hash) or with the
// public keys of cmd.JWKS. Its id is random, like a registered client's.
func (h *CreateClientHandler) Handle(ctx context.Context, cmd ports.CreateClientCommand) (ports.CreateClientResult, error) {
	name := strings.TrimSpace(cmd.Name)
	switch {
	case name == "":
		return ports.CreateClientResult{}, domain.ErrInvalidRequest("a name is required: it is what listings and logs show")
	case len(name) > maxClientName:
		return ports.CreateClientResult{}, domain.ErrInvalidRequest(fmt.Sprintf("the name is longer than %d bytes", maxClientName))
	case !domain.IsSafeText(name):
		return ports.CreateClientResult{}, domain.ErrInvalidRequest("the name contains control characters or is not valid UTF-8")
	}
	scopes, err := domain.ParseScope(cmd.Scope)
	if err != nil {
		return ports.CreateClientResult{}, err
	}
	for _, s := range scopes {
		if !slices.Contains(h.supportedScopes, s) {
			return ports.CreateClientResult{}, domain.ErrInvalidScope(fmt.Sprintf("scope %q is not supported (SCOPES_SUPPORTED)", clip(s)))
		}
	}
	c := domain.Client{
		Name:                    name,
		ApplicationType:         domain.ApplicationWeb,
		TokenEndpointAuthMethod: cmd.AuthMethod,
		GrantTypes:              []string{domain.GrantClientCredentials},
		Scope:                   domain.JoinScope(scopes),
		Operator:                true,
	}
	var secret string
	switch cmd.AuthMethod {
	case "", domain.AuthClientSecretBasic:
		if len(cmd.JWKS) > 0 {
			return ports.CreateClientResult{}, domain.ErrInvalidRequest("a key set is for private_key_jwt; a client_secret_basic client gets a generated secret")
		}
		c.TokenEndpointAuthMethod = domain.AuthClientSecretBasic
		secret = h.random.Token()
		c.SecretHash = []byte(domain.HashToken(secret))
	case domain.AuthPrivateKeyJWT:
		if len(cmd.JWKS) == 0 {
			return ports.CreateClientResult{}, domain.ErrInvalidRequest("private_key_jwt needs the client's public keys (a JWK Set)")
		}
		jwks, err := h.keys.ValidatePublicKeySet(cmd.JWKS)
		if err != nil {
			return ports.CreateClientResult{}, domain.ErrInvalidRequest("the key set is refused: " + err.Error())
		}
		c.JWKS = jwks
	default:
		return ports.CreateClientResult{}, domain.ErrInvalidRequest("token_endpoint_auth_method must be client_secret_basic or private_key_jwt")
	}
	c.ID = h.random.Token()
	c.CreatedAt = h.clock.Now().UTC()
	if err := h.clients.CreateClient(ctx, c); err != nil {
		return ports.CreateClientResult{}, serverError(fmt.Errorf("create client: %w", err))
	}
	return ports.CreateClientResult{Client: clientInfo(c), ClientSecret: secret}, nil
}

// DeleteClientHandler deletes clients.
type DeleteClientHandler struct {
	clients ports.ClientAdmin
}

var _ ports.DeleteClient = (*DeleteClientHandler)(nil)

// Handle deletes a registered or operator-created client and revokes every
// grant of it, so that every token issued to it stops working at once. A
// client identified by a metadata document URL is never stored: it is not
// found here, and RevokeGrants by client ends its grants.
func (h *DeleteClientHandler) Handle(ctx context.Context, cmd ports.DeleteClientCommand) (ports.DeleteClientResult, error) {
	if cmd.ClientID == "" {
		return ports.DeleteClientResult{}, domain.ErrInvalidRequest("client_id is required")
	}
	if err := checkFilter("client_id", cmd.ClientID); err != nil {
		return ports.DeleteClientResult{}, err
	}
	n, err := h.clients.DeleteClient(ctx, cmd.ClientID)
	if errors.Is(err, domain.ErrNotFound) {
		return ports.DeleteClientResult{}, errNoSuchClient(err)
	}
	if err != nil {
		return ports.DeleteClientResult{}, serverError(fmt.Errorf("delete client: %w", err))
	}
	return ports.DeleteClientResult{ClientID: cmd.ClientID, RevokedGrants: n}, nil
}

// errNoSuchClient answers a command naming a client that is not stored.
// It wraps domain.ErrNotFound, which the admin listener answers with 404.
func errNoSuchClient(cause error) error {
	return domain.ErrInvalidRequest("no stored client has this id (a client metadata document client is never stored; revoke its grants instead)").WithCause(cause)
}

// ListGrantsHandler lists live grants a page at a time.
type ListGrantsHandler struct {
	grants ports.GrantAdmin
	clock  ports.Clock
}

var _ ports.ListGrants = (*ListGrantsHandler)(nil)

// Handle returns one page of the live grants of a user, a client, both, or
// everyone, in id order (which is creation order), with when each was
// created, last refreshed and will expire.
func (h *ListGrantsHandler) Handle(ctx context.Context, cmd ports.ListGrantsCommand) (ports.ListGrantsResult, error) {
	limit, err := pageLimit(cmd.Limit)
	if err == nil {
		err = errors.Join(checkFilter("user", cmd.Subject), checkFilter("client", cmd.ClientID), checkFilter("after", cmd.After))
	}
	if err != nil {
		return ports.ListGrantsResult{}, err
	}
	filter := ports.GrantFilter{Subject: cmd.Subject, ClientID: cmd.ClientID}
	grants, err := h.grants.ListGrants(ctx, filter, ports.Page{After: cmd.After, Limit: limit + 1}, h.clock.Now().UTC())
	if err != nil {
		return ports.ListGrantsResult{}, serverError(fmt.Errorf("list grants: %w", err))
	}
	var res ports.ListGrantsResult
	if len(grants) > limit {
		grants = grants[:limit]
		res.Next = grants[limit-1].ID
	}
	res.Grants = make([]ports.GrantInfo, 0, len(grants))
	for _, g := range grants {
		res.Grants = append(res.Grants, ports.GrantInfo{
			ID: g.ID, Subject: g.Subject, ClientID: g.ClientID, Scopes: g.Scopes, Resource: g.Resource,
			CreatedAt: g.CreatedAt, LastUsedAt: g.LastUsedAt, ExpiresAt: g.ExpiresAt,
		})
	}
	return res, nil
}

// RevokeGrantsHandler revokes grants in bulk.
type RevokeGrantsHandler struct {
	grants ports.GrantAdmin
}

var _ ports.RevokeGrants = (*RevokeGrantsHandler)(nil)

// Handle revokes every grant of a user, of a client, or one grant (fields
// given together must all match), in one atomic step. A revoked grant is
// deleted, so its refresh tokens fail at once and its access tokens fail
// at the gateway's next check, which reads the grant. The upstream
// identity provider's session is left alone: only a user's own /revoke
// reaches it.
func (h *RevokeGrantsHandler) Handle(ctx context.Context, cmd ports.RevokeGrantsCommand) (ports.RevokeGrantsResult, error) {
	filter := ports.GrantFilter{Subject: cmd.Subject, ClientID: cmd.ClientID, GrantID: cmd.GrantID}
	if filter.IsEmpty() {
		return ports.RevokeGrantsResult{}, domain.ErrInvalidRequest("name a user, a client or a grant to revoke")
	}
	err := errors.Join(checkFilter("user", cmd.Subject), checkFilter("client", cmd.ClientID), checkFilter("grant", cmd.GrantID))
	if err != nil {
		return ports.RevokeGrantsResult{}, err
	}
	n, err := h.grants.RevokeGrants(ctx, filter)
	if err != nil {
		return ports.RevokeGrantsResult{}, serverError(fmt.Errorf("revoke grants: %w", err))
	}
	return ports.RevokeGrantsResult{Revoked: n}, nil
}

// pageLimit turns a command's limit into a page size: the default for
// zero, at most MaxListLimit.
func pageLimit(limit int) (int, error) {
	switch {
	case limit < 0:
		return 0, domain.ErrInvalidRequest("limit must not be negative")
	case limit == 0:
		return DefaultListLimit, nil
	}
	return min(limit, MaxListLimit), nil
}

// checkFilter refuses an id, subject or cursor no stored record can have.
func checkFilter(name, v string) error {
	if len(v) > maxFilterLength || !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
		return domain.ErrInvalidRequest(name + " is longer than any id, or not valid UTF-8 text")
	}
	return nil
}

// clientInfo is what the operator sees of a client.
func clientInfo(c domain.Client) ports.ClientInfo {
	return ports.ClientInfo{
		ID: c.ID, Name: c.Name, Operator: c.Operator, AuthMethod: c.TokenEndpointAuthMethod,
		GrantTypes: slices.Clone(c.GrantTypes), Scope: c.Scope, RedirectURIs: slices.Clone(c.RedirectURIs),
		HasJWKS: len(c.JWKS) > 0, JWKSURI: c.JWKSURI, CreatedAt: c.CreatedAt,
	}
}

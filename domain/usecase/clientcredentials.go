package usecase

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/domain/policy"
	"github.com/oidcproxy/oidcproxy/ports"
)

// minMachineGrantLifetime is the least a machine grant lives: a client
// fetching a token every few minutes reuses one grant for a day.
const minMachineGrantLifetime = 24 * time.Hour

// maxMachineGrantsCached bounds the client → grant map. Machine clients
// are the few an operator created, so it is never reached in practice;
// reaching it only costs the next token of each client one new grant.
const maxMachineGrantsCached = 10000

// ClientCredentialsHandler implements grant_type=client_credentials (RFC
// 6749 4.4, MCP SEP-1046): a machine client an operator created gets an
// access token for itself, with no person and no browser involved.
type ClientCredentialsHandler struct {
	clients  *Clients
	access   accessTokens
	clock    ports.Clock
	resource string
	admit    ports.PolicySource // nil: no admission policy
	machine  *machineGrants
}

var _ ports.ClientCredentials = (*ClientCredentialsHandler)(nil)

// NewClientCredentials builds the client_credentials grant for the
// resource; admit may be nil.
func NewClientCredentials(clients *Clients, grants ports.GrantStore, tokens ports.TokenIssuer, clock ports.Clock, random ports.Random,
	admit ports.PolicySource, resource string, policy TokenPolicy,
) (*ClientCredentialsHandler, error) {
	err := errors.Join(need("NewClientCredentials", dep("clients", clients), dep("grant store", grants), dep("token issuer", tokens),
		dep("clock", clock), dep("random source", random)), policy.validate())
	if resource == "" {
		err = errors.Join(err, errors.New("usecase: NewClientCredentials: resource is empty"))
	}
	if err != nil {
		return nil, err
	}
	if isNil(admit) {
		admit = nil
	}
	return &ClientCredentialsHandler{
		clients:  clients,
		access:   accessTokens{issuer: tokens, random: random, policy: policy},
		clock:    clock,
		resource: resource,
		admit:    admit,
		machine: &machineGrants{
			grants: grants, random: random,
			lifetime:     max(minMachineGrantLifetime, 4*policy.AccessTokenTTL),
			minRemaining: policy.AccessTokenTTL,
			live:         map[string]*machineEntry{},
		},
	}, nil
}

// Handle authenticates the client (a secret or private_key_jwt), checks
// that it is a machine client an operator created and may use this grant,
// that the scopes are within those it was created with and the resource
// is ours, asks the admission policy, and issues an access token whose
// sub is the client id, marked as a machine's. No refresh token: the
// client holds its own credentials and asks again.
func (h *ClientCredentialsHandler) Handle(ctx context.Context, cmd ports.ClientCredentialsCommand) (ports.TokenResult, error) {
	client, err := h.clients.authenticate(ctx, cmd.Client)
	if err != nil {
		return ports.TokenResult{}, err
	}
	switch {
	case client.IsPublic():
		return ports.TokenResult{}, domain.ErrUnauthorizedClient("a public client cannot use the client credentials grant")
	case !client.Operator:
		return ports.TokenResult{}, domain.ErrUnauthorizedClient("only clients an operator created may use the client credentials grant")
	case !client.AllowsGrant(domain.GrantClientCredentials):
		return ports.TokenResult{}, domain.ErrUnauthorizedClient("the client may not use the client credentials grant")
	}
	allowed, err := domain.ParseScope(client.Scope)
	if err != nil {
		return ports.TokenResult{}, serverError(fmt.Errorf("client credentials: the client's stored scope: %w", err))
	}
	scopes, err := domain.ParseScope(cmd.Scope)
	if err != nil {
		return ports.TokenResult{}, err
	}
	switch {
	case len(scopes) == 0:
		// RFC 6749 3.3: no scope asked for, the client's own apply.
		scopes = allowed
	case !domain.IsSubset(scopes, allowed):
		return ports.TokenResult{}, domain.ErrInvalidScope("the requested scope exceeds the scope the client was created with")
	}
	resource, err := domain.CheckResource(h.resource, cmd.Resource)
	if err != nil {
		return ports.TokenResult{}, err
	}
	if h.admit != nil {
		in := policy.MachineInput(client.ID, scopes)
		if d := h.admit.Policy().Admit(ctx, &in); !d.Admitted {
			return ports.TokenResult{}, domain.ErrUnauthorizedClient("the access policy does not admit this client").
				WithCause(fmt.Errorf("client credentials: admission: %s", d.Reason))
		}
	}
	now := h.clock.Now().UTC()
	grant, err := h.machine.get(ctx, client, allowed, resource, now)
	if err != nil {
		return ports.TokenResult{}, err
	}
	access, expiresIn, err := h.access.issue(ctx, grant, scopes, now)
	if err != nil {
		return ports.TokenResult{}, err
	}
	return ports.TokenResult{
		AccessToken: access,
		TokenType:   "Bearer",
		ExpiresIn:   expiresIn,
		Scope:       domain.JoinScope(scopes),
		ClientID:    client.ID,
		Subject:     grant.Subject,
		GrantID:     grant.ID,
	}, nil
}

// machineGrants hands out the grant a machine client's tokens hang on.
//
// Every token of ours hangs on a grant, so that deleting the grant revokes
// it at once (`oidcproxy grants revoke --client`, /revoke). A grant per
// token would cost a store write per token; instead each instance keeps
// the id of the client's live machine grant and issues on it until it
// nears its end, and a token's issuance costs one read of the grant (which
// the stores cache). That read is what keeps revocation working: once the
// grant is gone (revoked, swept, or changed), the next token gets a new
// grant, and the tokens of the old one are dead at the gateway. Instances
// sharing a store each keep their own grant per client, which revocation
// by client ends together.
type machineGrants struct {
	grants ports.GrantStore
	random ports.Random
	// lifetime is a new grant's; minRemaining what a grant must have left
	// to take another token (an access token's lifetime, so no token
	// outlives its grant).
	lifetime, minRemaining time.Duration

	mu   sync.RWMutex
	live map[string]*machineEntry // client id →
}

// machineEntry is one client's grant. Its mutex is held while a new grant
// is made, so that a burst of first requests makes one grant, not one
// each; requests of other clients never wait for it.
type machineEntry struct {
	mu sync.Mutex
	id string
}

// get returns the client's live machine grant for resource with scopes
// (the client's own, as it stands now), making one when there is none.
func (m *machineGrants) get(ctx context.Context, client domain.Client, scopes []string, resource string, now time.Time) (domain.Grant, error) {
	e := m.entry(client.ID)
	e.mu.Lock()
	id := e.id
	e.mu.Unlock()
	if g, ok, err := m.usable(ctx, id, client.ID, scopes, resource, now); err != nil || ok {
		return g, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.id != id {
		// Another request made a grant while this one looked.
		if g, ok, err := m.usable(ctx, e.id, client.ID, scopes, resource, now); err != nil || ok {
			return g, err
		}
	}
	g := domain.Grant{
		ID:        domain.NewGrantID(now, m.random.Token()),
		ClientID:  client.ID,
		Subject:   client.ID,
		Scopes:    slices.Clone(scopes),
		Resource:  resource,
		Machine:   true,
		CreatedAt: now,
		ExpiresAt: now.Add(m.lifetime),
	}
	if err := m.grants.CreateDirectGrant(ctx, g); err != nil {
		if errors.Is(err, ports.ErrUnavailable) {
			return domain.Grant{}, domain.ErrTemporarilyUnavailable("the server cannot issue tokens right now", err)
		}
		return domain.Grant{}, serverError(fmt.Errorf("client credentials: create grant: %w", err))
	}
	e.id = g.ID
	return g, nil
}

// entry returns the client's entry, adding it.
func (m *machineGrants) entry(clientID string) *machineEntry {
	m.mu.RLock()
	e, ok := m.live[clientID]
	m.mu.RUnlock()
	if ok {
		return e
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok = m.live[clientID]; ok {
		return e
	}
	if len(m.live) >= maxMachineGrantsCached {
		clear(m.live)
	}
	e = &machineEntry{}
	m.live[clientID] = e
	return e
}

// usable reads grant id and reports whether new tokens may hang on it:
// alive long enough, a machine grant of this client, for this resource
// and these scopes (an operator who changed the client's scope gets a
// grant that says so).
func (m *machineGrants) usable(ctx context.Context, id, clientID string, scopes []string, resource string, now time.Time) (domain.Grant, bool, error) {
	if id == "" {
		return domain.Grant{}, false, nil
	}
	g, err := m.grants.GetGrant(ctx, id, now)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return domain.Grant{}, false, nil
	case errors.Is(err, ports.ErrUnavailable):
		return domain.Grant{}, false, domain.ErrTemporarilyUnavailable("the server cannot issue tokens right now", err)
	case err != nil:
		return domain.Grant{}, false, serverError(fmt.Errorf("client credentials: get grant: %w", err))
	}
	ok := g.Machine && g.ClientID == clientID && g.Resource == resource && slices.Equal(g.Scopes, scopes) &&
		g.ExpiresAt.Sub(now) >= m.minRemaining
	return g, ok, nil
}

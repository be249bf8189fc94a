package usecase

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// maxStateLength bounds the client's state, which we store and echo.
const maxStateLength = 1024

// StartAuthorizationHandler validates /authorize requests and opens
// transactions.
type StartAuthorizationHandler struct {
	clients      *Clients
	transactions ports.TransactionStore
	upstream     upstreamLogin
	clock        ports.Clock
	random       ports.Random
	policy       AuthorizePolicy
}

var _ ports.StartAuthorization = (*StartAuthorizationHandler)(nil)

// NewStartAuthorization builds the /authorize use case.
func NewStartAuthorization(clients *Clients, transactions ports.TransactionStore, provider ports.IdentityProvider,
	clock ports.Clock, random ports.Random, policy AuthorizePolicy,
) (*StartAuthorizationHandler, error) {
	err := errors.Join(need("NewStartAuthorization", dep("clients", clients), dep("transaction store", transactions),
		dep("identity provider", provider), dep("clock", clock), dep("random source", random)), policy.validate())
	if err != nil {
		return nil, err
	}
	return &StartAuthorizationHandler{
		clients: clients, transactions: transactions,
		upstream: upstreamLogin{provider: provider, clock: clock, random: random, forwardResource: policy.ForwardResource},
		clock:    clock, random: random, policy: policy,
	}, nil
}

// Handle checks the request in the order RFC 6749 4.1.2.1 demands: client
// and redirect URI first (failures there are shown to the user, never
// redirected), then everything else (redirected to the client with error,
// state and iss).
func (h *StartAuthorizationHandler) Handle(ctx context.Context, cmd ports.StartAuthorizationCommand) (ports.StartAuthorizationResult, error) {
	var res ports.StartAuthorizationResult
	if cmd.ClientID == "" {
		return res, domain.ErrInvalidRequest("client_id is missing").WithNoRedirect()
	}
	client, err := h.clients.lookup(ctx, cmd.ClientID)
	if errors.Is(err, domain.ErrNotFound) {
		return res, domain.ErrInvalidClient("unknown client").WithNoRedirect()
	}
	if e, ok := domain.AsError(err); ok {
		// A client metadata document that cannot be used: its redirect
		// URIs are not trusted, so this is a page too.
		return res, e.WithNoRedirect()
	}
	if err != nil {
		return res, serverError(fmt.Errorf("authorize: %w", err)).WithNoRedirect()
	}
	if cmd.RedirectURI == "" {
		// OAuth 2.1 requires redirect_uri; refusing its absence also means the
		// token request can always be checked against it.
		return res, domain.ErrInvalidRequest("redirect_uri is missing").WithNoRedirect()
	}
	if !domain.MatchRedirectURI(client.RedirectURIs, cmd.RedirectURI) {
		return res, domain.ErrInvalidRequest("redirect_uri is not registered for this client").WithNoRedirect()
	}
	// From here on, errors go back to the client.
	res.RedirectURI = cmd.RedirectURI
	if len(cmd.State) > maxStateLength {
		// Not echoed: a state this long is not something to send back.
		return res, domain.ErrInvalidRequest("state is too long")
	}
	res.State = cmd.State

	if cmd.ResponseType != domain.ResponseTypeCode {
		return res, domain.ErrUnsupportedResponseType("response_type must be \"code\"")
	}
	if !client.AllowsGrant(domain.GrantAuthorizationCode) {
		return res, domain.ErrUnauthorizedClient("client may not use the authorization code grant")
	}
	if cmd.CodeChallenge == "" {
		return res, domain.ErrInvalidRequest("code_challenge is required (PKCE)")
	}
	if cmd.CodeChallengeMethod != "S256" {
		return res, domain.ErrInvalidRequest("code_challenge_method must be S256")
	}
	if !domain.ValidPKCEChallenge(cmd.CodeChallenge) {
		return res, domain.ErrInvalidRequest("code_challenge is malformed")
	}
	scopes, err := h.scopes(cmd.Scope)
	if err != nil {
		return res, err
	}
	resource, err := domain.CheckResource(h.policy.Resource, cmd.Resource)
	if err != nil {
		return res, err
	}

	now := h.clock.Now().UTC()
	txn := domain.Transaction{
		ClientID:         client.ID,
		RedirectURI:      cmd.RedirectURI,
		State:            cmd.State,
		CodeChallenge:    cmd.CodeChallenge,
		Scopes:           scopes,
		Resource:         resource,
		UpstreamVerifier: h.random.Token(),
		Nonce:            h.random.Token(),
		CreatedAt:        now,
		ExpiresAt:        now.Add(domain.TransactionTTL),
	}

	if h.consentSkippable(client.ID, scopes, cmd.RememberedConsent) {
		up, err := h.upstream.approve(txn, func(next domain.Transaction) error {
			return h.transactions.CreateTransaction(ctx, next)
		})
		if err != nil {
			return res, err
		}
		res.Upstream = &up
		return res, nil
	}
	raw := h.random.Token()
	txn.ID = domain.HashToken(raw)
	if err := h.transactions.CreateTransaction(ctx, txn); err != nil {
		return res, serverError(fmt.Errorf("authorize: create transaction: %w", err))
	}
	res.TransactionID = raw
	return res, nil
}

func (h *StartAuthorizationHandler) scopes(raw string) ([]string, error) {
	scopes, err := domain.ParseScope(raw)
	if err != nil {
		return nil, err
	}
	if len(scopes) == 0 {
		return slices.Clone(h.policy.DefaultScopes), nil
	}
	for _, s := range scopes {
		if !slices.Contains(h.policy.SupportedScopes, s) {
			return nil, domain.ErrInvalidScope(fmt.Sprintf("scope %q is not supported", clip(s)))
		}
	}
	return scopes, nil
}

func (h *StartAuthorizationHandler) consentSkippable(clientID string, scopes []string, remembered []ports.RememberedConsent) bool {
	switch h.policy.Consent {
	case domain.ConsentOff:
		return true
	case domain.ConsentRemember:
		for _, r := range remembered {
			if r.ClientID == clientID && domain.IsSubset(scopes, r.Scopes) {
				return true
			}
		}
	}
	return false
}

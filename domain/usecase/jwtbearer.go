package usecase

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/domain/policy"
	"github.com/oidcproxy/oidcproxy/ports"
)

// JWTBearerHandler implements the jwt-bearer grant (RFC 7523 2.1) for
// Identity Assertion JWT Authorization Grants: enterprise-managed
// authorization (MCP SEP-990). A client the operator listed presents an
// ID-JAG its user's enterprise IdP issued for this server, and gets an
// access token for that user without a browser: the IdP, which the
// operator trusts, decided that this user may use this client here.
type JWTBearerHandler struct {
	clients  *Clients
	verifier ports.AssertionVerifier
	keys     ports.IssuerKeys
	grants   ports.GrantStore
	replay   ports.AssertionStore
	access   accessTokens
	clock    ports.Clock
	random   ports.Random
	admit    ports.PolicySource // nil: no admission policy

	rules   domain.IDJAGPolicy
	allowed []string // client ids that may use the grant
	// upstreamIssuer is the upstream IdP's issuer identifier, "" when the
	// provider does not say (domain.IDJAGSubject).
	upstreamIssuer      string
	supported, defaults []string
	accessTTL           TokenPolicy
}

var _ ports.JWTBearer = (*JWTBearerHandler)(nil)

// NewJWTBearer builds the jwt-bearer grant from the settings
// (TrustedIDJAGIssuers, IDJAGClients, Issuer, Resource, the scopes);
// upstreamIssuer and admit may be empty and nil.
func NewJWTBearer(clients *Clients, verifier ports.AssertionVerifier, keys ports.IssuerKeys, grants ports.GrantStore, replay ports.AssertionStore,
	tokens ports.TokenIssuer, clock ports.Clock, random ports.Random, admit ports.PolicySource, upstreamIssuer string, s Settings,
) (*JWTBearerHandler, error) {
	err := errors.Join(need("NewJWTBearer", dep("clients", clients), dep("assertion verifier", verifier), dep("issuer keys", keys),
		dep("grant store", grants), dep("assertion store", replay), dep("token issuer", tokens), dep("clock", clock), dep("random source", random)),
		s.Tokens().validate())
	if !s.IDJAG() || s.Resource == "" {
		err = errors.Join(err, errors.New("usecase: NewJWTBearer: trusted issuers, clients and the resource are required"))
	}
	if err != nil {
		return nil, err
	}
	if isNil(admit) {
		admit = nil
	}
	return &JWTBearerHandler{
		clients: clients, verifier: verifier, keys: keys, grants: grants, replay: replay,
		access: accessTokens{issuer: tokens, random: random, policy: s.Tokens()},
		clock:  clock, random: random, admit: admit,
		rules: domain.IDJAGPolicy{
			Issuer:         s.Issuer,
			Resource:       s.Resource,
			TrustedIssuers: slices.Clone(s.TrustedIDJAGIssuers),
		},
		allowed:        slices.Clone(s.IDJAGClients),
		upstreamIssuer: upstreamIssuer,
		supported:      s.SupportedScopes,
		defaults:       s.Authorize().DefaultScopes,
		accessTTL:      s.Tokens(),
	}, nil
}

// Handle authenticates the client, which must be confidential and listed;
// verifies the ID-JAG with its issuer's keys (fetched again once when no
// key matches, as after a rotation); applies domain.CheckIDJAG; maps the
// user to the subject a browser login would give (domain.IDJAGSubject);
// settles the scopes (domain.IDJAGScopes); asks the admission policy;
// consumes the jti so the ID-JAG is used once; and issues an access token
// on a new grant, which revocation ends like any other. No refresh token:
// the enterprise IdP decides again at each new ID-JAG.
//
// Client problems are invalid_client or unauthorized_client; every
// problem with the assertion is invalid_grant, its description naming
// the rule it broke.
func (h *JWTBearerHandler) Handle(ctx context.Context, cmd ports.JWTBearerCommand) (ports.TokenResult, error) {
	client, err := h.clients.authenticate(ctx, cmd.Client)
	if err != nil {
		return ports.TokenResult{}, err
	}
	switch {
	case client.IsPublic():
		// A stolen ID-JAG must not be redeemable by whoever knows a
		// public client id (the draft's security considerations limit the
		// grant to confidential clients).
		return ports.TokenResult{}, domain.ErrUnauthorizedClient("a public client cannot use the jwt-bearer grant")
	case !slices.Contains(h.allowed, client.ID):
		return ports.TokenResult{}, domain.ErrUnauthorizedClient("the client may not use the jwt-bearer grant")
	case cmd.Assertion == "":
		return ports.TokenResult{}, domain.ErrInvalidRequest("assertion is missing")
	}
	unverified, err := h.verifier.ParseAssertion(cmd.Assertion)
	if err != nil {
		return ports.TokenResult{}, domain.ErrInvalidGrant("the assertion is not a well-formed JWT").WithCause(err)
	}
	if !slices.Contains(h.rules.TrustedIssuers, unverified.Issuer) {
		// Checked before any key is fetched: an untrusted iss must not
		// make the server contact anything.
		return ports.TokenResult{}, domain.ErrInvalidGrant("the assertion's issuer is not trusted")
	}
	a, err := h.verify(ctx, unverified.Issuer, cmd.Assertion)
	if err != nil {
		return ports.TokenResult{}, err
	}
	now := h.clock.Now().UTC()
	if err := domain.CheckIDJAG(a, h.rules, client.ID, now); err != nil {
		return ports.TokenResult{}, domain.ErrInvalidGrant(assertionProblem(err)).WithCause(err)
	}
	resource, err := domain.CheckResource(h.rules.Resource, cmd.Resource)
	if err != nil {
		return ports.TokenResult{}, err
	}
	identity, err := domain.IDJAGIdentity(a, h.upstreamIssuer)
	if err == nil && h.admit != nil && a.Issuer == h.upstreamIssuer {
		err = keepGroupClaims(&identity, h.admit.Policy().GroupClaims(), a.Claims)
	}
	if err != nil {
		return ports.TokenResult{}, domain.ErrInvalidGrant("the assertion's user claims cannot be used here").WithCause(err)
	}
	subject := identity.Subject
	requested, err := domain.ParseScope(cmd.Scope)
	if err != nil {
		return ports.TokenResult{}, err
	}
	scopes, err := domain.IDJAGScopes(a, requested, h.supported, h.defaults)
	if err != nil {
		return ports.TokenResult{}, err
	}
	if h.admit != nil {
		in := policy.UserInput(identity, client.ID, scopes, false)
		if d := h.admit.Policy().Admit(ctx, &in); !d.Admitted {
			return ports.TokenResult{}, domain.ErrInvalidGrant("the access policy does not admit this user").
				WithCause(fmt.Errorf("jwt-bearer: admission: %s", d.Reason))
		}
	}
	err = h.replay.ConsumeAssertionID(ctx, a.Issuer, a.JTI, now, a.ReplayExpiry())
	switch {
	case errors.Is(err, domain.ErrAlreadyConsumed):
		return ports.TokenResult{}, domain.ErrInvalidGrant("the assertion was already used")
	case errors.Is(err, ports.ErrUnavailable):
		return ports.TokenResult{}, domain.ErrTemporarilyUnavailable("the server cannot accept the assertion right now", err)
	case err != nil:
		return ports.TokenResult{}, serverError(fmt.Errorf("jwt-bearer: consume assertion: %w", err))
	}
	grant := domain.Grant{
		ID:        domain.NewGrantID(now, h.random.Token()),
		ClientID:  client.ID,
		Subject:   subject,
		Identity:  identity,
		Scopes:    scopes,
		Resource:  resource,
		CreatedAt: now,
		// No refresh token hangs on it, so it lives as long as its one
		// access token.
		ExpiresAt: now.Add(h.accessTTL.AccessTokenTTL),
	}
	if err := h.grants.CreateDirectGrant(ctx, grant); err != nil {
		if errors.Is(err, ports.ErrUnavailable) {
			return ports.TokenResult{}, domain.ErrTemporarilyUnavailable("the server cannot issue tokens right now", err)
		}
		return ports.TokenResult{}, serverError(fmt.Errorf("jwt-bearer: create grant: %w", err))
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
		Subject:     subject,
		GrantID:     grant.ID,
	}, nil
}

// verify checks the ID-JAG's signature with its issuer's keys, fetching
// them again once when no key matches (the IdP may have rotated).
func (h *JWTBearerHandler) verify(ctx context.Context, iss, token string) (domain.Assertion, error) {
	for _, fresh := range []bool{false, true} {
		set, err := h.keys.IssuerJWKS(ctx, iss, fresh)
		if err != nil {
			return domain.Assertion{}, domain.ErrTemporarilyUnavailable("the assertion issuer's keys cannot be retrieved right now", err)
		}
		a, err := h.verifier.VerifyAssertion(token, set, domain.AssertionAlgorithms)
		if err == nil {
			return a, nil
		}
		if !errors.Is(err, ports.ErrUnknownKey) {
			return domain.Assertion{}, domain.ErrInvalidGrant("the assertion's signature is not valid").WithCause(err)
		}
	}
	return domain.Assertion{}, domain.ErrInvalidGrant("the assertion's signature is not valid").
		WithCause(errors.New("jwt-bearer: no key of the issuer matches"))
}

// assertionProblem is the description of a refused assertion: the rule it
// broke (domain.AssertionError's reason, which quotes no value of it).
func assertionProblem(err error) string {
	var e *domain.AssertionError
	if errors.As(err, &e) {
		return "the assertion is not acceptable: " + e.Reason
	}
	return "the assertion is not acceptable"
}

// keepGroupClaims copies into id.Claims each group claim the policy names,
// with the rule a sign-in applies (policy.ClaimPath.Keep): whole, or the
// identity is refused.
func keepGroupClaims(id *domain.Identity, paths []policy.ClaimPath, all map[string]any) error {
	for _, path := range paths {
		if id.Claims == nil {
			id.Claims = map[string]any{}
		}
		if err := path.Keep(id.Claims, all); err != nil {
			return err
		}
	}
	if len(id.Claims) == 0 {
		id.Claims = nil
	}
	return nil
}

package usecase

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// CompleteCallbackHandler finishes the upstream login: it consumes the
// transaction, exchanges the upstream code, records the grant and mints our
// authorization code.
type CompleteCallbackHandler struct {
	transactions ports.TransactionStore
	grants       ports.GrantStore
	provider     ports.IdentityProvider
	admission    admission
	sealer       ports.Sealer
	clock        ports.Clock
	random       ports.Random
	// grantTTL is a new grant's lifetime (REFRESH_TOKEN_TTL; refreshes
	// extend it).
	grantTTL time.Duration
}

var _ ports.CompleteCallback = (*CompleteCallbackHandler)(nil)

// NewCompleteCallback builds the callback use case. policies is the access
// policy the signed-in user must be admitted by; nil admits everyone the
// IdP signs in.
func NewCompleteCallback(transactions ports.TransactionStore, grants ports.GrantStore, provider ports.IdentityProvider,
	policies ports.PolicySource, sealer ports.Sealer, clock ports.Clock, random ports.Random, grantTTL time.Duration,
) (*CompleteCallbackHandler, error) {
	err := need("NewCompleteCallback", dep("transaction store", transactions), dep("grant store", grants),
		dep("identity provider", provider), dep("sealer", sealer), dep("clock", clock), dep("random source", random))
	if grantTTL <= 0 {
		err = errors.Join(err, errors.New("usecase: NewCompleteCallback: the grant lifetime must be positive"))
	}
	if err != nil {
		return nil, err
	}
	return &CompleteCallbackHandler{transactions: transactions, grants: grants, provider: provider,
		admission: newAdmission(policies, provider), sealer: sealer, clock: clock, random: random, grantTTL: grantTTL}, nil
}

// upstreamErrors maps the IdP's error codes (RFC 6749 4.1.2.1, OpenID
// Connect Core 3.1.2.6) onto the ones we send the client. The IdP's
// description is never forwarded: it can carry internal detail or
// attacker-chosen text.
//   - The user or the IdP's policy refused: access_denied.
//   - The IdP refused our own request (unknown client, wrong redirect URI or
//     parameters at the IdP): that is the proxy's configuration, for the
//     operator to fix, so server_error.
//   - Anything else, the IdP's server_error included, is the IdP failing:
//     temporarily_unavailable, so the client may try again (see
//     upstreamError).
var upstreamErrors = map[string]domain.ErrorCode{
	"access_denied":              domain.CodeAccessDenied,
	"login_required":             domain.CodeAccessDenied,
	"consent_required":           domain.CodeAccessDenied,
	"interaction_required":       domain.CodeAccessDenied,
	"account_selection_required": domain.CodeAccessDenied,
	"invalid_scope":              domain.CodeInvalidScope,
	"invalid_request":            domain.CodeServerError,
	"unauthorized_client":        domain.CodeServerError,
	"unsupported_response_type":  domain.CodeServerError,
	"invalid_request_uri":        domain.CodeServerError,
	"invalid_request_object":     domain.CodeServerError,
	"request_not_supported":      domain.CodeServerError,
	"request_uri_not_supported":  domain.CodeServerError,
	"registration_not_supported": domain.CodeServerError,
}

// upstreamError is what the client is told when the IdP answered the
// authorization request with an error. The cause names the IdP's code
// (clipped: it is the IdP's text) for the operator.
func upstreamError(code string) *domain.Error {
	cause := fmt.Errorf("callback: identity provider returned error %q", clip(code))
	switch upstreamErrors[code] {
	case domain.CodeAccessDenied:
		return domain.ErrAccessDenied("the identity provider did not authorize the request").WithCause(cause)
	case domain.CodeInvalidScope:
		return domain.ErrInvalidScope("the identity provider did not authorize the request").WithCause(cause)
	case domain.CodeServerError:
		return serverError(cause)
	default:
		return domain.ErrTemporarilyUnavailable("the identity provider could not complete the sign-in; try again", cause)
	}
}

// Handle implements the callback. Errors before the transaction is known and
// bound to this browser are shown as a page; later ones go to the client.
func (h *CompleteCallbackHandler) Handle(ctx context.Context, cmd ports.CompleteCallbackCommand) (ports.CompleteCallbackResult, error) {
	var res ports.CompleteCallbackResult
	if cmd.State == "" {
		return res, domain.ErrInvalidRequest("the identity provider's response has no state").WithNoRedirect()
	}
	now := h.clock.Now().UTC()
	txn, err := h.transactions.ConsumeTransaction(ctx, domain.HashToken(cmd.State), now, func(t domain.Transaction) error {
		if !t.Approved {
			return domain.ErrInvalidRequest("the identity provider's response does not match an approved request").WithNoRedirect()
		}
		if cmd.BindingSecret == "" || !domain.EqualHash(cmd.BindingSecret, t.BindingHash) {
			// Login CSRF defence: the browser finishing the flow must be the
			// one that approved it.
			return domain.ErrAccessDenied("this browser did not start this sign-in; start again from your application").WithNoRedirect()
		}
		return nil
	})
	if err != nil {
		if e, ok := domain.AsError(err); ok {
			return res, e
		}
		if errors.Is(err, domain.ErrNotFound) {
			return res, errUnknownTransaction(err)
		}
		return res, serverError(fmt.Errorf("callback: consume transaction: %w", err)).WithNoRedirect()
	}
	res.RedirectURI, res.State = txn.RedirectURI, txn.State

	if cmd.Error != "" {
		return res, upstreamError(cmd.Error)
	}
	if cmd.Code == "" {
		return res, serverError(errors.New("callback: identity provider returned neither code nor error"))
	}

	identity, upstream, err := h.provider.Exchange(ctx, ports.ExchangeRequest{
		Code:     cmd.Code,
		Verifier: txn.UpstreamVerifier,
		Nonce:    txn.Nonce,
		Issuer:   cmd.Issuer,
	})
	if err != nil {
		// Whatever the provider said, the client sees only a code that is
		// valid in an authorization response (RFC 6749 4.1.2.1).
		code := domain.CodeAccessDenied
		switch domain.CodeOf(err) {
		case domain.CodeTemporarilyUnavailable:
			code = domain.CodeTemporarilyUnavailable
		case domain.CodeServerError:
			code = domain.CodeServerError
		}
		return res, &domain.Error{Code: code, Description: "the identity provider's response could not be accepted", Err: fmt.Errorf("callback: exchange: %w", err)}
	}
	if err := identity.Validate(); err != nil {
		// The IdP verified who the user is, but what it says cannot be
		// carried safely (a subject that breaks a header, an address that
		// is not one): no grant is made from it.
		return res, domain.ErrAccessDenied("the identity provider's account details cannot be used here").
			WithCause(fmt.Errorf("callback: %w", err))
	}
	// Decided before anything is stored: a refused user leaves no grant.
	if refused := h.admission.check(ctx, identity, txn.ClientID, txn.Scopes); refused != nil {
		return res, errNotAdmitted(refused)
	}

	grant := domain.Grant{
		ID:                 domain.NewGrantID(now, h.random.Token()),
		ClientID:           txn.ClientID,
		Subject:            identity.Subject,
		Identity:           identity,
		Scopes:             txn.Scopes,
		Resource:           txn.Resource,
		UpstreamExpiry:     upstream.Expiry.UTC(),
		HasUpstreamRefresh: upstream.RefreshToken != "",
		CreatedAt:          now,
		ExpiresAt:          now.Add(h.grantTTL),
	}
	if grant.SealedUpstream, err = sealUpstream(h.sealer, grant.ID, upstream); err != nil {
		return res, serverError(fmt.Errorf("callback: %w", err))
	}
	code := h.random.Token()
	record := domain.AuthorizationCode{
		Hash:          domain.HashToken(code),
		ClientID:      txn.ClientID,
		RedirectURI:   txn.RedirectURI,
		CodeChallenge: txn.CodeChallenge,
		GrantID:       grant.ID,
		Scopes:        txn.Scopes,
		Resource:      txn.Resource,
		IssuedAt:      now,
		ExpiresAt:     now.Add(domain.CodeTTL),
	}
	if err := h.grants.CreateGrant(ctx, grant, record); err != nil {
		return res, serverError(fmt.Errorf("callback: create grant: %w", err))
	}
	res.Code = code
	return res, nil
}

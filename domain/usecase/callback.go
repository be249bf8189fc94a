package usecase

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// CompleteCallbackHandler finishes the upstream login: it consumes the
// transaction, exchanges the upstream code, records the grant and mints our
// authorization code.
type CompleteCallbackHandler struct{ d Deps }

var _ ports.CompleteCallback = (*CompleteCallbackHandler)(nil)

// upstreamErrors maps the IdP's error codes onto the ones we send the
// client. The IdP's description is never forwarded: it can carry internal
// detail or attacker-chosen text.
var upstreamErrors = map[string]func(string) *domain.Error{
	"access_denied":              domain.ErrAccessDenied,
	"login_required":             domain.ErrAccessDenied,
	"consent_required":           domain.ErrAccessDenied,
	"interaction_required":       domain.ErrAccessDenied,
	"account_selection_required": domain.ErrAccessDenied,
	"invalid_scope":              domain.ErrInvalidScope,
	"temporarily_unavailable": func(d string) *domain.Error {
		return domain.ErrTemporarilyUnavailable(d, nil)
	},
}

// Handle implements the callback. Errors before the transaction is known and
// bound to this browser are shown as a page; later ones go to the client.
func (h *CompleteCallbackHandler) Handle(ctx context.Context, cmd ports.CompleteCallbackCommand) (ports.CompleteCallbackResult, error) {
	var res ports.CompleteCallbackResult
	if cmd.State == "" {
		return res, noRedirect(domain.ErrInvalidRequest("the identity provider's response has no state"))
	}
	now := h.d.Clock.Now().UTC()
	txn, err := h.d.Store.ConsumeTransaction(ctx, domain.HashToken(cmd.State), now, func(t domain.Transaction) error {
		if !t.Approved {
			return noRedirect(domain.ErrInvalidRequest("the identity provider's response does not match an approved request"))
		}
		if cmd.BindingSecret == "" || !domain.EqualHash(cmd.BindingSecret, t.BindingHash) {
			// Login CSRF defence: the browser finishing the flow must be the
			// one that approved it.
			return noRedirect(domain.ErrAccessDenied("this browser did not start this sign-in; start again from your application"))
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
		return res, noRedirect(domain.ErrServerError(fmt.Errorf("callback: consume transaction: %w", err)))
	}
	res.RedirectURI, res.State = txn.RedirectURI, txn.State

	if cmd.Error != "" {
		mk, ok := upstreamErrors[cmd.Error]
		if !ok {
			return res, domain.ErrServerError(fmt.Errorf("callback: identity provider returned error %q", clip(cmd.Error)))
		}
		return res, mk("the identity provider did not authorize the request")
	}
	if cmd.Code == "" {
		return res, domain.ErrServerError(errors.New("callback: identity provider returned neither code nor error"))
	}

	identity, upstream, err := h.d.Provider.Exchange(ctx, ports.ExchangeRequest{
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
	if identity.Subject == "" {
		return res, domain.ErrAccessDenied("the identity provider did not identify the user").WithCause(errors.New("callback: empty subject"))
	}

	grant := domain.Grant{
		ID:                 domain.NewGrantID(now, h.d.Random.Token()),
		ClientID:           txn.ClientID,
		Subject:            identity.Subject,
		Identity:           identity,
		Scopes:             txn.Scopes,
		Resource:           txn.Resource,
		UpstreamExpiry:     upstream.Expiry.UTC(),
		HasUpstreamRefresh: upstream.RefreshToken != "",
		CreatedAt:          now,
		ExpiresAt:          now.Add(h.d.Settings.RefreshTokenTTL),
	}
	if grant.SealedUpstream, err = sealUpstream(h.d.Sealer, grant.ID, upstream); err != nil {
		return res, domain.ErrServerError(fmt.Errorf("callback: %w", err))
	}
	code := h.d.Random.Token()
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
	if err := h.d.Store.CreateGrant(ctx, grant, record); err != nil {
		return res, domain.ErrServerError(fmt.Errorf("callback: create grant: %w", err))
	}
	res.Code = code
	return res, nil
}

// sealUpstream encrypts the upstream tokens bound to the grant id.
func sealUpstream(s ports.Sealer, grantID string, t domain.UpstreamTokens) ([]byte, error) {
	plain, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("encode upstream tokens: %w", err)
	}
	sealed, err := s.Seal(plain, []byte(grantID))
	if err != nil {
		return nil, fmt.Errorf("seal upstream tokens: %w", err)
	}
	return sealed, nil
}

// openUpstream decrypts a grant's upstream tokens.
func openUpstream(s ports.Sealer, g domain.Grant) (domain.UpstreamTokens, error) {
	var t domain.UpstreamTokens
	plain, err := s.Open(g.SealedUpstream, []byte(g.ID))
	if err != nil {
		return t, fmt.Errorf("open upstream tokens: %w", err)
	}
	if err := json.Unmarshal(plain, &t); err != nil {
		return t, fmt.Errorf("decode upstream tokens: %w", err)
	}
	return t, nil
}

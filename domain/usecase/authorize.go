package usecase

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
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
type StartAuthorizationHandler struct{ d Deps }

var _ ports.StartAuthorization = (*StartAuthorizationHandler)(nil)

// Handle checks the request in the order RFC 6749 4.1.2.1 demands: client
// and redirect URI first (failures there are shown to the user, never
// redirected), then everything else (redirected to the client with error,
// state and iss).
func (h *StartAuthorizationHandler) Handle(ctx context.Context, cmd ports.StartAuthorizationCommand) (ports.StartAuthorizationResult, error) {
	var res ports.StartAuthorizationResult
	if cmd.ClientID == "" {
		return res, noRedirect(domain.ErrInvalidRequest("client_id is missing"))
	}
	client, err := lookupClient(ctx, h.d, cmd.ClientID)
	if errors.Is(err, domain.ErrNotFound) {
		return res, noRedirect(domain.ErrInvalidClient("unknown client"))
	}
	if e, ok := domain.AsError(err); ok {
		// A client metadata document that cannot be used: its redirect
		// URIs are not trusted, so this is a page too.
		return res, noRedirect(e)
	}
	if err != nil {
		return res, noRedirect(domain.ErrServerError(fmt.Errorf("authorize: %w", err)))
	}
	if cmd.RedirectURI == "" {
		// OAuth 2.1 requires redirect_uri; refusing its absence also means the
		// token request can always be checked against it.
		return res, noRedirect(domain.ErrInvalidRequest("redirect_uri is missing"))
	}
	if !domain.MatchRedirectURI(client.RedirectURIs, cmd.RedirectURI) {
		return res, noRedirect(domain.ErrInvalidRequest("redirect_uri is not registered for this client"))
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
	resource, err := h.resource(cmd.Resource)
	if err != nil {
		return res, err
	}

	now := h.d.Clock.Now().UTC()
	txn := domain.Transaction{
		ClientID:         client.ID,
		RedirectURI:      cmd.RedirectURI,
		State:            cmd.State,
		CodeChallenge:    cmd.CodeChallenge,
		Scopes:           scopes,
		Resource:         resource,
		UpstreamVerifier: h.d.Random.Token(),
		Nonce:            h.d.Random.Token(),
		CreatedAt:        now,
		ExpiresAt:        now.Add(domain.TransactionTTL),
	}

	if h.consentSkippable(client.ID, scopes, cmd.RememberedConsent) {
		up, err := approve(ctx, h.d, txn, func(next domain.Transaction) error {
			return h.d.Store.CreateTransaction(ctx, next)
		})
		if err != nil {
			return res, err
		}
		res.Upstream = &up
		return res, nil
	}
	raw := h.d.Random.Token()
	txn.ID = domain.HashToken(raw)
	if err := h.d.Store.CreateTransaction(ctx, txn); err != nil {
		return res, domain.ErrServerError(fmt.Errorf("authorize: create transaction: %w", err))
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
		return slices.Clone(h.d.Settings.DefaultScopes), nil
	}
	for _, s := range scopes {
		if !slices.Contains(h.d.Settings.SupportedScopes, s) {
			return nil, domain.ErrInvalidScope(fmt.Sprintf("scope %q is not supported", clip(s)))
		}
	}
	return scopes, nil
}

// resource resolves RFC 8707 resource indicators: none means our MCP
// server; otherwise every one must name it (we issue one audience).
func (h *StartAuthorizationHandler) resource(values []string) (string, error) {
	return checkResource(h.d.Settings.Resource, values)
}

func checkResource(want string, values []string) (string, error) {
	for _, v := range values {
		c, err := domain.CanonicalResource(v)
		if err != nil {
			return "", err
		}
		if c != want {
			return "", domain.ErrInvalidTarget("resource is not served by this authorization server")
		}
	}
	return want, nil
}

func (h *StartAuthorizationHandler) consentSkippable(clientID string, scopes []string, remembered []ports.RememberedConsent) bool {
	switch h.d.Settings.Consent {
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

// approve turns a transaction into an approved one keyed by a fresh upstream
// state, stores it with save, and builds the redirect to the IdP. The state
// exists only from here on, so a consent page cannot be skipped by guessing
// it.
func approve(ctx context.Context, d Deps, txn domain.Transaction, save func(domain.Transaction) error) (ports.UpstreamRedirect, error) {
	state := d.Random.Token()
	binding := d.Random.Token()
	now := d.Clock.Now().UTC()
	next := txn
	next.ID = domain.HashToken(state)
	next.Approved = true
	next.CSRFHash = ""
	next.BindingHash = domain.HashToken(binding)
	next.ExpiresAt = now.Add(domain.TransactionTTL)
	if err := save(next); err != nil {
		return ports.UpstreamRedirect{}, asOAuth(err, "approve: save transaction")
	}
	req := ports.AuthCodeRequest{
		State:         state,
		Nonce:         next.Nonce,
		CodeChallenge: s256(next.UpstreamVerifier),
		Scopes:        next.Scopes,
	}
	if d.Settings.ForwardResource {
		req.Resource = next.Resource
	}
	return ports.UpstreamRedirect{
		URL:           d.Provider.AuthCodeURL(req),
		BindingSecret: binding,
		BindingName:   domain.BindingName(state),
	}, nil
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// noRedirect marks an error that must be shown to the user instead of being
// sent to a redirect URI that was not (or could not be) validated.
func noRedirect(e *domain.Error) *domain.Error {
	e.NoRedirect = true
	return e
}

// asOAuth passes OAuth errors through and turns anything else into a
// server_error whose cause names the failed step.
func asOAuth(err error, step string) error {
	if _, ok := domain.AsError(err); ok {
		return err
	}
	if errors.Is(err, domain.ErrNotFound) {
		return domain.ErrInvalidRequest("the authorization request is unknown or has expired").WithCause(err)
	}
	return domain.ErrServerError(fmt.Errorf("%s: %w", step, err))
}

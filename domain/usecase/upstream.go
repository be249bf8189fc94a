package usecase

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// upstreamLogin sends an approved authorization to the upstream IdP: the
// step that StartAuthorization (consent not needed) and Consent (consent
// given) share.
type upstreamLogin struct {
	provider        ports.IdentityProvider
	clock           ports.Clock
	random          ports.Random
	forwardResource bool
}

// approve turns a transaction into an approved one keyed by a fresh upstream
// state, stores it with save, and builds the redirect to the IdP. The state
// exists only from here on, so a consent page cannot be skipped by guessing
// it.
func (u upstreamLogin) approve(txn domain.Transaction, save func(domain.Transaction) error) (ports.UpstreamRedirect, error) {
	state := u.random.Token()
	binding := u.random.Token()
	now := u.clock.Now().UTC()
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
		CodeChallenge: domain.S256Challenge(next.UpstreamVerifier),
		Scopes:        next.Scopes,
	}
	if u.forwardResource {
		req.Resource = next.Resource
	}
	return ports.UpstreamRedirect{
		URL:           u.provider.AuthCodeURL(req),
		BindingSecret: binding,
		BindingName:   domain.BindingName(state),
	}, nil
}

// upstreamExpired reports whether the upstream access token behind the grant
// has expired (with a little margin, so a token we mint is not outlived by
// the upstream one by seconds).
func upstreamExpired(g domain.Grant, now time.Time) bool {
	return !g.UpstreamExpiry.IsZero() && !now.Add(30*time.Second).Before(g.UpstreamExpiry)
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

package domain

import "time"

// CodeUse is what a store asks while it redeems an authorization code
// (ports.GrantStore.RedeemCode): whether the presenter may use the code
// (Check), and which refresh token to store with the redemption (Issue;
// nil for none). Both are pure decisions on the code and grant the store
// read: a store may ask them inside its transaction, and only one of
// concurrent redemptions of a code reaches Issue.
type CodeUse interface {
	// Check accepts the presenter of c, or says why not: a presenter
	// refused on a code not yet redeemed burns the code with its grant.
	Check(c AuthorizationCode) error
	// Issue returns the refresh token to store for the redemption of c
	// (RedeemedAt set), nil for none; an error burns the code with g.
	Issue(c AuthorizationCode, g Grant) (*RefreshToken, error)
}

// CodeUseFuncs is a CodeUse made of two functions, for callers whose
// decisions are not a token request's (a migration, a test).
type CodeUseFuncs struct {
	CheckFunc func(AuthorizationCode) error
	IssueFunc func(AuthorizationCode, Grant) (*RefreshToken, error)
}

// Check implements CodeUse.
func (f CodeUseFuncs) Check(c AuthorizationCode) error { return f.CheckFunc(c) }

// Issue implements CodeUse.
func (f CodeUseFuncs) Issue(c AuthorizationCode, g Grant) (*RefreshToken, error) {
	return f.IssueFunc(c, g)
}

// CodeRedemption is the CodeUse of a token request (RFC 6749 4.1.3 with
// RFC 7636 and RFC 8707): the presenter must be the client the code was
// issued to, name the same redirect URI, prove the PKCE verifier and ask
// for no other resource; the redemption stores a refresh token of
// RefreshTTL (capped at the grant's expiry) under RefreshHash, none when
// RefreshHash is empty. It is a plain value, so a store can also state its
// rule as a condition of one statement (Claim) and decide the usual case
// in a single round trip.
type CodeRedemption struct {
	ClientID    string
	RedirectURI string
	Verifier    string
	// Resources are the request's resource parameters, as sent.
	Resources   []string
	RefreshHash string
	RefreshTTL  time.Duration
	// Now is the time of the request, the store's now.
	Now time.Time
}

// Check implements CodeUse: the request matches what the code was issued
// for.
func (r CodeRedemption) Check(c AuthorizationCode) error {
	if c.ClientID != r.ClientID {
		return ErrInvalidGrant("authorization code was issued to another client")
	}
	if c.RedirectURI != r.RedirectURI {
		return ErrInvalidGrant("redirect_uri does not match the authorization request")
	}
	if !VerifyPKCE(c.CodeChallenge, r.Verifier) {
		return ErrInvalidGrant("PKCE verification failed")
	}
	if _, err := CheckResource(c.Resource, r.Resources); err != nil {
		return err
	}
	return nil
}

// Issue implements CodeUse. A grant whose upstream session has ended
// (Grant.UpstreamSessionEnded) gets no tokens.
func (r CodeRedemption) Issue(c AuthorizationCode, g Grant) (*RefreshToken, error) {
	if g.UpstreamSessionEnded(r.Now) {
		return nil, ErrUpstreamSessionEnded()
	}
	if r.RefreshHash == "" {
		return nil, nil
	}
	return &RefreshToken{
		Hash:      r.RefreshHash,
		GrantID:   g.ID,
		ClientID:  r.ClientID,
		Scopes:    c.Scopes,
		IssuedAt:  r.Now,
		ExpiresAt: r.RefreshExpiry(g),
	}, nil
}

// RefreshExpiry is when the refresh token Issue stores for g expires: its
// lifetime from now, but never after the grant.
func (r CodeRedemption) RefreshExpiry(g Grant) time.Time {
	if exp := r.Now.Add(r.RefreshTTL); exp.Before(g.ExpiresAt) {
		return exp
	}
	return g.ExpiresAt
}

// CodeClaim is CodeRedemption's rule as the equalities a store can test in
// the statement that claims the code: a code not yet redeemed, live, with
// a live grant whose upstream session has not ended, passes Check and
// Issue exactly when its client, redirect URI and challenge equal these
// and its resource equals every one of Resources (none: any).
type CodeClaim struct {
	ClientID    string
	RedirectURI string
	// Challenge is the S256 challenge of the presented verifier.
	Challenge string
	// Resources are the canonical forms of the request's resources.
	Resources []string
}

// Claim returns the redemption's CodeClaim, or false when the request
// can only fail Check (a malformed verifier or resource): the store then
// decides on the code it reads, which burns it.
func (r CodeRedemption) Claim() (CodeClaim, bool) {
	if !ValidPKCEVerifier(r.Verifier) {
		return CodeClaim{}, false
	}
	resources := make([]string, 0, len(r.Resources))
	for _, v := range r.Resources {
		c, err := CanonicalResource(v)
		if err != nil {
			return CodeClaim{}, false
		}
		resources = append(resources, c)
	}
	return CodeClaim{ClientID: r.ClientID, RedirectURI: r.RedirectURI, Challenge: S256Challenge(r.Verifier), Resources: resources}, true
}

// UpstreamSessionEnded reports whether the upstream access token the
// grant holds has expired with no refresh token to renew it: the user must
// sign in again, and the grant issues nothing more.
func (g Grant) UpstreamSessionEnded(now time.Time) bool {
	return !g.HasUpstreamRefresh && !g.UpstreamExpiry.IsZero() && !g.UpstreamExpiry.After(now)
}

// ErrUpstreamSessionEnded is the refusal of a grant whose upstream session
// has ended (Grant.UpstreamSessionEnded).
func ErrUpstreamSessionEnded() *Error {
	return ErrInvalidGrant("the upstream session has expired; sign in again")
}

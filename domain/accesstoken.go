package domain

import (
	"slices"
	"time"
)

// AccessToken is the content of an access token oidcproxy issues (an RFC
// 9068 JWT once encoded by the token adapter).
type AccessToken struct {
	Issuer    string
	Subject   string
	Audience  string
	ClientID  string
	Scopes    []string
	GrantID   string
	JTI       string
	IssuedAt  time.Time
	NotBefore time.Time
	ExpiresAt time.Time
	// Machine marks a token a machine client got for itself
	// (client_credentials): its Subject is its ClientID and it carries no
	// user claims. It is encoded as the claim gty = "client_credentials".
	Machine bool
	// KeyID names the signing key; set by the issuer and the verifier.
	KeyID string
}

// HasScopes reports whether the token carries every scope in required.
func (t AccessToken) HasScopes(required []string) bool {
	for _, s := range required {
		if !slices.Contains(t.Scopes, s) {
			return false
		}
	}
	return true
}

// ExpiredAt reports whether the token is dead at now: from its exp on
// (RFC 7519 4.1.4). Our tokens are judged without clock leeway: the clock
// that stamped exp is the clock that judges it, so there is no skew to
// forgive, and a leeway would only let a token live past the lifetime the
// operator configured (RFC 9068 4: the resource server MUST check exp).
// Leeway belongs where another party's clock stamped the time (the
// upstream ID tokens, which the provider adapter verifies).
func (t AccessToken) ExpiredAt(now time.Time) bool { return !now.Before(t.ExpiresAt) }

// NotYetValidAt reports whether now is before the token's nbf (RFC 7519
// 4.1.5), also without leeway; a zero NotBefore never holds a token back.
func (t AccessToken) NotYetValidAt(now time.Time) bool { return now.Before(t.NotBefore) }

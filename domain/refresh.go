package domain

import "time"

// RefreshToken is an opaque refresh token, stored under its hash. Rotation
// marks the old token and records its successor; the rotated record stays
// until it expires, so that its reuse is recognised as theft.
type RefreshToken struct {
	Hash          string
	GrantID       string
	ClientID      string
	Scopes        []string
	IssuedAt      time.Time
	ExpiresAt     time.Time
	RotatedAt     time.Time // zero while this is the live token of its grant
	SuccessorHash string
}

// Rotated reports whether the token was already exchanged for a successor.
func (r RefreshToken) Rotated() bool { return !r.RotatedAt.IsZero() }

// RefreshUse is one presentation of a refresh token at the token endpoint:
// the authenticated client presenting it, and the retry window the
// operator allows (REFRESH_REUSE_GRACE).
type RefreshUse struct {
	ClientID string
	// Grace is how long after a token's rotation a second use of it by
	// the same client is taken for a retry after a lost response rather
	// than for theft; zero makes every second use theft.
	Grace time.Duration
}

// RefreshDecision is what presenting a refresh token does.
type RefreshDecision int

// The decisions of DecideRefresh.
const (
	// RefreshRotate: the token is live; it is marked rotated and a
	// successor is issued.
	RefreshRotate RefreshDecision = iota + 1
	// RefreshRetry: the token was rotated moments ago, its successor has
	// never been used and the same client presents it again: the response
	// that carried the successor was most likely lost. A new successor is
	// issued and the unused one is withdrawn, so one live chain remains.
	RefreshRetry
	// RefreshRevoke: any other second use of a rotated or withdrawn token
	// is theft (RFC 9700 4.14.2): the whole grant is revoked.
	RefreshRevoke
	// RefreshRefuse: a live token presented by another client than the
	// one it was issued to; refused, nothing changes. (A presenter without
	// the token's client credentials has not shown that the legitimate
	// client's chain is compromised, so it may not end the grant.)
	RefreshRefuse
)

// String names the decision, for logs and spans.
func (d RefreshDecision) String() string {
	switch d {
	case RefreshRotate:
		return "rotate"
	case RefreshRetry:
		return "retry"
	case RefreshRevoke:
		return "revoke"
	case RefreshRefuse:
		return "refuse"
	}
	return "unknown"
}

// Withdrawn reports whether the token is a successor that was never used
// and was replaced by a retry of its predecessor. It can no longer be
// exchanged, and presenting it revokes the grant: whoever holds it did
// not see the retry, so one of the two holders is not the client.
func (r RefreshToken) Withdrawn() bool { return r.Rotated() && r.SuccessorHash == "" }

// Retryable reports whether a second use of this rotated token may still
// be a retry, judging only the token itself: it names a successor (it was
// not withdrawn), use comes from the client it was issued to, and now is
// within use.Grace of its rotation. The window counts from the first
// rotation and retries never extend it. Whether the successor is still
// unused is the other half of the rule (DecideRefresh).
func (r RefreshToken) Retryable(use RefreshUse, now time.Time) bool {
	return r.Rotated() && r.SuccessorHash != "" && r.ClientID == use.ClientID &&
		use.Grace > 0 && now.Before(r.RotatedAt.Add(use.Grace))
}

// DecideRefresh is the rule of refresh-token rotation with reuse detection
// and a retry window. presented is the stored record of the token
// presented; successor is the stored record named by its SuccessorHash,
// the zero value when there is none. The store applies the decision
// atomically with reading both records (ports.GrantStore.RotateRefreshToken).
//
// A live token is rotated for its own client and refused for any other.
// A rotated token is a retry only when it is Retryable and its successor
// exists, is still live at now and has never been used; anything else is
// reuse and revokes the grant. So when a thief and the client both hold a
// rotated token, whichever of them comes second within the window
// withdraws the other's successor, and that one's next use revokes the
// grant: the theft is still detected, at most one chain is ever live, and
// a client whose response was lost keeps its user signed in.
func DecideRefresh(presented, successor RefreshToken, use RefreshUse, now time.Time) RefreshDecision {
	if !presented.Rotated() {
		if presented.ClientID != use.ClientID {
			return RefreshRefuse
		}
		return RefreshRotate
	}
	if !presented.Retryable(use, now) {
		return RefreshRevoke
	}
	if successor.Hash == "" || successor.Hash != presented.SuccessorHash || successor.Rotated() ||
		!now.Before(successor.ExpiresAt) {
		return RefreshRevoke
	}
	return RefreshRetry
}

// Rotator builds, for a rotation or a retry of a refresh token, the token
// that replaces it and the grant's new state (ports.GrantStore's
// RotateRefreshToken). It decides nothing: a store may ask it before it
// knows whether the presentation rotates at all.
type Rotator interface {
	Rotate(presented RefreshToken, g *Grant) (RefreshToken, error)
}

// RotateFunc is a Rotator made of a function, for callers whose rotation
// is not a refresh_token request's (a migration, a test).
type RotateFunc func(presented RefreshToken, g *Grant) (RefreshToken, error)

// Rotate implements Rotator.
func (f RotateFunc) Rotate(presented RefreshToken, g *Grant) (RefreshToken, error) {
	return f(presented, g)
}

// Rotation is the Rotator of a refresh_token request. The grant's expiry
// slides to TTL from now (an active session lives on, an idle one dies)
// and records its use; the new token, stored under SuccessorHash, keeps
// the presented one's scopes and expires with the grant. Renewed and
// Identity, when set, also write what a refresh at the IdP returned.
// A Rotation without them changes the grant's expiry and last use only
// (Plain), which a store can write in the statement that rotates.
type Rotation struct {
	ClientID      string
	SuccessorHash string
	TTL           time.Duration
	Now           time.Time
	// Renewed holds the upstream tokens (SealedUpstream, UpstreamExpiry,
	// HasUpstreamRefresh) of a refresh at the IdP, nil for none.
	Renewed *Grant
	// Identity is the IdP's current word on who the user is (their groups
	// above all), from that refresh's ID token; nil for none.
	Identity *Identity
	// After, when set, receives the grant's new state.
	After *Grant
}

// Rotate implements Rotator.
func (r Rotation) Rotate(presented RefreshToken, g *Grant) (RefreshToken, error) {
	if r.Renewed != nil {
		g.SealedUpstream = r.Renewed.SealedUpstream
		g.UpstreamExpiry = r.Renewed.UpstreamExpiry
		g.HasUpstreamRefresh = r.Renewed.HasUpstreamRefresh
	}
	if r.Identity != nil {
		g.Identity = r.Identity.Clone()
	}
	g.ExpiresAt = r.Now.Add(r.TTL)
	g.LastUsedAt = r.Now
	if r.After != nil {
		*r.After = g.Clone()
	}
	return RefreshToken{
		Hash:      r.SuccessorHash,
		GrantID:   g.ID,
		ClientID:  r.ClientID,
		Scopes:    presented.Scopes,
		IssuedAt:  r.Now,
		ExpiresAt: g.ExpiresAt,
	}, nil
}

// Plain reports whether the rotation changes the grant in nothing but
// its expiry and last use.
func (r Rotation) Plain() bool { return r.Renewed == nil && r.Identity == nil }

package memstore

import (
	"time"

	"github.com/oidcproxy/oidcproxy/domain"
)

// The clone functions return deep copies with times normalised to UTC. The
// store applies them on the way in and on the way out, so neither the caller
// nor a callback can alias stored state.

func cloneClient(c domain.Client) domain.Client {
	c = c.Clone()
	c.CreatedAt = utc(c.CreatedAt)
	c.FirstGrantAt = utc(c.FirstGrantAt)
	return c
}

func cloneTransaction(t domain.Transaction) domain.Transaction {
	t = t.Clone()
	t.CreatedAt = utc(t.CreatedAt)
	t.ExpiresAt = utc(t.ExpiresAt)
	return t
}

func cloneGrant(g domain.Grant) domain.Grant {
	g = g.Clone()
	g.UpstreamExpiry = utc(g.UpstreamExpiry)
	g.CreatedAt = utc(g.CreatedAt)
	g.LastUsedAt = utc(g.LastUsedAt)
	g.ExpiresAt = utc(g.ExpiresAt)
	return g
}

func cloneCode(c domain.AuthorizationCode) domain.AuthorizationCode {
	c = c.Clone()
	c.IssuedAt = utc(c.IssuedAt)
	c.ExpiresAt = utc(c.ExpiresAt)
	c.RedeemedAt = utc(c.RedeemedAt)
	return c
}

func cloneToken(r domain.RefreshToken) domain.RefreshToken {
	r = r.Clone()
	r.IssuedAt = utc(r.IssuedAt)
	r.ExpiresAt = utc(r.ExpiresAt)
	r.RotatedAt = utc(r.RotatedAt)
	return r
}

func cloneKey(k domain.SigningKey) domain.SigningKey {
	k = k.Clone()
	k.CreatedAt = utc(k.CreatedAt)
	k.NotAfter = utc(k.NotAfter)
	k.RemoveAfter = utc(k.RemoveAfter)
	return k
}

// utc drops the monotonic reading and the location, keeping the instant, so
// stored times compare equal with == and require.Equal after a round trip.
func utc(t time.Time) time.Time { return t.UTC() }

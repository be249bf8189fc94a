package memstore

import (
	"maps"
	"slices"
	"time"

	"github.com/oidcproxy/oidcproxy/domain"
)

// The clone functions return deep copies with times normalised to UTC. The
// store applies them on the way in and on the way out, so neither the caller
// nor a callback can alias stored state.

func cloneClient(c domain.Client) domain.Client {
	c.SecretHash = slices.Clone(c.SecretHash)
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	c.GrantTypes = slices.Clone(c.GrantTypes)
	c.ResponseTypes = slices.Clone(c.ResponseTypes)
	c.Contacts = slices.Clone(c.Contacts)
	c.CreatedAt = utc(c.CreatedAt)
	return c
}

func cloneTransaction(t domain.Transaction) domain.Transaction {
	t.Scopes = slices.Clone(t.Scopes)
	t.CreatedAt = utc(t.CreatedAt)
	t.ExpiresAt = utc(t.ExpiresAt)
	return t
}

func cloneGrant(g domain.Grant) domain.Grant {
	g.Identity.Claims = cloneClaims(g.Identity.Claims)
	g.Scopes = slices.Clone(g.Scopes)
	g.SealedUpstream = slices.Clone(g.SealedUpstream)
	g.UpstreamExpiry = utc(g.UpstreamExpiry)
	g.CreatedAt = utc(g.CreatedAt)
	g.ExpiresAt = utc(g.ExpiresAt)
	return g
}

func cloneCode(c domain.AuthorizationCode) domain.AuthorizationCode {
	c.Scopes = slices.Clone(c.Scopes)
	c.IssuedAt = utc(c.IssuedAt)
	c.ExpiresAt = utc(c.ExpiresAt)
	c.RedeemedAt = utc(c.RedeemedAt)
	return c
}

func cloneToken(r domain.RefreshToken) domain.RefreshToken {
	r.Scopes = slices.Clone(r.Scopes)
	r.IssuedAt = utc(r.IssuedAt)
	r.ExpiresAt = utc(r.ExpiresAt)
	r.RotatedAt = utc(r.RotatedAt)
	return r
}

func cloneKey(k domain.SigningKey) domain.SigningKey {
	k.SealedPrivate = slices.Clone(k.SealedPrivate)
	k.PublicJWK = slices.Clone(k.PublicJWK)
	k.CreatedAt = utc(k.CreatedAt)
	k.NotAfter = utc(k.NotAfter)
	k.RemoveAfter = utc(k.RemoveAfter)
	return k
}

// cloneClaims deep-copies the JSON-shaped values ID-token claims decode to
// (maps, slices, scalars). Scalars are immutable and shared.
func cloneClaims(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = cloneValue(v)
	}
	return out
}

func cloneValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return cloneClaims(v)
	case []any:
		if v == nil {
			return v
		}
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = cloneValue(e)
		}
		return out
	case []string:
		return slices.Clone(v)
	case map[string]string:
		return maps.Clone(v)
	default:
		return v
	}
}

// utc drops the monotonic reading and the location, keeping the instant, so
// stored times compare equal with == and require.Equal after a round trip.
func utc(t time.Time) time.Time { return t.UTC() }

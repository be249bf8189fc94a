package domain

import (
	"maps"
	"slices"
)

// The Clone methods return deep copies: stores hand them to callbacks and
// callers so that nothing done to a returned value reaches stored state.

// Clone returns a deep copy of the client.
func (c Client) Clone() Client {
	c.SecretHash = slices.Clone(c.SecretHash)
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	c.GrantTypes = slices.Clone(c.GrantTypes)
	c.ResponseTypes = slices.Clone(c.ResponseTypes)
	c.Contacts = slices.Clone(c.Contacts)
	c.JWKS = slices.Clone(c.JWKS)
	return c
}

// Clone returns a deep copy of the transaction.
func (t Transaction) Clone() Transaction {
	t.Scopes = slices.Clone(t.Scopes)
	return t
}

// Clone returns a deep copy of the identity.
func (i Identity) Clone() Identity {
	i.Claims = cloneClaims(i.Claims)
	return i
}

// Clone returns a deep copy of the grant.
func (g Grant) Clone() Grant {
	g.Identity = g.Identity.Clone()
	g.Scopes = slices.Clone(g.Scopes)
	g.SealedUpstream = slices.Clone(g.SealedUpstream)
	return g
}

// Clone returns a deep copy of the code.
func (c AuthorizationCode) Clone() AuthorizationCode {
	c.Scopes = slices.Clone(c.Scopes)
	return c
}

// Clone returns a deep copy of the refresh token.
func (r RefreshToken) Clone() RefreshToken {
	r.Scopes = slices.Clone(r.Scopes)
	return r
}

// Clone returns a deep copy of the signing key.
func (k SigningKey) Clone() SigningKey {
	k.SealedPrivate = slices.Clone(k.SealedPrivate)
	k.PublicJWK = slices.Clone(k.PublicJWK)
	return k
}

// Clone returns a deep copy of the access token.
func (t AccessToken) Clone() AccessToken {
	t.Scopes = slices.Clone(t.Scopes)
	return t
}

// cloneClaims deep-copies JSON-shaped claim values (maps, slices, scalars;
// scalars are immutable and shared).
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

package boltstore

import (
	"slices"

	"github.com/oidcproxy/oidcproxy/domain"
)

// Callbacks get deep copies of decoded records, so that nothing they do to
// their arguments reaches what is stored or returned. Cloning in memory is
// several times cheaper than decoding the JSON again, and decoding is the
// largest cost inside the hot-path transactions.

func cloneTransaction(t domain.Transaction) domain.Transaction {
	t.Scopes = slices.Clone(t.Scopes)
	return t
}

func cloneGrant(g domain.Grant) domain.Grant {
	g.Identity.Claims = cloneClaims(g.Identity.Claims)
	g.Scopes = slices.Clone(g.Scopes)
	g.SealedUpstream = slices.Clone(g.SealedUpstream)
	return g
}

func cloneCode(c domain.AuthorizationCode) domain.AuthorizationCode {
	c.Scopes = slices.Clone(c.Scopes)
	return c
}

func cloneToken(t domain.RefreshToken) domain.RefreshToken {
	t.Scopes = slices.Clone(t.Scopes)
	return t
}

// cloneClaims deep-copies decoded JSON: maps, slices and immutable scalars
// are all a decoded record can hold.
func cloneClaims(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = cloneJSON(v)
	}
	return out
}

func cloneJSON(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return cloneClaims(v)
	case []any:
		if v == nil {
			return v
		}
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = cloneJSON(e)
		}
		return out
	default:
		return v
	}
}

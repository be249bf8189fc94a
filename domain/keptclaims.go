package domain

import "slices"

// Bounds of Identity.Claims beyond the group claims a policy names: the
// map is stored with every grant and may be forwarded in identity headers,
// so it keeps only small scalar claims, whoever vouched for the user (an
// ID token, userinfo, or an ID-JAG of the upstream IdP).
const (
	MaxKeptClaims            = 32
	MaxKeptClaimNameLength   = 64
	MaxKeptClaimStringLength = 256
)

// KeepScalarClaims adds to id.Claims the claims of all that are strings
// of at most MaxKeptClaimStringLength bytes, booleans or numbers, whose
// names are at most MaxKeptClaimNameLength bytes, are not in skip (the
// claims that describe the token rather than the user, and those the
// Identity holds in its own fields) and are not held yet, up to
// MaxKeptClaims in all. Objects, arrays and null are never kept here:
// possibly large, and a group claim the policy needs is kept whole by its
// own rule (policy.ClaimPath.Keep). Names are taken in sorted order, so
// which ones are kept when there are too many does not depend on map
// iteration.
func KeepScalarClaims(id *Identity, all map[string]any, skip []string) {
	names := make([]string, 0, len(all))
	for k := range all {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if len(id.Claims) >= MaxKeptClaims {
			break
		}
		if _, dup := id.Claims[k]; dup || len(k) > MaxKeptClaimNameLength || slices.Contains(skip, k) {
			continue
		}
		switch v := all[k].(type) {
		case string:
			if len(v) > MaxKeptClaimStringLength {
				continue
			}
		case bool, float64:
		default:
			continue
		}
		if id.Claims == nil {
			id.Claims = make(map[string]any)
		}
		id.Claims[k] = all[k]
	}
}

package domain

import (
	"slices"
	"strings"
)

// maxScopeTokens bounds how many scopes a request may carry.
const maxScopeTokens = 64

// ParseScope splits a space-delimited scope parameter (RFC 6749 3.3),
// rejecting characters the grammar forbids and dropping duplicates while
// keeping order.
func ParseScope(raw string) ([]string, error) {
	if len(raw) > 4096 {
		return nil, ErrInvalidScope("scope parameter is too long")
	}
	var out []string
	for _, s := range strings.Split(raw, " ") {
		if s == "" {
			continue
		}
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
				return nil, ErrInvalidScope("scope contains a forbidden character")
			}
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
		if len(out) > maxScopeTokens {
			return nil, ErrInvalidScope("too many scopes")
		}
	}
	return out, nil
}

// JoinScope renders scopes as a scope parameter.
func JoinScope(scopes []string) string { return strings.Join(scopes, " ") }

// IsSubset reports whether every element of sub is in set.
func IsSubset(sub, set []string) bool {
	for _, s := range sub {
		if !slices.Contains(set, s) {
			return false
		}
	}
	return true
}

// openIDBasics are what a client of an OpenID provider expects to be
// granted without asking: who the user is, by name and address.
var openIDBasics = []string{"openid", "profile", "email"}

// DefaultScopes are the scopes granted to a client whose request names
// none: the scopes the protected resource requires, when it requires some,
// so that the token works there; otherwise the OpenID basics (openid,
// profile, email) among the supported scopes, never one that is not
// supported.
func DefaultScopes(required, supported []string) []string {
	if len(required) > 0 {
		return slices.Clone(required)
	}
	var out []string
	for _, s := range openIDBasics {
		if slices.Contains(supported, s) {
			out = append(out, s)
		}
	}
	return out
}

package policy

import (
	"errors"
	"fmt"
	"strings"
)

// maxClaimDepth bounds a claim path; real ones are one or two levels deep.
const maxClaimDepth = 8

// ClaimPath names a claim whose values are groups or roles. Claims are the
// decoded JSON of the ID token (and userinfo), so a path either names one
// top-level key or walks nested objects.
//
// Written as one string, the whole string is tried as a key first, so a
// namespaced claim such as "https://example.com/roles" (Auth0) is one key
// although it contains dots; only when no such key exists is the string
// split at every '.' and walked as a path ("realm_access.roles", Keycloak).
// Written as a list of segments (ClaimPathOf), the segments are walked as a
// path and never tried as one key, which reaches a nested key that itself
// contains a dot.
type ClaimPath struct {
	key  string   // tried as one top-level key; "" for a segment list
	path []string // walked when key is absent; nil when key has no dot
}

// ParseClaimPath reads the one-string form of a claim path.
func ParseClaimPath(s string) (ClaimPath, error) {
	if strings.TrimSpace(s) == "" {
		return ClaimPath{}, errors.New("empty claim name")
	}
	c := ClaimPath{key: s}
	if strings.Contains(s, ".") {
		segs := strings.Split(s, ".")
		ok := len(segs) <= maxClaimDepth
		for _, seg := range segs {
			ok = ok && seg != ""
		}
		if ok {
			c.path = segs
		}
	}
	return c, nil
}

// ClaimPathOf builds a claim path from explicit segments, outermost first.
func ClaimPathOf(segments ...string) (ClaimPath, error) {
	if len(segments) == 0 {
		return ClaimPath{}, errors.New("empty claim path")
	}
	if len(segments) > maxClaimDepth {
		return ClaimPath{}, fmt.Errorf("claim path deeper than %d levels", maxClaimDepth)
	}
	for i, s := range segments {
		if s == "" {
			return ClaimPath{}, fmt.Errorf("claim path segment %d is empty", i)
		}
	}
	if len(segments) == 1 {
		return ClaimPath{key: segments[0]}, nil
	}
	return ClaimPath{path: append([]string(nil), segments...)}, nil
}

// String renders the path for messages: the string as written, or the
// segments in brackets.
func (c ClaimPath) String() string {
	if c.key != "" {
		return c.key
	}
	return "[" + strings.Join(c.path, ", ") + "]"
}

// Lookup finds the claim's value in claims.
func (c ClaimPath) Lookup(claims map[string]any) (any, bool) {
	if c.key != "" {
		if v, ok := claims[c.key]; ok {
			return v, true
		}
	}
	if len(c.path) == 0 {
		return nil, false
	}
	var cur any = claims
	for _, seg := range c.path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[seg]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// memberOf reports whether a claim value holds a string that is a key of
// set, and returns set's value for it. A claim holds strings as a string or
// a JSON array; other elements are skipped, since a group or a role is
// always a string.
func memberOf(v any, set map[string]string) (string, bool) {
	switch v := v.(type) {
	case string:
		r, ok := set[v]
		return r, ok
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok {
				if r, ok := set[s]; ok {
					return r, true
				}
			}
		}
	case []string:
		for _, s := range v {
			if r, ok := set[s]; ok {
				return r, true
			}
		}
	}
	return "", false
}

// appendStrings appends the string values of a claim to dst.
func appendStrings(dst []string, v any) []string {
	switch v := v.(type) {
	case string:
		return append(dst, v)
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok {
				dst = append(dst, s)
			}
		}
	case []string:
		dst = append(dst, v...)
	}
	return dst
}

// lowerASCII folds A-Z only. Full Unicode folding would let a different
// address or domain compare equal to a listed one: the Kelvin sign U+212A
// lower-cases to 'k', so "\u212Aorp.example" would pass for "korp.example".
// It returns s itself when there is nothing to fold.
func lowerASCII(s string) string {
	i := 0
	for i < len(s) && (s[i] < 'A' || s[i] > 'Z') {
		i++
	}
	if i == len(s) {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		if c := b[i]; c >= 'A' && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}

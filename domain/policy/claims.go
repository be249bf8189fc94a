package policy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/oidcproxy/oidcproxy/domain"
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
	v, _, ok := c.locate(claims)
	return v, ok
}

// locate finds the claim's value and the keys that lead to it: the whole
// key, or the path.
func (c ClaimPath) locate(claims map[string]any) (any, []string, bool) {
	if c.key != "" {
		if v, ok := claims[c.key]; ok {
			return v, []string{c.key}, true
		}
	}
	if len(c.path) == 0 {
		return nil, nil, false
	}
	var cur any = claims
	for _, seg := range c.path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, nil, false
		}
		if cur, ok = m[seg]; !ok {
			return nil, nil, false
		}
	}
	return cur, c.path, true
}

// Bounds on the group and role values kept with an identity. The values
// come from the IdP, where a user may be able to create groups or edit
// roles, and they are stored with every grant: the bounds keep a hostile
// or runaway claim out of the store. They are far above real directories
// (Entra stops putting groups into tokens at 200).
const (
	// MaxGroupValues bounds the strings of one group claim.
	MaxGroupValues = 256
	// MaxGroupValueLength bounds each of them, in bytes.
	MaxGroupValueLength = 256
)

// Keep copies the value c names in src into dst, at the same place (the
// whole key, or the nested objects of the path, created in dst as needed),
// so that Lookup finds in dst what it finds in src, and conditions see the
// same shape. Only strings are kept, since a group or a role is always a
// string: a string as it is, a list as the list of its strings ([]any, the
// shape JSON decoding gives, so that every store returns it unchanged).
// Any other value is not a group claim and is left out, as is a value
// whose place in dst already holds something that is not an object.
//
// A claim holding more than MaxGroupValues strings, or one longer than
// MaxGroupValueLength bytes, is refused with a *domain.ClaimError naming
// the claim, never its values: it cannot be kept whole, and keeping a part
// of it could make a condition such as !("contractors" in groups) true for
// the wrong person.
func (c ClaimPath) Keep(dst, src map[string]any) error {
	v, loc, ok := c.locate(src)
	if !ok {
		return nil
	}
	var kept any
	switch v := v.(type) {
	case string:
		if len(v) > MaxGroupValueLength {
			return c.tooLong()
		}
		kept = v
	case []any:
		list := make([]any, 0, min(len(v), MaxGroupValues))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				continue
			}
			if len(s) > MaxGroupValueLength {
				return c.tooLong()
			}
			if len(list) == MaxGroupValues {
				return &domain.ClaimError{Claim: c.String(), Reason: fmt.Sprintf("has more than %d values", MaxGroupValues)}
			}
			list = append(list, s)
		}
		kept = list
	default:
		return nil
	}
	cur := dst
	for _, seg := range loc[:len(loc)-1] {
		next, exists := cur[seg]
		if !exists {
			m := make(map[string]any, 1)
			cur[seg] = m
			cur = m
			continue
		}
		m, ok := next.(map[string]any)
		if !ok {
			return nil
		}
		cur = m
	}
	cur[loc[len(loc)-1]] = kept
	return nil
}

func (c ClaimPath) tooLong() error {
	return &domain.ClaimError{Claim: c.String(), Reason: fmt.Sprintf("has a value longer than %d bytes", MaxGroupValueLength)}
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

package policy_test

import (
	"testing"

	"github.com/oidcproxy/oidcproxy/domain/policy"
)

func TestClaimPathFindsKeysAndNestedPaths(t *testing.T) {
	claims := map[string]any{
		"groups":                    []any{"a"},
		"https://example.com/roles": []any{"auth0-role"},
		"realm_access":              map[string]any{"roles": []any{"kc-role"}},
		"dotted.key":                "whole",
		"dotted":                    map[string]any{"key": "nested"},
		"odd":                       map[string]any{"in.side": map[string]any{"roles": "deep"}},
		"scalar":                    "x",
	}
	tests := []struct {
		name   string
		path   func() (policy.ClaimPath, error)
		want   any
		wantOK bool
	}{
		{"plain key", str("groups"), []any{"a"}, true},
		{"namespaced URL is one key", str("https://example.com/roles"), []any{"auth0-role"}, true},
		{"dotted path into nested objects", str("realm_access.roles"), []any{"kc-role"}, true},
		{"a whole key wins over the path", str("dotted.key"), "whole", true},
		{"explicit segments never try the whole key", segs("dotted", "key"), "nested", true},
		{"explicit segments reach a key with a dot", segs("odd", "in.side", "roles"), "deep", true},
		{"missing key", str("roles"), nil, false},
		{"missing nested key", str("realm_access.groups"), nil, false},
		{"path through a non-object", str("scalar.x"), nil, false},
		{"empty segment disables the path", str("realm_access..roles"), nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.path()
			if err != nil {
				t.Fatal(err)
			}
			got, ok := p.Lookup(claims)
			if ok != tt.wantOK || (ok && !equalAny(got, tt.want)) {
				t.Fatalf("Lookup = %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestClaimPathRejectsEmptyNames(t *testing.T) {
	if _, err := policy.ParseClaimPath(" "); err == nil {
		t.Error("a blank claim name was accepted")
	}
	if _, err := policy.ClaimPathOf(); err == nil {
		t.Error("an empty segment list was accepted")
	}
	if _, err := policy.ClaimPathOf("a", ""); err == nil {
		t.Error("an empty segment was accepted")
	}
	if _, err := policy.ClaimPathOf("a", "b", "c", "d", "e", "f", "g", "h", "i"); err == nil {
		t.Error("a nine-level path was accepted")
	}
}

func TestClaimPathStringShowsTheFormWritten(t *testing.T) {
	p, _ := policy.ParseClaimPath("realm_access.roles")
	q, _ := policy.ClaimPathOf("realm_access", "roles")
	if p.String() != "realm_access.roles" || q.String() != "[realm_access, roles]" {
		t.Fatalf("String() = %q, %q", p.String(), q.String())
	}
}

func str(s string) func() (policy.ClaimPath, error) {
	return func() (policy.ClaimPath, error) { return policy.ParseClaimPath(s) }
}

func segs(s ...string) func() (policy.ClaimPath, error) {
	return func() (policy.ClaimPath, error) { return policy.ClaimPathOf(s...) }
}

func equalAny(a, b any) bool {
	as, aok := a.([]any)
	bs, bok := b.([]any)
	if aok != bok {
		return false
	}
	if !aok {
		return a == b
	}
	if len(as) != len(bs) {
		return false
	}
	for i := range as {
		if as[i] != bs[i] {
			return false
		}
	}
	return true
}

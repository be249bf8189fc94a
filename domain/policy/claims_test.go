package policy_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/oidcproxy/oidcproxy/domain"
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

func TestKeepCopiesAGroupClaimToTheSamePlace(t *testing.T) {
	src := map[string]any{
		"groups":                    []any{"a", 7, "b", nil, map[string]any{"x": "y"}},
		"https://example.com/roles": "one-role",
		"realm_access":              map[string]any{"roles": []any{"kc"}, "other": "dropped"},
		"resource_access":           map[string]any{"my.app": map[string]any{"roles": []any{"client-role"}}},
		"number":                    float64(3),
		"object":                    map[string]any{"a": "b"},
	}
	dst := map[string]any{"locale": "fr"}
	for _, p := range []policy.ClaimPath{
		mustClaim(t, "groups"),
		mustClaim(t, "https://example.com/roles"),
		mustClaim(t, "realm_access.roles"),
		mustSegs(t, "resource_access", "my.app", "roles"),
		mustClaim(t, "number"),
		mustClaim(t, "object"),
		mustClaim(t, "absent"),
	} {
		if err := p.Keep(dst, src); err != nil {
			t.Fatalf("Keep(%s): %v", p, err)
		}
		if got, _ := p.Lookup(dst); !equalAny(got, stringsOnly(p.Lookup(src))) {
			t.Errorf("after Keep, %s reads %v in the copy", p, got)
		}
	}
	want := map[string]any{
		"locale":                    "fr",
		"groups":                    []any{"a", "b"},
		"https://example.com/roles": "one-role",
		"realm_access":              map[string]any{"roles": []any{"kc"}},
		"resource_access":           map[string]any{"my.app": map[string]any{"roles": []any{"client-role"}}},
	}
	if !reflect.DeepEqual(dst, want) {
		t.Fatalf("kept %#v\nwant %#v", dst, want)
	}
}

func TestKeepRefusesAClaimTooLargeToKeepWhole(t *testing.T) {
	many := make([]any, policy.MaxGroupValues+1)
	for i := range many {
		many[i] = fmt.Sprintf("g%d", i)
	}
	long := strings.Repeat("x", policy.MaxGroupValueLength+1)
	tests := []struct {
		name  string
		value any
		want  string
	}{
		{"too many values", many, "has more than 256 values"},
		{"a list value too long", []any{"ok", long}, "has a value longer than 256 bytes"},
		{"a string too long", long, "has a value longer than 256 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := map[string]any{}
			err := mustClaim(t, "groups").Keep(dst, map[string]any{"groups": tt.value})
			var ce *domain.ClaimError
			if !errors.As(err, &ce) || ce.Claim != "groups" || ce.Reason != tt.want {
				t.Fatalf("Keep = %v; want a ClaimError on groups: %s", err, tt.want)
			}
			if strings.Contains(err.Error(), "g1") || strings.Contains(err.Error(), "xxx") {
				t.Fatal("the error quotes a value")
			}
			if len(dst) != 0 {
				t.Fatalf("a refused claim was kept: %v", dst)
			}
		})
	}
	exactly := make([]any, policy.MaxGroupValues)
	for i := range exactly {
		exactly[i] = strings.Repeat("y", policy.MaxGroupValueLength)
	}
	if err := mustClaim(t, "groups").Keep(map[string]any{}, map[string]any{"groups": exactly}); err != nil {
		t.Fatalf("a claim at the bounds was refused: %v", err)
	}
}

func TestKeepLeavesAPlaceHeldByAnotherValueAlone(t *testing.T) {
	dst := map[string]any{"realm_access": "a string from another source"}
	src := map[string]any{"realm_access": map[string]any{"roles": []any{"r"}}}
	if err := mustClaim(t, "realm_access.roles").Keep(dst, src); err != nil {
		t.Fatal(err)
	}
	if dst["realm_access"] != "a string from another source" {
		t.Fatalf("Keep replaced a value: %v", dst)
	}
}

func TestGroupClaimsDefaultToGroups(t *testing.T) {
	var none *policy.Policy
	if none.GroupClaims() != nil {
		t.Fatal("no policy names group claims")
	}
	p := mustNew(t, policy.Spec{Admission: &policy.AdmissionSpec{Subjects: []string{"s"}}})
	got := p.GroupClaims()
	if len(got) != 1 || got[0].String() != "groups" {
		t.Fatalf("GroupClaims() = %v; want [groups]", got)
	}
	q := mustNew(t, policy.Spec{GroupClaims: []policy.ClaimPath{mustClaim(t, "roles"), mustSegs(t, "a", "b")}, Admission: &policy.AdmissionSpec{Subjects: []string{"s"}}})
	if got := q.GroupClaims(); len(got) != 2 || got[0].String() != "roles" || got[1].String() != "[a, b]" {
		t.Fatalf("GroupClaims() = %v", got)
	}
}

func mustSegs(t *testing.T, s ...string) policy.ClaimPath {
	t.Helper()
	p, err := policy.ClaimPathOf(s...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// stringsOnly is what Keep makes of a looked-up value.
func stringsOnly(v any, ok bool) any {
	switch v := v.(type) {
	case string:
		return v
	case []any:
		out := []any{}
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

package policyfile_test

import (
	"context"
	"testing"

	"github.com/oidcproxy/oidcproxy/adapters/policyfile"
	"github.com/oidcproxy/oidcproxy/domain/policy"
)

// FuzzParse: no file makes the loader or a policy it accepts panic, and a
// file is either refused with problems or yields a policy.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		fullPolicy,
		"",
		"admission:\n  allow:\n    domains: [corp.example]\n",
		"group_claims: [[a, b], c.d]\nadmission:\n  allow:\n    groups: [x]\n",
		"authorization:\n  default: deny\n  rules:\n    - tools: ['*']\n",
		"authorization:\n  rules:\n    - resources: ['file:///\\**']\n      condition: 'name.size() > 3'\n",
		"admission: &a\n  require: 'true'\nauthorization: *a\n",
		"admission:\n  allow:\n    condition: '[1,2,3].all(x, x > 0)'\n",
	} {
		f.Add([]byte(seed))
	}
	in := &policy.Input{
		Subject: "s", ClientID: "c", Email: "a@corp.example", EmailVerified: true, Scopes: []string{"mcp"},
		Claims: map[string]any{"groups": []any{"x", "y"}, "a": map[string]any{"b": "x"}},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, _, err := policyfile.Parse(data, policyfile.WithCostLimit(10_000))
		if err != nil {
			if p != nil {
				t.Fatal("Parse returned a policy with an error")
			}
			return
		}
		ctx := context.Background()
		p.Admit(ctx, in)
		p.Authorize(ctx, in, policy.Call{Method: "tools/call", Name: "delete_all"})
		p.MayCall(ctx, in, policy.KindResource, "file:///x")
	})
}

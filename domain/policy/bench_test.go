package policy_test

import (
	"fmt"
	"testing"

	"github.com/oidcproxy/oidcproxy/domain/policy"
)

// benchRules is a policy of 50 rules mixing exact names, prefix, suffix and
// infix globs over tools, resources, prompts and methods; every tenth rule
// has a condition when withConditions is set.
func benchRules(withConditions bool) []policy.RuleSpec {
	rules := make([]policy.RuleSpec, 0, 50)
	for i := range 50 {
		r := policy.RuleSpec{Scopes: []string{fmt.Sprintf("scope:%d", i%7)}}
		switch i % 5 {
		case 0:
			r.Tools = []string{fmt.Sprintf("tool_%d", i)}
		case 1:
			r.Tools = []string{fmt.Sprintf("ns%d_*", i), fmt.Sprintf("alt%d_*", i)}
		case 2:
			r.Tools = []string{fmt.Sprintf("*_suffix%d", i)}
			r.Groups = []string{"editors"}
		case 3:
			r.Resources = []string{fmt.Sprintf("file:///dir%d/*", i)}
		case 4:
			r.Prompts = []string{fmt.Sprintf("p%d_*_x", i)}
			r.Methods = []string{fmt.Sprintf("custom/m%d", i)}
		}
		if withConditions && i%10 == 1 {
			r.Condition = always(true)
		}
		rules = append(rules, r)
	}
	return rules
}

func BenchmarkAuthorize(b *testing.B) {
	in := &policy.Input{
		Subject: "s", ClientID: "c",
		Scopes: []string{"scope:0", "scope:1", "scope:2", "scope:3", "scope:4", "scope:5", "scope:6"},
		Claims: map[string]any{"groups": []any{"viewers", "editors"}},
	}
	cases := []struct {
		name string
		call policy.Call
		want policy.Outcome
	}{
		{"exact", policy.Call{Method: "tools/call", Name: "tool_20"}, policy.Allowed},
		{"prefix glob", policy.Call{Method: "tools/call", Name: "ns41_delete"}, policy.Allowed},
		{"suffix glob and group", policy.Call{Method: "tools/call", Name: "do_suffix32"}, policy.Allowed},
		{"resource glob", policy.Call{Method: "resources/read", Name: "file:///dir48/a/b.txt"}, policy.Allowed},
		{"unmatched", policy.Call{Method: "tools/call", Name: "search_web"}, policy.Allowed},
		{"other method", policy.Call{Method: "ping"}, policy.Allowed},
	}
	for _, withConditions := range []bool{false, true} {
		p := mustNew(b, policy.Spec{Authorization: &policy.AuthorizationSpec{Rules: benchRules(withConditions)}})
		for _, c := range cases {
			b.Run(fmt.Sprintf("conditions=%v/%s", withConditions, c.name), func(b *testing.B) {
				ctx := b.Context()
				b.ReportAllocs()
				for b.Loop() {
					if d := p.Authorize(ctx, in, c.call); d.Outcome != c.want {
						b.Fatalf("Authorize = %+v", d)
					}
				}
			})
		}
	}
}

func BenchmarkMayCallFiltering200Tools(b *testing.B) {
	p := mustNew(b, policy.Spec{Authorization: &policy.AuthorizationSpec{Rules: benchRules(false)}})
	in := &policy.Input{Subject: "s", Scopes: []string{"scope:1"}, Claims: map[string]any{"groups": []any{"viewers"}}}
	names := make([]string, 200)
	for i := range names {
		names[i] = fmt.Sprintf("ns%d_tool%d", i%50, i)
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, n := range names {
			p.MayCall(b.Context(), in, policy.KindTool, n)
		}
	}
}

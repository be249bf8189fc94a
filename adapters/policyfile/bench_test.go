package policyfile_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/oidcproxy/oidcproxy/adapters/policyfile"
	"github.com/oidcproxy/oidcproxy/domain/policy"
)

// benchPolicy is 50 rules mixing exact names and globs, every tenth with a
// CEL condition, as the gateway benchmark's policy.
func benchPolicy() string {
	var b strings.Builder
	b.WriteString("authorization:\n  rules:\n")
	for i := range 50 {
		switch i % 5 {
		case 0:
			fmt.Fprintf(&b, "    - tools: [tool_%d]\n", i)
		case 1:
			fmt.Fprintf(&b, "    - tools: [\"ns%d_*\", \"alt%d_*\"]\n", i, i)
		case 2:
			fmt.Fprintf(&b, "    - tools: [\"*_suffix%d\"]\n      groups: [editors]\n", i)
		case 3:
			fmt.Fprintf(&b, "    - resources: [\"file:///dir%d/*\"]\n", i)
		case 4:
			fmt.Fprintf(&b, "    - prompts: [\"p%d_*_x\"]\n      methods: [custom/m%d]\n", i, i)
		}
		fmt.Fprintf(&b, "      scopes: [\"scope:%d\"]\n", i%7)
		if i%10 == 1 {
			b.WriteString("      condition: '\"editors\" in groups && name.startsWith(\"ns\")'\n")
		}
	}
	return b.String()
}

func BenchmarkAuthorizeWithCEL(b *testing.B) {
	p, _, err := policyfile.Parse([]byte(benchPolicy()))
	if err != nil {
		b.Fatal(err)
	}
	in := &policy.Input{
		Subject: "s", ClientID: "c",
		Scopes: []string{"scope:0", "scope:1", "scope:2", "scope:3", "scope:4", "scope:5", "scope:6"},
		Claims: map[string]any{"groups": []any{"viewers", "editors"}},
	}
	for _, c := range []struct {
		name string
		call policy.Call
	}{
		{"no condition on the path", policy.Call{Method: "tools/call", Name: "tool_20"}},
		{"one CEL condition", policy.Call{Method: "tools/call", Name: "ns41_delete"}},
		{"unmatched", policy.Call{Method: "tools/call", Name: "search_web"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d := p.Authorize(b.Context(), in, c.call); !d.Allowed() {
					b.Fatalf("Authorize = %+v", d)
				}
			}
		})
	}
}

// gatewayBenchPolicy is the policy of the gateway benchmark
// (bench.BenchmarkGatewayPolicy): 50 rules, five of which match its
// tools/call of "search", three through CEL conditions.
func gatewayBenchPolicy() string {
	var b strings.Builder
	b.WriteString("authorization:\n  rules:\n")
	rule := func(name, match, require string) {
		fmt.Fprintf(&b, "    - name: %q\n      %s\n      %s\n", name, match, require)
	}
	for i := range 40 {
		switch i % 4 {
		case 0:
			rule(fmt.Sprint("tool family ", i), fmt.Sprintf(`tools: ["tool_%d_*"]`, i), "scopes: [mcp:admin]")
		case 1:
			rule(fmt.Sprint("admin suffix ", i), fmt.Sprintf(`tools: ["*_admin_%d"]`, i), "groups: [admins]")
		case 2:
			rule(fmt.Sprint("delete ", i), fmt.Sprintf(`tools: ["delete_%d", "drop_%d"]`, i, i),
				`condition: 'email.endsWith("@admin.example")'`)
		default:
			rule(fmt.Sprint("secret resources ", i), fmt.Sprintf(`resources: ["file:///secret/%d/*"]`, i),
				`condition: '"security" in groups'`)
		}
	}
	for i := range 5 {
		if i%2 == 0 {
			rule(fmt.Sprint("drafts ", i), fmt.Sprintf(`prompts: ["draft_%d*"]`, i), "scopes: [mcp:write]")
		} else {
			rule(fmt.Sprint("completion ", i), `methods: ["completion/complete"]`, "scopes: [profile]")
		}
	}
	rule("search by name", `tools: ["search"]`, "scopes: [profile]")
	rule("s tools for verified addresses", `tools: ["s*"]`, `condition: 'email_verified && email.endsWith("@faulty.example")'`)
	rule("ch tools from a client", `tools: ["*ch"]`, `condition: 'name == "search" && client_id != ""'`)
	rule("ear tools need openid", `tools: ["*ear*"]`, "scopes: [openid]")
	rule("every tool call by the unblocked", `methods: ["tools/*"]`, `condition: '!("blocked" in groups)'`)
	return b.String()
}

// BenchmarkAuthorizeGatewayPolicy decides the gateway benchmark's request
// alone: the policy's share of the gateway's cost per request.
func BenchmarkAuthorizeGatewayPolicy(b *testing.B) {
	p, _, err := policyfile.Parse([]byte(gatewayBenchPolicy()))
	if err != nil {
		b.Fatal(err)
	}
	in := &policy.Input{Subject: "u1", ClientID: "c1", Email: "u1@faulty.example", EmailVerified: true, Scopes: []string{"openid", "profile", "email"}}
	call := policy.Call{Method: "tools/call", Name: "search"}
	b.ReportAllocs()
	for b.Loop() {
		if d := p.Authorize(b.Context(), in, call); !d.Allowed() {
			b.Fatal(d)
		}
	}
}

package policyfile_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/oidcproxy/oidcproxy/adapters/policyfile"
	"github.com/oidcproxy/oidcproxy/domain/policy"
	"github.com/oidcproxy/oidcproxy/test/policytest"
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

// BenchmarkAuthorizeGatewayPolicy decides the gateway benchmark's request
// alone: the policy's share of the gateway's cost per request.
func BenchmarkAuthorizeGatewayPolicy(b *testing.B) {
	p, _, err := policyfile.Parse([]byte(policytest.BenchPolicy()))
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

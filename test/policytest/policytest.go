// Package policytest holds the policy file the gateway's performance is
// measured with, so that the end-to-end gateway benchmark (bench) and the
// benchmark of the decision alone (adapters/policyfile) measure the same
// policy.
package policytest

import (
	"fmt"
	"strings"
)

// BenchRules is the size of the benchmark's policy.
const BenchRules = 50

// BenchPolicy is a policy file of BenchRules authorization rules as
// an operator writes them: tool globs anchored at either end, exact names,
// resources, prompts and methods, with scopes, groups and CEL conditions.
// Five rules match the benchmark's tools/call of "search" and all hold for
// its callers, three of them through CEL conditions evaluated on every
// request: the policy costs what a real one costs, and every call passes.
func BenchPolicy() string {
	var b strings.Builder
	b.WriteString("authorization:\n  rules:\n")
	rule := func(name, match, require string) {
		fmt.Fprintf(&b, "    - name: %q\n      %s\n      %s\n", name, match, require)
	}
	for i := range BenchRules - 10 {
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

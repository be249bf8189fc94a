package policy_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/oidcproxy/oidcproxy/domain/policy"
)

func toolPolicy(t *testing.T) *policy.Policy {
	return mustNew(t, policy.Spec{Authorization: &policy.AuthorizationSpec{Rules: []policy.RuleSpec{
		{Name: "read", Tools: []string{"read_*", "list_*"}, Scopes: []string{"mcp:read"}},
		{Name: "write", Tools: []string{"write_*", "delete_*"}, Scopes: []string{"mcp:write"}, Groups: []string{"editors"}},
		{Tools: []string{"delete_*"}, Scopes: []string{"mcp:admin", "mcp:write"}},
		{Resources: []string{"file:///secret/*"}, Groups: []string{"security"}},
		{Prompts: []string{"summarize"}, Scopes: []string{"prompts"}},
		{Methods: []string{"completion/complete"}, Scopes: []string{"mcp:read"}},
	}}})
}

func caller(scopes []string, groups ...any) *policy.Input {
	return &policy.Input{Subject: "s", ClientID: "c", Scopes: scopes, Claims: map[string]any{"groups": groups}}
}

func TestAuthorizeToolRules(t *testing.T) {
	p := toolPolicy(t)
	tool := func(name string) policy.Call { return policy.Call{Method: "tools/call", Name: name} }
	tests := []struct {
		name    string
		in      *policy.Input
		call    policy.Call
		outcome policy.Outcome
		scopes  []string
		reason  string
	}{
		{"read tool with its scope", caller([]string{"mcp:read"}), tool("read_file"), policy.Allowed, nil, `authorization.rules[0] "read"`},
		{"read tool without its scope", caller(nil), tool("list_dir"), policy.DeniedScope, []string{"mcp:read"}, `authorization.rules[0] "read"`},
		{"write tool, editor with scope", caller([]string{"mcp:write"}, "editors"), tool("write_file"), policy.Allowed, nil, `authorization.rules[1] "write"`},
		{"write tool, editor without scope", caller(nil, "editors"), tool("write_file"), policy.DeniedScope, []string{"mcp:write"}, `authorization.rules[1] "write"`},
		{"write tool, scope but no group", caller([]string{"mcp:write"}, "viewers"), tool("write_file"), policy.DeniedForbidden, nil, `authorization.rules[1] "write"`},
		{"a missing group wins over missing scopes", caller(nil), tool("write_file"), policy.DeniedForbidden, nil, `authorization.rules[1] "write"`},
		{"every scope of every matching rule", caller([]string{"mcp:write"}, "editors"), tool("delete_all"), policy.DeniedScope, []string{"mcp:write", "mcp:admin"}, `authorization.rules[2]`},
		{"held scopes are listed too", caller([]string{"mcp:admin"}, "editors"), tool("delete_all"), policy.DeniedScope, []string{"mcp:write", "mcp:admin"}, `authorization.rules[1] "write"`},
		{"every matching rule satisfied", caller([]string{"mcp:admin", "mcp:write"}, "editors"), tool("delete_all"), policy.Allowed, nil, `authorization.rules[1] "write"`},
		{"unmatched tool under default allow", caller(nil), tool("search"), policy.Allowed, nil, policy.ReasonNoRule},
		{"glob is anchored", caller(nil), tool("unread_file"), policy.Allowed, nil, policy.ReasonNoRule},
		{"secret resource, in group", caller(nil, "security"), policy.Call{Method: "resources/read", Name: "file:///secret/keys/a.pem"}, policy.Allowed, nil, "authorization.rules[3]"},
		{"secret resource, not in group", caller(nil), policy.Call{Method: "resources/read", Name: "file:///secret/a"}, policy.DeniedForbidden, nil, "authorization.rules[3]"},
		{"subscribing is reading", caller(nil), policy.Call{Method: "resources/subscribe", Name: "file:///secret/a"}, policy.DeniedForbidden, nil, "authorization.rules[3]"},
		{"public resource", caller(nil), policy.Call{Method: "resources/read", Name: "file:///public/a"}, policy.Allowed, nil, policy.ReasonNoRule},
		{"prompt rule", caller(nil), policy.Call{Method: "prompts/get", Name: "summarize"}, policy.DeniedScope, []string{"prompts"}, "authorization.rules[4]"},
		{"a prompt rule does not match a tool of that name", caller(nil), tool("summarize"), policy.Allowed, nil, policy.ReasonNoRule},
		{"a tool rule does not match a resource", caller(nil), policy.Call{Method: "resources/read", Name: "read_file"}, policy.Allowed, nil, policy.ReasonNoRule},
		{"method rule", caller(nil), policy.Call{Method: "completion/complete"}, policy.DeniedScope, []string{"mcp:read"}, "authorization.rules[5]"},
		{"other methods pass", caller(nil), policy.Call{Method: "initialize"}, policy.Allowed, nil, policy.ReasonNoRule},
		{"machine callers hold no groups", &policy.Input{Subject: "m", ClientID: "m", Machine: true, Scopes: []string{"mcp:write"}, Claims: map[string]any{"groups": []any{"editors"}}}, tool("write_x"), policy.DeniedForbidden, nil, `authorization.rules[1] "write"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Authorize(t.Context(), tt.in, tt.call)
			if d.Outcome != tt.outcome || !slices.Equal(d.RequiredScopes, tt.scopes) || d.Reason != tt.reason || d.Err != nil {
				t.Fatalf("Authorize = %+v; want outcome %d scopes %v reason %q", d, tt.outcome, tt.scopes, tt.reason)
			}
			if d.Allowed() != (tt.outcome == policy.Allowed) {
				t.Fatal("Allowed() disagrees with Outcome")
			}
		})
	}
}

func TestAuthorizeDefaultDeny(t *testing.T) {
	p := mustNew(t, policy.Spec{Authorization: &policy.AuthorizationSpec{
		Default: policy.DefaultDeny,
		Rules: []policy.RuleSpec{
			{Tools: []string{"read_*"}},
			{Prompts: []string{"*"}, Groups: []string{"writers"}},
		},
	}})
	in := caller(nil)
	tests := []struct {
		call    policy.Call
		outcome policy.Outcome
		reason  string
	}{
		{policy.Call{Method: "tools/call", Name: "read_file"}, policy.Allowed, "authorization.rules[0]"},
		{policy.Call{Method: "tools/call", Name: "write_file"}, policy.DeniedForbidden, policy.ReasonDefaultDeny},
		{policy.Call{Method: "resources/read", Name: "file:///a"}, policy.DeniedForbidden, policy.ReasonDefaultDeny},
		{policy.Call{Method: "prompts/get", Name: "any"}, policy.DeniedForbidden, "authorization.rules[1]"},
		{policy.Call{Method: "initialize"}, policy.Allowed, policy.ReasonNoRule},
		{policy.Call{Method: "tools/list"}, policy.Allowed, policy.ReasonNoRule},
		{policy.Call{Method: "notifications/initialized"}, policy.Allowed, policy.ReasonNoRule},
	}
	for _, tt := range tests {
		d := p.Authorize(t.Context(), in, tt.call)
		if d.Outcome != tt.outcome || d.Reason != tt.reason {
			t.Errorf("%+v: Authorize = %+v; want outcome %d reason %q", tt.call, d, tt.outcome, tt.reason)
		}
	}
}

func TestMayCallFiltersListEntries(t *testing.T) {
	p := toolPolicy(t)
	in := caller([]string{"mcp:read", "mcp:write"}, "editors")
	var visible []string
	for _, name := range []string{"read_file", "write_file", "delete_all", "search"} {
		if p.MayCall(t.Context(), in, policy.ListedKind("tools/list"), name) {
			visible = append(visible, name)
		}
	}
	if want := []string{"read_file", "write_file", "search"}; !slices.Equal(visible, want) {
		t.Fatalf("visible tools = %v, want %v", visible, want)
	}
	if p.MayCall(t.Context(), caller(nil), policy.ListedKind("resources/list"), "file:///secret/x") {
		t.Fatal("a secret resource is listed for a caller outside the group")
	}
	if !p.MayCall(t.Context(), caller(nil), policy.ListedKind("initialize"), "anything") {
		t.Fatal("MayCall refused an entry of no kind")
	}
}

func TestAuthorizeWithoutPolicyAllowsEverything(t *testing.T) {
	var none *policy.Policy
	admissionOnly := mustNew(t, policy.Spec{Admission: &policy.AdmissionSpec{Subjects: []string{"x"}}})
	for _, p := range []*policy.Policy{none, admissionOnly} {
		d := p.Authorize(t.Context(), caller(nil), policy.Call{Method: "tools/call", Name: "delete_all"})
		if !d.Allowed() || d.Reason != policy.ReasonNoPolicy {
			t.Errorf("Authorize = %+v; want allowed, no policy", d)
		}
	}
}

func TestAuthorizeRuleConditions(t *testing.T) {
	var calls int
	var seen policy.Facts
	boom := errors.New("cost limit exceeded")
	cond := condFunc(func(_ context.Context, f *policy.Facts) (bool, error) {
		calls++
		seen = *f
		switch f.Input.Subject {
		case "error":
			return true, boom
		case "owner":
			return true, nil
		}
		return false, nil
	})
	p := mustNew(t, policy.Spec{Authorization: &policy.AuthorizationSpec{Rules: []policy.RuleSpec{
		// Three patterns of one rule match "drop_table": it is still
		// evaluated once.
		{Name: "owners", Tools: []string{"drop_table", "drop_*", "*_table"}, Methods: []string{"tools/*"}, Condition: cond},
	}}})
	call := policy.Call{Method: "tools/call", Name: "drop_table"}

	d := p.Authorize(t.Context(), &policy.Input{Subject: "owner", Claims: map[string]any{"groups": []any{"g"}}}, call)
	if !d.Allowed() || calls != 1 {
		t.Fatalf("owner: %+v after %d condition calls; want allowed after one", d, calls)
	}
	if seen.Method != "tools/call" || seen.Name != "drop_table" || !slices.Equal(seen.Groups, []string{"g"}) {
		t.Fatalf("facts = %+v; want the request and the caller's groups", seen)
	}
	if d := p.Authorize(t.Context(), &policy.Input{Subject: "guest"}, call); d.Outcome != policy.DeniedForbidden || d.Reason != `authorization.rules[0] "owners"` {
		t.Fatalf("guest: %+v; want forbidden by the rule", d)
	}
	if d := p.Authorize(t.Context(), &policy.Input{Subject: "error"}, call); d.Outcome != policy.DeniedForbidden || !errors.Is(d.Err, boom) {
		t.Fatalf("condition error: %+v; want forbidden with the error", d)
	}
}

func TestKinds(t *testing.T) {
	for method, want := range map[string]policy.Kind{
		"tools/call": policy.KindTool, "prompts/get": policy.KindPrompt, "resources/read": policy.KindResource,
		"resources/subscribe": policy.KindResource, "resources/unsubscribe": policy.KindOther, "tools/list": policy.KindOther,
	} {
		if got := policy.KindOf(method); got != want {
			t.Errorf("KindOf(%q) = %v, want %v", method, got, want)
		}
	}
	for method, want := range map[string]policy.Kind{
		"tools/list": policy.KindTool, "prompts/list": policy.KindPrompt, "resources/list": policy.KindResource, "resources/templates/list": policy.KindOther,
	} {
		if got := policy.ListedKind(method); got != want {
			t.Errorf("ListedKind(%q) = %v, want %v", method, got, want)
		}
	}
}

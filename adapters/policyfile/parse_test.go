package policyfile_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/oidcproxy/oidcproxy/adapters/policyfile"
	"github.com/oidcproxy/oidcproxy/domain/policy"
)

const fullPolicy = `
group_claims:
  - groups
  - https://example.com/roles
  - realm_access.roles
  - [odd.key, roles]
admission:
  allow:
    emails: [alice@example.com]
    domains: [corp.example]
    subjects: ["google-oauth2|1234"]
    groups: [mcp-users, "3f1a9c2e-0000-4000-8000-000000000001"]
    machine_clients: [ci-runner]
    condition: 'claims.?department.orValue("") == "research" && email_verified'
  require: '!("suspended" in groups)'
authorization:
  default: allow
  rules:
    - name: read-only tools for everyone
      tools: ["get_*", "list_*", "search"]
      scopes: [mcp:read]
    - name: write tools for editors
      tools: ["create_*", "update_*", "delete_*"]
      scopes: [mcp:write]
      groups: [editors]
    - name: own reports, or auditors
      resources: ["file:///reports/*"]
      condition: 'name.startsWith("file:///reports/" + sub + "/") || "auditors" in groups'
    - methods: ["completion/complete"]
      scopes: [mcp:read]
`

func parse(t *testing.T, src string, opts ...policyfile.Option) *policy.Policy {
	t.Helper()
	p, _, err := policyfile.Parse([]byte(src), opts...)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

func TestParseBuildsTheWholePolicy(t *testing.T) {
	p := parse(t, fullPolicy)
	ctx := t.Context()
	admit := []struct {
		name string
		in   policy.Input
		want bool
	}{
		{"listed email, verified", policy.Input{Subject: "a", Email: "Alice@example.com", EmailVerified: true}, true},
		{"listed email, unverified", policy.Input{Subject: "a", Email: "alice@example.com"}, false},
		{"domain", policy.Input{Subject: "b", Email: "b@corp.example", EmailVerified: true}, true},
		{"subject", policy.Input{Subject: "google-oauth2|1234"}, true},
		{"Entra group object id", policy.Input{Subject: "c", Claims: map[string]any{"groups": []any{"3f1a9c2e-0000-4000-8000-000000000001"}}}, true},
		{"Auth0 namespaced role", policy.Input{Subject: "c", Claims: map[string]any{"https://example.com/roles": []any{"mcp-users"}}}, true},
		{"Keycloak realm role", policy.Input{Subject: "c", Claims: map[string]any{"realm_access": map[string]any{"roles": []any{"mcp-users"}}}}, true},
		{"explicit segments", policy.Input{Subject: "c", Claims: map[string]any{"odd.key": map[string]any{"roles": []any{"mcp-users"}}}}, true},
		{"machine client", policy.MachineInput("ci-runner", nil), true},
		{"CEL alternative", policy.Input{Subject: "d", Email: "d@else.example", EmailVerified: true, Claims: map[string]any{"department": "research"}}, true},
		{"CEL alternative needs a verified email", policy.Input{Subject: "d", Email: "d@else.example", Claims: map[string]any{"department": "research"}}, false},
		{"CEL alternative without the claim", policy.Input{Subject: "d", Email: "d@else.example", EmailVerified: true}, false},
		{"require refuses a listed but suspended user", policy.Input{Subject: "google-oauth2|1234", Claims: map[string]any{"groups": []any{"suspended"}}}, false},
		{"stranger", policy.Input{Subject: "e", Email: "e@evil.test", EmailVerified: true}, false},
	}
	for _, tt := range admit {
		if d := p.Admit(ctx, &tt.in); d.Admitted != tt.want {
			t.Errorf("%s: Admit = %+v, want admitted=%v", tt.name, d, tt.want)
		}
	}

	editor := &policy.Input{Subject: "u1", Scopes: []string{"mcp:read", "mcp:write"}, Claims: map[string]any{"groups": []any{"editors"}}}
	viewer := &policy.Input{Subject: "u2", Scopes: []string{"mcp:read"}}
	calls := []struct {
		name string
		in   *policy.Input
		call policy.Call
		want policy.Outcome
	}{
		{"viewer reads", viewer, policy.Call{Method: "tools/call", Name: "get_issue"}, policy.Allowed},
		{"viewer cannot write", viewer, policy.Call{Method: "tools/call", Name: "delete_issue"}, policy.DeniedForbidden},
		{"editor writes", editor, policy.Call{Method: "tools/call", Name: "update_issue"}, policy.Allowed},
		{"own report", viewer, policy.Call{Method: "resources/read", Name: "file:///reports/u2/q1.csv"}, policy.Allowed},
		{"someone else's report", viewer, policy.Call{Method: "resources/read", Name: "file:///reports/u1/q1.csv"}, policy.DeniedForbidden},
		{"completion needs read", &policy.Input{Subject: "u3"}, policy.Call{Method: "completion/complete"}, policy.DeniedScope},
	}
	for _, tt := range calls {
		if d := p.Authorize(ctx, tt.in, tt.call); d.Outcome != tt.want {
			t.Errorf("%s: Authorize = %+v, want outcome %d", tt.name, d, tt.want)
		}
	}
}

func TestParseListsEveryProblem(t *testing.T) {
	src := `
group_claims: [groups, {nested: map}]
admision:
  allow: {emails: [a@b.example]}
admission:
  allow:
    emails: "alice@example.com"
    domains: ["*.example.com"]
    groupz: [x]
    condition: 'method == "tools/call"'
  require: 'claims.level + 1'
authorization:
  default: deny
  rules:
    - tools: ["ok_*"]
      scope: [mcp:read]
    - tools: ['bad\']
      condition: 'sub.startsWith('
    - prompts: [p]
      condition: 'sub == 1'
`
	_, _, err := policyfile.Parse([]byte(src))
	var inv *policyfile.InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("Parse = %v; want an *InvalidError", err)
	}
	for _, want := range []string{
		`top level: unknown key "admision" (line 3); known keys: admission, authorization, group_claims`,
		`admission.allow: unknown key "groupz" (line 9)`,
		`authorization.rules[0]: unknown key "scope" (line 16)`,
		"admission.allow.emails (line 7): expected a list, as in [a, b]",
		"group_claims[1] (line 2): write a claim name or a list of path segments",
		`admission.allow.domains[0]: "*.example.com": subdomains are not matched`,
		"admission.allow.condition: ERROR: <input>:1:1: undeclared reference to 'method'",
		"admission.require: the expression gives int, not bool",
		"authorization.rules[1].condition: ERROR: <input>:1:16: Syntax error",
		`authorization.rules[1].tools[0]: pattern "bad\\" ends with a lone backslash`,
		"authorization.rules[2].condition: ERROR: <input>:1:5: found no matching overload for '_==_' applied to '(string, int)'",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not mention %q", want)
		}
	}
	if strings.Contains(err.Error(), "not found in type") || strings.Contains(err.Error(), "cannot unmarshal") {
		t.Error("a problem is reported twice, once with the decoder's Go type names")
	}
	if t.Failed() {
		t.Log(err)
	}
}

func TestParseRefusesWhatIsNotAPolicy(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"empty", "", "the file is empty"},
		{"comments only", "# nothing yet\n", "the file is empty"},
		{"a list", "- admission\n", "top level (line 1): expected a mapping"},
		{"a scalar", "deny\n", "top level (line 1): expected a mapping"},
		{"not YAML", "admission: [\n", "not valid YAML"},
		{"duplicate keys", "admission:\n  require: 'true'\nadmission:\n  require: 'false'\n", `mapping key "admission" already defined`},
		{"admission with everything commented out", "admission:\n#  allow:\n#    domains: [example.com]\n", "admission (line 1): empty section"},
		{"empty authorization", "authorization:\n", "authorization (line 1): empty section"},
		{"empty rule", "authorization:\n  rules:\n    -\n", "authorization.rules[0]"},
		{"a section given a value", "admission: yes\n", "admission (line 1): expected a mapping with the keys allow, require"},
		{"a list given a string", "admission:\n  allow:\n    emails: a@b.example\n", "admission.allow.emails (line 3): expected a list"},
		{"a list of mappings", "admission:\n  allow:\n    groups: [{a: b}]\n", "admission.allow.groups[0] (line 3): expected a string"},
		{"a string given a list", "authorization:\n  default: [deny]\n", "authorization.default (line 2): expected a string"},
		{"rules given a mapping", "authorization:\n  rules: {tools: [a]}\n", "authorization.rules (line 2): expected a list"},
		{"group claims given a string", "group_claims: groups\n", "group_claims (line 1): expected a list of claim names"},
	}
	for _, tt := range tests {
		_, _, err := policyfile.Parse([]byte(tt.src))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Parse = %v; want an error containing %q", tt.name, err, tt.want)
		}
	}
}

func TestConditionsSeeTheDeclaredVariables(t *testing.T) {
	p := parse(t, `
group_claims: [roles]
authorization:
  rules:
    - tools: ["*"]
      condition: >
        sub == "s1" && client_id == "c1" && !machine && email == "a@x.example" && email_verified &&
        groups == ["r1", "r2"] && scopes == ["mcp"] && method == "tools/call" && name == "t" &&
        claims.tenant == "t1" && email.lowerAscii().endsWith("@x.example")
`)
	in := &policy.Input{
		Subject: "s1", ClientID: "c1", Email: "a@x.example", EmailVerified: true, Scopes: []string{"mcp"},
		Claims: map[string]any{"roles": []any{"r1", "r2"}, "tenant": "t1"},
	}
	if d := p.Authorize(t.Context(), in, policy.Call{Method: "tools/call", Name: "t"}); !d.Allowed() || d.Err != nil {
		t.Fatalf("Authorize = %+v; want every variable bound as declared", d)
	}
}

func TestAnUnverifiedEmailIsInvisibleToConditions(t *testing.T) {
	p := parse(t, `
admission:
  allow:
    condition: 'email.endsWith("@corp.example")'
`)
	unverified := &policy.Input{Subject: "x", Email: "mallory@corp.example"}
	if d := p.Admit(t.Context(), unverified); d.Admitted {
		t.Fatal("an unverified address satisfied an email condition")
	}
	verified := &policy.Input{Subject: "x", Email: "bob@corp.example", EmailVerified: true}
	if d := p.Admit(t.Context(), verified); !d.Admitted {
		t.Fatalf("a verified address was refused: %+v", d)
	}
	trusted := &policy.Input{Subject: "x", Email: "bob@corp.example", TrustEmail: true}
	if d := p.Admit(t.Context(), trusted); !d.Admitted {
		t.Fatalf("an address from a provider that verifies every address was refused: %+v", d)
	}
}

func TestAConditionThatFailsAtRunTimeRefuses(t *testing.T) {
	p := parse(t, `
admission:
  allow:
    condition: 'claims.department == "eng"'
`)
	d := p.Admit(t.Context(), &policy.Input{Subject: "x", Claims: map[string]any{}})
	if d.Admitted || d.Err == nil || !strings.Contains(d.Err.Error(), "no such key: department") || !strings.Contains(d.Err.Error(), "admission.allow.condition") {
		t.Fatalf("Admit = %+v; want refused, with the missing key and the condition's place", d)
	}
}

func TestCostLimitStopsExpensiveConditions(t *testing.T) {
	const quadratic = `
admission:
  allow:
    condition: 'claims.items.all(a, claims.items.all(b, a != b || a == b))'
`
	items := make([]any, 1000)
	for i := range items {
		items[i] = float64(i)
	}
	in := &policy.Input{Subject: "x", Claims: map[string]any{"items": items}}

	d := parse(t, quadratic).Admit(t.Context(), in)
	if d.Admitted || !errors.Is(d.Err, policyfile.ErrCostLimit) || !strings.Contains(d.Err.Error(), "limit 100000") {
		t.Fatalf("default limit: Admit = %+v; want refused for exceeding the cost limit", d)
	}

	small := &policy.Input{Subject: "x", Claims: map[string]any{"items": items[:10]}}
	if d := parse(t, quadratic).Admit(t.Context(), small); !d.Admitted {
		t.Fatalf("a cheap evaluation of the same condition was refused: %+v", d)
	}
	if d := parse(t, quadratic, policyfile.WithCostLimit(50)).Admit(t.Context(), small); !errors.Is(d.Err, policyfile.ErrCostLimit) {
		t.Fatalf("WithCostLimit(50): Admit = %+v; want the lower limit applied", d)
	}
}

func TestConditionsStopWhenTheRequestIsCancelled(t *testing.T) {
	p := parse(t, `
admission:
  allow:
    condition: 'claims.items.all(a, a >= 0.0)'
`)
	items := make([]any, 5000)
	for i := range items {
		items[i] = float64(i)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	d := p.Admit(ctx, &policy.Input{Subject: "x", Claims: map[string]any{"items": items}})
	if d.Admitted || !errors.Is(d.Err, context.Canceled) {
		t.Fatalf("Admit = %+v; want refused with the cancellation", d)
	}
}

func TestConditionResultMustBeBool(t *testing.T) {
	_, _, err := policyfile.Parse([]byte("admission:\n  allow:\n    condition: claims.admin\n"))
	if err == nil || !strings.Contains(err.Error(), "gives dyn, not bool") {
		t.Fatalf("Parse = %v; want a dyn result refused at load", err)
	}
}

func TestSummaryCountsEachPart(t *testing.T) {
	_, sum, err := policyfile.Parse([]byte(fullPolicy))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Emails != 1 || sum.Domains != 1 || sum.Subjects != 1 || sum.Groups != 2 || sum.MachineClients != 1 ||
		sum.AdmissionConditions != 2 || sum.Rules != 4 || sum.RuleConditions != 1 || sum.Expressions != 3 || sum.DefaultDeny {
		t.Fatalf("Summary = %+v", sum)
	}
	want := `group claims: groups, https://example.com/roles, realm_access.roles, [odd.key, roles]
admission: 1 email, 1 domain, 1 subject, 2 groups, 1 machine client, 2 conditions
authorization: 4 rules (1 with a condition), default allow
expressions: 3`
	if got := sum.String(); got != want {
		t.Fatalf("String() =\n%s\nwant\n%s", got, want)
	}
	_, open, err := policyfile.Parse([]byte("authorization:\n  default: deny\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s := open.String(); !strings.Contains(s, "admission: not restricted") || !strings.Contains(s, "0 rules (0 with a condition), default deny") {
		t.Fatalf("String() = %s", s)
	}
}

// TestFileShapeMatchesTheStructs guards the key check: a key added to a
// struct but not to the shape would be refused as unknown, and the reverse
// would be accepted and ignored.
func TestFileShapeMatchesTheStructs(t *testing.T) {
	for name, pair := range map[string]struct {
		keys []string
		typ  reflect.Type
	}{
		"top":           {policyfile.ShapeKeys(), policyfile.FileType()},
		"admission":     {policyfile.ShapeKeys("admission"), policyfile.FileType().Field(1).Type.Elem()},
		"allow":         {policyfile.ShapeKeys("admission", "allow"), policyfile.FileType().Field(1).Type.Elem().Field(0).Type},
		"authorization": {policyfile.ShapeKeys("authorization"), policyfile.FileType().Field(2).Type.Elem()},
		"rule":          {policyfile.ShapeKeys("authorization", "rules", "[]"), policyfile.FileType().Field(2).Type.Elem().Field(1).Type.Elem()},
	} {
		var tags []string
		for i := range pair.typ.NumField() {
			tags = append(tags, pair.typ.Field(i).Tag.Get("yaml"))
		}
		slices.Sort(tags)
		if !slices.Equal(tags, pair.keys) {
			t.Errorf("%s: struct keys %v, shape keys %v", name, tags, pair.keys)
		}
	}
}

func TestRestrictingMachinesAloneAdmitsEveryPerson(t *testing.T) {
	p := parse(t, "admission:\n  allow:\n    machine_clients: [ci]\n    condition: '!machine'\n")
	for _, tt := range []struct {
		in   policy.Input
		want bool
	}{
		{policy.Input{Subject: "anyone"}, true},
		{policy.MachineInput("ci", nil), true},
		{policy.MachineInput("other", nil), false},
	} {
		if got := p.Admit(t.Context(), &tt.in).Admitted; got != tt.want {
			t.Errorf("%+v: admitted %v, want %v", tt.in, got, tt.want)
		}
	}
}

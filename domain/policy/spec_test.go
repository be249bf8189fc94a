package policy_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/oidcproxy/oidcproxy/domain/policy"
)

func TestNewListsEveryProblem(t *testing.T) {
	_, err := policy.New(policy.Spec{
		GroupClaims: []policy.ClaimPath{{}},
		Admission: &policy.AdmissionSpec{
			Emails:         []string{"not-an-address", "a@b@c", "ok@example.com"},
			Domains:        []string{"user@example.com", "*.example.com", ".example.com", "example.com.", "exa*mple.com"},
			Subjects:       []string{"", " padded"},
			Groups:         []string{"tab\tinside"},
			MachineClients: []string{"ci\n"},
		},
		Authorization: &policy.AuthorizationSpec{
			Default: "maybe",
			Rules: []policy.RuleSpec{
				{Scopes: []string{"s"}},
				{Tools: []string{"", `bad\`}, Prompts: []string{"p\x00"}, Scopes: []string{"two scopes", `quote"`}},
				{Resources: []string{"file:///*"}, Groups: []string{""}},
			},
		},
	})
	if err == nil {
		t.Fatal("New accepted a policy full of mistakes")
	}
	for _, want := range []string{
		"group_claims[0]: empty claim name",
		`admission.allow.emails[0]: "not-an-address" is not an email address`,
		`admission.allow.emails[1]: "a@b@c" is not an email address`,
		`admission.allow.domains[0]: "user@example.com": write the domain without '@'`,
		`admission.allow.domains[1]: "*.example.com": subdomains are not matched`,
		`admission.allow.domains[2]: ".example.com": subdomains are not matched`,
		`admission.allow.domains[3]: "example.com." is not a domain name`,
		`admission.allow.domains[4]: "exa*mple.com" is not a domain name`,
		"admission.allow.subjects[0]: empty value",
		`admission.allow.subjects[1]: " padded" has leading or trailing spaces`,
		"admission.allow.groups[0]: \"tab\\tinside\" contains a control character",
		`admission.allow.machine_clients[0]: "ci\n" has leading or trailing spaces`,
		`authorization.default: "maybe" is neither allow nor deny`,
		"authorization.rules[0]: matches nothing: give methods, tools, prompts or resources",
		"authorization.rules[1].tools[0]: empty pattern",
		`authorization.rules[1].tools[1]: pattern "bad\\" ends with a lone backslash`,
		"authorization.rules[1].prompts[0]: pattern \"p\\x00\" contains a control character",
		`authorization.rules[1].scopes[0]: "two scopes" is not one scope token`,
		`authorization.rules[1].scopes[1]: "quote\"" is not one scope token`,
		"authorization.rules[2].groups[0]: empty value",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not mention %q", want)
		}
	}
	if strings.Contains(err.Error(), "emails[2]") {
		t.Error("a valid email was reported")
	}
	if t.Failed() {
		t.Log(err)
	}
}

func TestNewRejectsAnEmptyAdmissionSection(t *testing.T) {
	_, err := policy.New(policy.Spec{Admission: &policy.AdmissionSpec{}})
	if err == nil || !strings.Contains(err.Error(), "admission: no allow entry and no require condition") {
		t.Fatalf("New = %v", err)
	}
}

func TestNewRejectsRulesRequiringNothingUnderDefaultAllow(t *testing.T) {
	for _, def := range []policy.Default{"", policy.DefaultAllow} {
		_, err := policy.New(policy.Spec{Authorization: &policy.AuthorizationSpec{Default: def, Rules: []policy.RuleSpec{
			{Tools: []string{"a"}, Scopes: []string{"s"}},
			{Tools: []string{"b"}},
		}}})
		if err == nil || !strings.Contains(err.Error(), "authorization.rules[1]: requires nothing") || strings.Contains(err.Error(), "rules[0]") {
			t.Errorf("default %q: New = %v", def, err)
		}
	}
}

func TestNewAcceptsRulesRequiringNothingUnderDefaultDeny(t *testing.T) {
	mustNew(t, policy.Spec{Authorization: &policy.AuthorizationSpec{Default: policy.DefaultDeny, Rules: []policy.RuleSpec{{Tools: []string{"*"}}}}})
	mustNew(t, policy.Spec{Authorization: &policy.AuthorizationSpec{}})
	mustNew(t, policy.Spec{})
}

func TestNewBoundsTheNumberOfRules(t *testing.T) {
	rules := make([]policy.RuleSpec, 1025)
	for i := range rules {
		rules[i] = policy.RuleSpec{Tools: []string{"t"}, Scopes: []string{"s"}}
	}
	if _, err := policy.New(policy.Spec{Authorization: &policy.AuthorizationSpec{Rules: rules}}); err == nil || !strings.Contains(err.Error(), "at most 1024") {
		t.Fatalf("New = %v", err)
	}
	mustNew(t, policy.Spec{Authorization: &policy.AuthorizationSpec{Rules: rules[:1024]}})
}

func TestStatsCountEachPart(t *testing.T) {
	p := mustNew(t, policy.Spec{
		GroupClaims: []policy.ClaimPath{mustClaim(t, "roles"), mustClaim(t, "realm_access.roles")},
		Admission: &policy.AdmissionSpec{
			Emails: []string{"a@x.example", "b@x.example"}, Domains: []string{"x.example"},
			Subjects: []string{"s"}, Groups: []string{"g1", "g2", "g3"}, MachineClients: []string{"m"},
			Condition: always(true), Require: always(true),
		},
		Authorization: &policy.AuthorizationSpec{Default: policy.DefaultDeny, Rules: []policy.RuleSpec{
			{Tools: []string{"a"}}, {Tools: []string{"b"}, Condition: always(true)},
		}},
	})
	s := p.Stats()
	want := policy.Stats{
		Admission: true, Emails: 2, Domains: 1, Subjects: 1, Groups: 3, MachineClients: 1, AdmissionConditions: 2, Requires: true,
		Authorization: true, DefaultDeny: true, Rules: 2, RuleConditions: 1,
	}
	want.GroupClaims = []string{"roles", "realm_access.roles"}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("Stats = %+v", s)
	}
	if d := mustNew(t, policy.Spec{}).Stats(); !slices.Equal(d.GroupClaims, []string{"groups"}) || d.Admission || d.Authorization {
		t.Fatalf("empty policy Stats = %+v; want the default group claim and nothing else", d)
	}
}

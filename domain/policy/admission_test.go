package policy_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/domain/policy"
)

func admissionPolicy(t *testing.T) *policy.Policy {
	return mustNew(t, policy.Spec{
		GroupClaims: []policy.ClaimPath{
			mustClaim(t, "groups"),
			mustClaim(t, "https://example.com/roles"),
			mustClaim(t, "realm_access.roles"),
		},
		Admission: &policy.AdmissionSpec{
			Emails:         []string{"Alice@Example.com", "kevin@example.com"},
			Domains:        []string{"Corp.Example", "korp.example"},
			Subjects:       []string{"sub-123"},
			Groups:         []string{"admins", "mcp-users"},
			MachineClients: []string{"ci-runner"},
		},
	})
}

func TestAdmissionAllowLists(t *testing.T) {
	p := admissionPolicy(t)
	tests := []struct {
		name       string
		in         policy.Input
		admitted   bool
		wantReason string
	}{
		{"verified email, any case", policy.Input{Subject: "s", Email: "alice@EXAMPLE.com", EmailVerified: true}, true, "admission.allow.emails[0]"},
		{"unverified email never matches", policy.Input{Subject: "s", Email: "alice@example.com"}, false, policy.ReasonNoMatch},
		{"an IdP trusted to verify needs no claim", policy.Input{Subject: "s", Email: "alice@example.com", TrustEmail: true}, true, "admission.allow.emails[0]"},
		{"verified domain", policy.Input{Subject: "s", Email: "bob@corp.example", EmailVerified: true}, true, `admission.allow.domains[0] "corp.example"`},
		{"domain in any case", policy.Input{Subject: "s", Email: "bob@CORP.EXAMPLE", EmailVerified: true}, true, `admission.allow.domains[0] "corp.example"`},
		{"unverified domain never matches", policy.Input{Subject: "s", Email: "bob@corp.example"}, false, policy.ReasonNoMatch},
		{"a subdomain is another domain", policy.Input{Subject: "s", Email: "bob@eng.corp.example", EmailVerified: true}, false, policy.ReasonNoMatch},
		{"the domain is after the last @", policy.Input{Subject: "s", Email: "bob@corp.example@evil.test", EmailVerified: true}, false, policy.ReasonNoMatch},
		{"a lookalike suffix is not the domain", policy.Input{Subject: "s", Email: "bob@notcorp.example", EmailVerified: true}, false, policy.ReasonNoMatch},
		{"Unicode case folding does not reach a listed domain", policy.Input{Subject: "s", Email: "bob@\u212Aorp.example", EmailVerified: true}, false, policy.ReasonNoMatch},
		{"Unicode case folding does not reach a listed email", policy.Input{Subject: "s", Email: "\u212Aevin@example.com", EmailVerified: true}, false, policy.ReasonNoMatch},
		{"subject", policy.Input{Subject: "sub-123"}, true, "admission.allow.subjects[0]"},
		{"subjects are exact", policy.Input{Subject: "SUB-123"}, false, policy.ReasonNoMatch},
		{"group claim as a JSON array", policy.Input{Subject: "s", Claims: map[string]any{"groups": []any{"users", "admins"}}}, true, `admission.allow.groups[0] "admins"`},
		{"group claim as Go strings", policy.Input{Subject: "s", Claims: map[string]any{"groups": []string{"mcp-users"}}}, true, `admission.allow.groups[1] "mcp-users"`},
		{"group claim as one string", policy.Input{Subject: "s", Claims: map[string]any{"groups": "admins"}}, true, `admission.allow.groups[0] "admins"`},
		{"groups are exact", policy.Input{Subject: "s", Claims: map[string]any{"groups": []any{"Admins", 7}}}, false, policy.ReasonNoMatch},
		{"namespaced URL claim", policy.Input{Subject: "s", Claims: map[string]any{"https://example.com/roles": []any{"admins"}}}, true, `admission.allow.groups[0] "admins"`},
		{"dotted path claim", policy.Input{Subject: "s", Claims: map[string]any{"realm_access": map[string]any{"roles": []any{"mcp-users"}}}}, true, `admission.allow.groups[1] "mcp-users"`},
		{"a claim not configured as a group claim", policy.Input{Subject: "s", Claims: map[string]any{"roles": []any{"admins"}}}, false, policy.ReasonNoMatch},
		{"machine client by id", policy.MachineInput("ci-runner", nil), true, `admission.allow.machine_clients[0] "ci-runner"`},
		{"unknown machine client", policy.MachineInput("other", nil), false, policy.ReasonNoMatch},
		{"a machine is not admitted by the subject list", policy.MachineInput("sub-123", nil), false, policy.ReasonNoMatch},
		{"a machine carries no groups", policy.Input{Subject: "ci", ClientID: "ci", Machine: true, Claims: map[string]any{"groups": []any{"admins"}}}, false, policy.ReasonNoMatch},
		{"a person is not admitted by the client they use", policy.Input{Subject: "s", ClientID: "ci-runner"}, false, policy.ReasonNoMatch},
		{"nobody listed", policy.Input{Subject: "s", Email: "eve@evil.test", EmailVerified: true}, false, policy.ReasonNoMatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Admit(t.Context(), &tt.in)
			if d.Admitted != tt.admitted || d.Reason != tt.wantReason || d.Err != nil {
				t.Fatalf("Admit = %+v; want admitted=%v reason %q", d, tt.admitted, tt.wantReason)
			}
		})
	}
}

func TestUserInputCarriesTheVerifiedIdentity(t *testing.T) {
	p := admissionPolicy(t)
	id := domain.Identity{Subject: "s", Email: "alice@example.com", EmailVerified: false}
	in := policy.UserInput(id, "client", []string{"mcp"}, false)
	if p.Admit(t.Context(), &in).Admitted {
		t.Fatal("an unverified address was admitted")
	}
	in = policy.UserInput(id, "client", nil, true)
	if !p.Admit(t.Context(), &in).Admitted {
		t.Fatal("an address from a provider that verifies every address was refused")
	}
}

func TestAdmissionConditionIsOneMoreAlternative(t *testing.T) {
	var seen *policy.Facts
	cond := condFunc(func(_ context.Context, f *policy.Facts) (bool, error) {
		seen = f
		return f.Input.Claims["department"] == "eng", nil
	})
	p := mustNew(t, policy.Spec{
		GroupClaims: []policy.ClaimPath{mustClaim(t, "groups"), mustClaim(t, "roles")},
		Admission:   &policy.AdmissionSpec{Subjects: []string{"listed"}, Condition: cond},
	})

	listed := policy.Input{Subject: "listed"}
	if d := p.Admit(t.Context(), &listed); !d.Admitted || d.Reason != "admission.allow.subjects[0]" || seen != nil {
		t.Fatalf("listed subject: %+v (condition evaluated: %v); want admitted by the list without the condition", d, seen != nil)
	}
	eng := policy.Input{Subject: "x", Claims: map[string]any{"department": "eng", "groups": []any{"g1"}, "roles": "r1"}}
	if d := p.Admit(t.Context(), &eng); !d.Admitted || d.Reason != policy.ReasonCondition {
		t.Fatalf("condition true: %+v", d)
	}
	if !slices.Equal(seen.Groups, []string{"g1", "r1"}) || seen.Method != "" || seen.Name != "" {
		t.Fatalf("facts: groups %v method %q name %q; want both group claims united and no request", seen.Groups, seen.Method, seen.Name)
	}
	sales := policy.Input{Subject: "x", Claims: map[string]any{"department": "sales"}}
	if d := p.Admit(t.Context(), &sales); d.Admitted || d.Reason != policy.ReasonNoMatch {
		t.Fatalf("condition false: %+v", d)
	}
}

func TestAdmissionConditionErrorRefuses(t *testing.T) {
	boom := errors.New("cost limit exceeded")
	p := mustNew(t, policy.Spec{Admission: &policy.AdmissionSpec{
		Condition: condFunc(func(context.Context, *policy.Facts) (bool, error) { return true, boom }),
	}})
	d := p.Admit(t.Context(), &policy.Input{Subject: "x"})
	if d.Admitted || !errors.Is(d.Err, boom) {
		t.Fatalf("Admit = %+v; want refused with the condition's error", d)
	}
}

func TestAdmissionRequireMustHoldForEveryone(t *testing.T) {
	inDomain := condFunc(func(_ context.Context, f *policy.Facts) (bool, error) {
		return f.Input.EmailTrusted() && strings.HasSuffix(f.Input.Email, "@corp.example"), nil
	})
	// "members of group X AND domain Y": the group in the lists, the
	// domain as the requirement.
	p := mustNew(t, policy.Spec{Admission: &policy.AdmissionSpec{Groups: []string{"x"}, Require: inDomain}})
	member := func(email string, verified bool) *policy.Input {
		return &policy.Input{Subject: "s", Email: email, EmailVerified: verified, Claims: map[string]any{"groups": []any{"x"}}}
	}
	tests := []struct {
		name     string
		in       *policy.Input
		admitted bool
		reason   string
	}{
		{"in the group and the domain", member("a@corp.example", true), true, `admission.allow.groups[0] "x"`},
		{"in the group, another domain", member("a@other.example", true), false, policy.ReasonRequireFailed},
		{"in the group, unverified address", member("a@corp.example", false), false, policy.ReasonRequireFailed},
		{"in the domain, not the group", &policy.Input{Subject: "s", Email: "a@corp.example", EmailVerified: true}, false, policy.ReasonNoMatch},
	}
	for _, tt := range tests {
		d := p.Admit(t.Context(), tt.in)
		if d.Admitted != tt.admitted || d.Reason != tt.reason {
			t.Errorf("%s: Admit = %+v; want admitted=%v reason %q", tt.name, d, tt.admitted, tt.reason)
		}
	}
}

func TestAdmissionRequireAloneDecides(t *testing.T) {
	boom := errors.New("no such key")
	p := mustNew(t, policy.Spec{Admission: &policy.AdmissionSpec{Require: condFunc(func(_ context.Context, f *policy.Facts) (bool, error) {
		if f.Input.Subject == "error" {
			return false, boom
		}
		return f.Input.Subject == "yes", nil
	})}})
	if d := p.Admit(t.Context(), &policy.Input{Subject: "yes"}); !d.Admitted || d.Reason != policy.ReasonRequire {
		t.Errorf("require true: %+v", d)
	}
	if d := p.Admit(t.Context(), &policy.Input{Subject: "no"}); d.Admitted || d.Reason != policy.ReasonRequireFailed {
		t.Errorf("require false: %+v", d)
	}
	if d := p.Admit(t.Context(), &policy.Input{Subject: "error"}); d.Admitted || !errors.Is(d.Err, boom) {
		t.Errorf("require error: %+v", d)
	}
}

func TestNoAdmissionSectionAdmitsEveryone(t *testing.T) {
	var none *policy.Policy
	toolsOnly := mustNew(t, policy.Spec{Authorization: &policy.AuthorizationSpec{Rules: []policy.RuleSpec{{Tools: []string{"x"}, Scopes: []string{"s"}}}}})
	for _, p := range []*policy.Policy{none, toolsOnly} {
		d := p.Admit(t.Context(), &policy.Input{Subject: "anyone"})
		if !d.Admitted || d.Reason != policy.ReasonNoPolicy {
			t.Errorf("Admit = %+v; want admitted, no policy", d)
		}
		if p.RestrictsAdmission() {
			t.Error("RestrictsAdmission is true without an admission section")
		}
	}
	if !admissionPolicy(t).RestrictsAdmission() {
		t.Error("RestrictsAdmission is false with an admission section")
	}
}

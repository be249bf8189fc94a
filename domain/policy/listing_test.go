package policy_test

import (
	"testing"

	"github.com/oidcproxy/oidcproxy/domain/policy"
)

func TestMayHideTellsWhichListsNeedFiltering(t *testing.T) {
	kinds := []policy.Kind{policy.KindTool, policy.KindPrompt, policy.KindResource}
	tests := []struct {
		name string
		spec policy.Spec
		// hides is the answer for tools, prompts and resources.
		hides      [3]bool
		authorizes bool
	}{
		{"no policy", policy.Spec{}, [3]bool{}, false},
		{"admission only", policy.Spec{Admission: &policy.AdmissionSpec{Domains: []string{"example.com"}}}, [3]bool{}, false},
		{"a tool rule hides tools only", policy.Spec{Authorization: &policy.AuthorizationSpec{Rules: []policy.RuleSpec{
			{Tools: []string{"delete_*"}, Scopes: []string{"admin"}},
		}}}, [3]bool{true, false, false}, true},
		{"an exact prompt rule", policy.Spec{Authorization: &policy.AuthorizationSpec{Rules: []policy.RuleSpec{
			{Prompts: []string{"summarize"}, Scopes: []string{"p"}},
		}}}, [3]bool{false, true, false}, true},
		{"a floating resource glob", policy.Spec{Authorization: &policy.AuthorizationSpec{Rules: []policy.RuleSpec{
			{Resources: []string{"*secret*"}, Groups: []string{"security"}},
		}}}, [3]bool{false, false, true}, true},
		{"default deny hides every kind", policy.Spec{Authorization: &policy.AuthorizationSpec{Default: policy.DefaultDeny, Rules: []policy.RuleSpec{
			{Methods: []string{"ping"}},
		}}}, [3]bool{true, true, true}, true},
		{"a methods rule on the calling method", policy.Spec{Authorization: &policy.AuthorizationSpec{Rules: []policy.RuleSpec{
			{Methods: []string{"tools/*"}, Scopes: []string{"t"}},
		}}}, [3]bool{true, false, false}, true},
		{"a methods rule ending in the method", policy.Spec{Authorization: &policy.AuthorizationSpec{Rules: []policy.RuleSpec{
			{Methods: []string{"*/get"}, Scopes: []string{"t"}},
		}}}, [3]bool{false, true, false}, true},
		{"a methods rule on an unrelated method", policy.Spec{Authorization: &policy.AuthorizationSpec{Rules: []policy.RuleSpec{
			{Methods: []string{"completion/complete"}, Scopes: []string{"c"}},
		}}}, [3]bool{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p *policy.Policy
			if tt.spec.Admission != nil || tt.spec.Authorization != nil {
				p = mustNew(t, tt.spec)
			}
			if got := p.Authorizes(); got != tt.authorizes {
				t.Errorf("Authorizes() = %v, want %v", got, tt.authorizes)
			}
			for i, k := range kinds {
				if got := p.MayHide(k); got != tt.hides[i] {
					t.Errorf("MayHide(%v) = %v, want %v", k, got, tt.hides[i])
				}
			}
			if p.MayHide(policy.KindOther) {
				t.Error("MayHide(KindOther) = true; nothing lists other methods")
			}
		})
	}
}

package policyfile

import (
	"fmt"
	"strings"

	"github.com/oidcproxy/oidcproxy/domain/policy"
)

// Summary describes a loaded policy for `oidcproxy check` and the start-up
// log: counts only, never the entries themselves (they name people).
type Summary struct {
	// Path is the file read; empty for Parse.
	Path string
	policy.Stats
	// Expressions counts the CEL conditions.
	Expressions int
}

func summarize(p *policy.Policy) Summary {
	s := Summary{Stats: p.Stats()}
	s.Expressions = s.AdmissionConditions + s.RuleConditions
	return s
}

// String renders the summary on a few lines.
func (s Summary) String() string {
	var b strings.Builder
	if s.Path != "" {
		fmt.Fprintf(&b, "policy file %s\n", s.Path)
	}
	fmt.Fprintf(&b, "group claims: %s\n", strings.Join(s.GroupClaims, ", "))
	if s.Admission {
		fmt.Fprintf(&b, "admission: %s, %s, %s, %s, %s, %s\n",
			count(s.Emails, "email"), count(s.Domains, "domain"), count(s.Subjects, "subject"),
			count(s.Groups, "group"), count(s.MachineClients, "machine client"),
			count(s.AdmissionConditions, "condition"))
	} else {
		b.WriteString("admission: not restricted (everyone who can sign in at the identity provider)\n")
	}
	if s.Authorization {
		def := "allow"
		if s.DefaultDeny {
			def = "deny"
		}
		fmt.Fprintf(&b, "authorization: %s (%s), default %s\n", count(s.Rules, "rule"), count(s.RuleConditions, "with a condition"), def)
	} else {
		b.WriteString("authorization: every request allowed\n")
	}
	fmt.Fprintf(&b, "expressions: %d", s.Expressions)
	return b.String()
}

func count(n int, what string) string {
	if n == 1 || strings.HasPrefix(what, "with ") {
		return fmt.Sprintf("%d %s", n, what)
	}
	return fmt.Sprintf("%d %ss", n, what)
}

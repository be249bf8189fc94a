package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/oidcproxy/oidcproxy/domain"
)

// maxRules bounds the authorization rules of one policy; evaluation marks
// the rules it has visited in a fixed-size bit set on the stack.
const maxRules = 1024

// Spec is a policy as written, before New checks and compiles it. Its
// layout is the policy file's: the paths in New's errors
// ("authorization.rules[2].tools[0]") name its fields.
type Spec struct {
	// GroupClaims are the claims that carry the caller's groups or roles;
	// their values are united. Empty means the "groups" claim.
	GroupClaims []ClaimPath
	// Admission decides who may sign in; nil admits everyone who can sign
	// in at the IdP (a policy may restrict tools only).
	Admission *AdmissionSpec
	// Authorization decides which requests reach the MCP server; nil
	// allows every request.
	Authorization *AuthorizationSpec
}

// AdmissionSpec is the admission section. A caller is admitted when any
// allow entry matches it (the lists and the condition are alternatives)
// and, when Require is set, Require holds too. With no allow entry at all,
// Require alone decides.
type AdmissionSpec struct {
	// Emails admit a person by address, ignoring the case of ASCII
	// letters, and only when the address is verified.
	Emails []string
	// Domains admit a person by the part of a verified address after its
	// last '@', exactly but for the case of ASCII letters: "example.com"
	// does not admit "eng.example.com", which can be another tenant.
	Domains []string
	// Subjects admit a person by the IdP's subject, exactly.
	Subjects []string
	// Groups admit a person holding any of these values in a group claim.
	Groups []string
	// MachineClients admit machine clients (client_credentials) by client
	// id. No other list ever admits a machine, and this one admits no
	// person.
	MachineClients []string
	// Condition admits whoever it is true for: one more allow entry.
	Condition Condition
	// Require must hold for everyone admitted, whichever entry admitted
	// them ("members of X" in the lists, "and only from domain Y" here).
	Require Condition
}

// Default is what happens to a tools/call, prompts/get or resources/read
// that no rule matches.
type Default string

// The defaults.
const (
	// DefaultAllow lets unmatched calls through, so adding a policy for
	// admission does not lock every tool.
	DefaultAllow Default = "allow"
	// DefaultDeny refuses every tool, prompt and resource no rule names.
	DefaultDeny Default = "deny"
)

// AuthorizationSpec is the authorization section.
type AuthorizationSpec struct {
	// Default applies to calls that name a tool, prompt or resource and
	// match no rule; "" means allow. Other methods (initialize, ping, the
	// lists, notifications) are always allowed unless a rule matches them.
	Default Default
	Rules   []RuleSpec
}

// RuleSpec is one authorization rule. It matches a request when any of its
// patterns does; a request must satisfy every rule it matches.
type RuleSpec struct {
	// Name labels the rule in audit records; optional.
	Name string
	// Methods are globs over the JSON-RPC method ("tools/call",
	// "notifications/*").
	Methods []string
	// Tools, Prompts and Resources are globs over the tool name of
	// tools/call, the prompt name of prompts/get, and the resource URI of
	// resources/read and resources/subscribe.
	Tools     []string
	Prompts   []string
	Resources []string
	// Scopes must all be in the access token.
	Scopes []string
	// Groups: the caller must hold at least one of them.
	Groups []string
	// Condition must be true.
	Condition Condition
}

// New checks spec and compiles it. The error lists every problem found,
// each prefixed with its place in the policy.
func New(spec Spec) (*Policy, error) {
	var errs []error
	bad := func(where string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...)))
	}
	p := &Policy{groupClaims: spec.GroupClaims}
	if len(p.groupClaims) == 0 {
		p.groupClaims = []ClaimPath{{key: "groups"}}
	}
	for i, c := range spec.GroupClaims {
		if c.key == "" && len(c.path) == 0 {
			bad(fmt.Sprintf("group_claims[%d]", i), "empty claim name")
		}
	}
	if spec.Admission != nil {
		p.admission = compileAdmission(spec.Admission, bad)
	}
	if spec.Authorization != nil {
		p.authz = compileAuthorization(spec.Authorization, bad)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	p.stats = p.computeStats(spec)
	return p, nil
}

func compileAdmission(s *AdmissionSpec, bad func(string, string, ...any)) *admission {
	a := &admission{condition: s.Condition, require: s.Require}
	a.emails = entrySet("admission.allow.emails", s.Emails, bad, func(where, v string) (string, string, bool) {
		local, dom, ok := strings.Cut(v, "@")
		if !ok || local == "" || dom == "" || strings.Contains(dom, "@") {
			// An address has one '@' in practice; quoted local parts
			// with '@' are not worth the ambiguity here.
			bad(where, "%q is not an email address", v)
			return "", "", false
		}
		// The address itself stays out of the reason: audit records
		// must not carry email addresses.
		return lowerASCII(v), where, true
	})
	a.domains = entrySet("admission.allow.domains", s.Domains, bad, func(where, v string) (string, string, bool) {
		switch {
		case strings.Contains(v, "@"):
			bad(where, "%q: write the domain without '@' (addresses go in emails)", v)
		case strings.HasPrefix(v, "*.") || strings.HasPrefix(v, "."):
			bad(where, "%q: subdomains are not matched by a pattern; list each domain", v)
		case strings.HasSuffix(v, ".") || strings.Contains(v, "..") || strings.ContainsAny(v, "*/:"):
			bad(where, "%q is not a domain name", v)
		default:
			d := lowerASCII(v)
			return d, where + " " + strconv.Quote(d), true
		}
		return "", "", false
	})
	a.subjects = entrySet("admission.allow.subjects", s.Subjects, bad, keepIndexed)
	a.groups = entrySet("admission.allow.groups", s.Groups, bad, keepNamed)
	a.clients = entrySet("admission.allow.machine_clients", s.MachineClients, bad, keepNamed)
	a.hasAllow = len(s.Emails)+len(s.Domains)+len(s.Subjects)+len(s.Groups)+len(s.MachineClients) > 0 || s.Condition != nil
	if !a.hasAllow && s.Require == nil {
		bad("admission", "no allow entry and no require condition; remove the section to admit everyone")
	}
	return a
}

// keepIndexed keeps a value as written and names it by position only (a
// subject can identify a person).
func keepIndexed(where, v string) (string, string, bool) { return v, where, true }

// keepNamed keeps a value as written and names it in the reason.
func keepNamed(where, v string) (string, string, bool) {
	return v, where + " " + strconv.Quote(v), true
}

// entrySet checks the entries of one allow list and maps each normalised
// value to the reason an audit record gives when it matches.
func entrySet(list string, values []string, bad func(string, string, ...any), norm func(where, v string) (string, string, bool)) map[string]string {
	if len(values) == 0 {
		return nil
	}
	set := make(map[string]string, len(values))
	for i, v := range values {
		where := fmt.Sprintf("%s[%d]", list, i)
		if !checkEntry(where, v, bad) {
			continue
		}
		key, reason, ok := norm(where, v)
		if !ok {
			continue
		}
		if _, dup := set[key]; !dup {
			set[key] = reason
		}
	}
	return set
}

// checkEntry rejects values that can only be mistakes: empty, padded with
// spaces, or holding control characters.
func checkEntry(where, v string, bad func(string, string, ...any)) bool {
	switch {
	case v == "":
		bad(where, "empty value")
	case strings.TrimSpace(v) != v:
		bad(where, "%q has leading or trailing spaces", v)
	case strings.IndexFunc(v, unicode.IsControl) >= 0:
		bad(where, "%q contains a control character", v)
	default:
		return true
	}
	return false
}

func compileAuthorization(s *AuthorizationSpec, bad func(string, string, ...any)) *authorization {
	a := &authorization{}
	switch s.Default {
	case "", DefaultAllow:
	case DefaultDeny:
		a.defaultDeny = true
	default:
		bad("authorization.default", "%q is neither allow nor deny", s.Default)
	}
	if len(s.Rules) > maxRules {
		bad("authorization.rules", "%d rules; at most %d are supported", len(s.Rules), maxRules)
		return a
	}
	a.rules = make([]rule, len(s.Rules))
	for i, rs := range s.Rules {
		where := fmt.Sprintf("authorization.rules[%d]", i)
		r := &a.rules[i]
		r.reason = where
		if rs.Name != "" {
			r.reason += " " + strconv.Quote(rs.Name)
		}
		matchers := len(rs.Methods) + len(rs.Tools) + len(rs.Prompts) + len(rs.Resources)
		if matchers == 0 {
			bad(where, "matches nothing: give methods, tools, prompts or resources")
		}
		a.methods.add(where+".methods", rs.Methods, int32(i), bad)
		a.kinds[KindTool].add(where+".tools", rs.Tools, int32(i), bad)
		a.kinds[KindPrompt].add(where+".prompts", rs.Prompts, int32(i), bad)
		a.kinds[KindResource].add(where+".resources", rs.Resources, int32(i), bad)
		for j, sc := range rs.Scopes {
			if parsed, err := domain.ParseScope(sc); err != nil || len(parsed) != 1 || parsed[0] != sc {
				bad(fmt.Sprintf("%s.scopes[%d]", where, j), "%q is not one scope token", sc)
				continue
			}
			if !containsString(r.scopes, sc) {
				r.scopes = append(r.scopes, sc)
			}
		}
		r.groups = entrySet(where+".groups", rs.Groups, bad, keepNamed)
		r.condition = rs.Condition
		if len(rs.Scopes) == 0 && len(rs.Groups) == 0 && rs.Condition == nil && (s.Default == "" || s.Default == DefaultAllow) {
			bad(where, "requires nothing (no scopes, groups or condition), so under default allow it changes nothing")
		}
	}
	a.computeHides()
	return a
}

func containsString(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// index finds the rules whose patterns match a string: exact patterns by a
// map lookup; globs by bucket, so that a name is tried only against the
// globs that can match it: those whose literal start is its first byte,
// those starting with '*' whose literal end is its last byte, and the few
// that start and end with '*'.
type index struct {
	exact    map[string][]int32
	byFirst  [256][]globRule
	byLast   [256][]globRule
	floating []globRule
}

// globRule is one glob of one rule, with its anchored ends inline so that
// most candidates are rejected without following a pointer.
type globRule struct {
	prefix, suffix string
	glob           Glob
	rule           int32
}

func (x *index) add(where string, patterns []string, rule int32, bad func(string, string, ...any)) {
	for j, pat := range patterns {
		g, err := CompileGlob(pat)
		if err != nil {
			bad(fmt.Sprintf("%s[%d]", where, j), "%v", err)
			continue
		}
		if lit, ok := g.Literal(); ok {
			if x.exact == nil {
				x.exact = make(map[string][]int32)
			}
			if rules := x.exact[lit]; len(rules) == 0 || rules[len(rules)-1] != rule {
				x.exact[lit] = append(rules, rule)
			}
			continue
		}
		gr := globRule{prefix: g.parts[0], suffix: g.parts[len(g.parts)-1], glob: g, rule: rule}
		switch {
		case gr.prefix != "":
			x.byFirst[gr.prefix[0]] = append(x.byFirst[gr.prefix[0]], gr)
		case gr.suffix != "":
			last := gr.suffix[len(gr.suffix)-1]
			x.byLast[last] = append(x.byLast[last], gr)
		default:
			x.floating = append(x.floating, gr)
		}
	}
}

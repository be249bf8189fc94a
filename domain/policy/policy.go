package policy

import (
	"context"
	"strings"
)

// Policy is a compiled, immutable policy; it is safe for concurrent use.
// A nil *Policy is no policy at all: everyone is admitted and every request
// allowed, as without a policy file.
type Policy struct {
	groupClaims []ClaimPath
	admission   *admission
	authz       *authorization
	stats       Stats
}

type admission struct {
	// Each set maps a normalised value to the reason its match gives.
	emails, domains, subjects, groups, clients map[string]string
	condition, require                         Condition
	hasAllow                                   bool
}

type authorization struct {
	defaultDeny bool
	rules       []rule
	methods     index
	kinds       [KindResource + 1]index
	// hides tells, per kind, whether MayCall can refuse an entry (see
	// MayHide).
	hides [KindResource + 1]bool
}

type rule struct {
	reason    string
	scopes    []string
	groups    map[string]string
	condition Condition
}

// Reasons for decisions no single entry made.
const (
	ReasonNoPolicy      = "no policy"
	ReasonNoMatch       = "no admission.allow entry matched"
	ReasonRequireFailed = "admission.require is not satisfied"
	ReasonCondition     = "admission.allow.condition"
	ReasonRequire       = "admission.require"
	ReasonNoRule        = "no authorization rule matched"
	ReasonDefaultDeny   = "authorization.default is deny"
)

// AdmissionDecision is whether a caller may sign in (or keep refreshing)
// and why. Reason is for the audit record and the log, never for the
// user: it names the rule, and names a value only when that value does not
// identify a person (a domain, a group, a client id; emails and subjects
// are named by their position in the list).
type AdmissionDecision struct {
	Admitted bool
	Reason   string
	// Err is why a condition could not be decided (it then counted as
	// false); nil otherwise.
	Err error
}

// Admit decides whether the caller may sign in. It is meant to run after
// the upstream identity is verified and again at every refresh, so taking
// someone out of the policy ends their access at their next refresh.
func (p *Policy) Admit(ctx context.Context, in *Input) AdmissionDecision {
	if p == nil || p.admission == nil {
		return AdmissionDecision{Admitted: true, Reason: ReasonNoPolicy}
	}
	a := p.admission
	reason, ok := p.matchAllow(in)
	var (
		err   error
		facts *Facts
	)
	if !ok && a.condition != nil {
		facts = p.facts(in, Call{})
		ok, err = a.condition.Eval(ctx, facts)
		ok = ok && err == nil
		reason = ReasonCondition
	}
	if !a.hasAllow {
		ok, reason = true, ReasonRequire
	}
	if !ok {
		return AdmissionDecision{Reason: ReasonNoMatch, Err: err}
	}
	if a.require != nil {
		if facts == nil {
			facts = p.facts(in, Call{})
		}
		held, rerr := a.require.Eval(ctx, facts)
		if rerr != nil || !held {
			return AdmissionDecision{Reason: ReasonRequireFailed, Err: rerr}
		}
	}
	return AdmissionDecision{Admitted: true, Reason: reason}
}

// matchAllow tries the allow lists, cheapest first.
func (p *Policy) matchAllow(in *Input) (string, bool) {
	a := p.admission
	if in.Machine {
		r, ok := a.clients[in.ClientID]
		return r, ok
	}
	if r, ok := a.subjects[in.Subject]; ok {
		return r, true
	}
	if in.EmailTrusted() {
		email := lowerASCII(in.Email)
		if r, ok := a.emails[email]; ok {
			return r, true
		}
		if at := strings.LastIndexByte(email, '@'); at >= 0 {
			if r, ok := a.domains[email[at+1:]]; ok {
				return r, true
			}
		}
	}
	if a.groups != nil {
		return p.memberOf(in, a.groups)
	}
	return "", false
}

// memberOf reports whether the caller holds a value of set in any group
// claim.
func (p *Policy) memberOf(in *Input, set map[string]string) (string, bool) {
	if in.Machine || in.Claims == nil {
		return "", false
	}
	for _, c := range p.groupClaims {
		if v, ok := c.Lookup(in.Claims); ok {
			if r, ok := memberOf(v, set); ok {
				return r, true
			}
		}
	}
	return "", false
}

// groups returns the caller's values of every group claim, in claim order;
// nil for a machine.
func (p *Policy) groups(in *Input) []string {
	if p == nil || in.Machine || in.Claims == nil {
		return nil
	}
	var out []string
	for _, c := range p.groupClaims {
		if v, ok := c.Lookup(in.Claims); ok {
			out = appendStrings(out, v)
		}
	}
	return out
}

func (p *Policy) facts(in *Input, call Call) *Facts {
	return &Facts{Input: in, Groups: p.groups(in), Method: call.Method, Name: call.Name}
}

// Outcome is the result of authorizing one request.
type Outcome uint8

// The outcomes.
const (
	// Allowed: forward the request.
	Allowed Outcome = iota
	// DeniedScope: the token lacks scopes a matching rule requires, and
	// nothing else is missing, so a token with more scopes would pass.
	// The gateway answers 403 with an insufficient_scope challenge.
	DeniedScope
	// DeniedForbidden: a group or condition of a matching rule does not
	// hold, or the default is deny; more scopes would not help. The
	// gateway answers 403 with a JSON-RPC error naming the tool.
	DeniedForbidden
)

// CallDecision is the authorization of one request.
type CallDecision struct {
	Outcome Outcome
	// RequiredScopes, for DeniedScope, are every scope the matching rules
	// require (held or not), in rule order: the challenge's scope value, so
	// that the client asks for all of them at once.
	RequiredScopes []string
	// Reason names the deciding rule for the audit record.
	Reason string
	// Err is why a condition could not be decided (it then counted as
	// false); nil otherwise.
	Err error
}

// Allowed reports whether the request may go to the MCP server.
func (d CallDecision) Allowed() bool { return d.Outcome == Allowed }

// ruleSet marks rules already evaluated for one request, since a rule can
// match through several of its patterns.
type ruleSet [maxRules / 64]uint64

func (s *ruleSet) add(i int32) bool {
	w, b := i/64, uint64(1)<<(i%64)
	if s[w]&b != 0 {
		return false
	}
	s[w] |= b
	return true
}

func (s *ruleSet) has(i int) bool { return s[i/64]&(uint64(1)<<(i%64)) != 0 }

// callState gathers what the matching rules said about one request.
type callState struct {
	seen      ruleSet
	matched   int32 // lowest matching rule, -1 for none
	forbidden int32 // lowest rule whose group or condition failed, -1
	scopeless int32 // lowest rule whose scopes are missing, -1
	err       error
	facts     *Facts
}

// Authorize decides one JSON-RPC request: every rule matching it must be
// satisfied; a call naming a tool, prompt or resource that no rule matches
// gets the default; any other method is allowed. Without conditions, an
// allowed request costs a few map lookups and no allocation.
func (p *Policy) Authorize(ctx context.Context, in *Input, call Call) CallDecision {
	return p.authorize(ctx, in, call, true)
}

// authorize decides; listScopes asks for RequiredScopes on DeniedScope.
func (p *Policy) authorize(ctx context.Context, in *Input, call Call, listScopes bool) CallDecision {
	if p == nil || p.authz == nil {
		return CallDecision{Reason: ReasonNoPolicy}
	}
	a := p.authz
	st := callState{matched: -1, forbidden: -1, scopeless: -1}
	kind := KindOf(call.Method)
	p.visit(ctx, in, call, &a.methods, call.Method, &st)
	if kind != KindOther {
		p.visit(ctx, in, call, &a.kinds[kind], call.Name, &st)
	}
	switch {
	case st.matched < 0 && kind != KindOther && a.defaultDeny:
		return CallDecision{Outcome: DeniedForbidden, Reason: ReasonDefaultDeny}
	case st.matched < 0:
		return CallDecision{Reason: ReasonNoRule}
	case st.forbidden >= 0:
		return CallDecision{Outcome: DeniedForbidden, Reason: a.rules[st.forbidden].reason, Err: st.err}
	case st.scopeless >= 0:
		var scopes []string
		for i := range a.rules {
			if !listScopes {
				break
			}
			if st.seen.has(i) {
				for _, s := range a.rules[i].scopes {
					if !containsString(scopes, s) {
						scopes = append(scopes, s)
					}
				}
			}
		}
		return CallDecision{Outcome: DeniedScope, RequiredScopes: scopes, Reason: a.rules[st.scopeless].reason}
	}
	return CallDecision{Reason: a.rules[st.matched].reason}
}

// MayCall reports whether the caller may use the tool, prompt or resource
// of kind k named name: the test the gateway applies to each entry of a
// tools/list, prompts/list or resources/list answer, so that a caller sees
// only what it may call.
func (p *Policy) MayCall(ctx context.Context, in *Input, k Kind, name string) bool {
	if k == KindOther {
		return true
	}
	return p.authorize(ctx, in, Call{Method: k.callMethod(), Name: name}, false).Allowed()
}

// visit evaluates each not yet seen rule of x that matches s.
func (p *Policy) visit(ctx context.Context, in *Input, call Call, x *index, s string, st *callState) {
	for _, i := range x.exact[s] {
		p.check(ctx, in, call, i, st)
	}
	if s != "" {
		p.visitGlobs(ctx, in, call, x.byFirst[s[0]], s, st)
		p.visitGlobs(ctx, in, call, x.byLast[s[len(s)-1]], s, st)
	}
	p.visitGlobs(ctx, in, call, x.floating, s, st)
}

func (p *Policy) visitGlobs(ctx context.Context, in *Input, call Call, globs []globRule, s string, st *callState) {
	for j := range globs {
		g := &globs[j]
		if strings.HasPrefix(s, g.prefix) && strings.HasSuffix(s, g.suffix) && g.glob.Match(s) {
			p.check(ctx, in, call, g.rule, st)
		}
	}
}

// check evaluates rule i once per request.
func (p *Policy) check(ctx context.Context, in *Input, call Call, i int32, st *callState) {
	if !st.seen.add(i) {
		return
	}
	r := &p.authz.rules[i]
	st.matched = lowest(st.matched, i)
	ok := true
	if r.groups != nil {
		_, ok = p.memberOf(in, r.groups)
	}
	if ok && r.condition != nil {
		if st.facts == nil {
			st.facts = p.facts(in, call)
		}
		var err error
		ok, err = r.condition.Eval(ctx, st.facts)
		if err != nil {
			ok = false
			if st.err == nil {
				st.err = err
			}
		}
	}
	if !ok {
		st.forbidden = lowest(st.forbidden, i)
	}
	for _, s := range r.scopes {
		if !containsString(in.Scopes, s) {
			st.scopeless = lowest(st.scopeless, i)
			break
		}
	}
}

func lowest(cur, i int32) int32 {
	if cur < 0 || i < cur {
		return i
	}
	return cur
}

// Stats counts what a policy holds, for `oidcproxy check` and the
// start-up log.
type Stats struct {
	// Admission is false when the policy admits everyone the IdP signs in.
	Admission                                         bool
	Emails, Domains, Subjects, Groups, MachineClients int
	// AdmissionConditions counts allow.condition and require.
	AdmissionConditions int
	// Requires is true when admission has a require condition, which every
	// admitted caller must meet besides an allow entry.
	Requires bool
	// Authorization is false when every request is allowed.
	Authorization  bool
	DefaultDeny    bool
	Rules          int
	RuleConditions int
	// GroupClaims are the group claims as written.
	GroupClaims []string
}

// Stats returns the counts of p.
func (p *Policy) Stats() Stats {
	if p == nil {
		return Stats{}
	}
	s := p.stats
	s.GroupClaims = append([]string(nil), s.GroupClaims...)
	return s
}

// GroupClaims returns the claims that carry the caller's groups or roles
// (the "groups" claim when the file names none); nil without a policy. The
// identity provider keeps these claims with the identity (ClaimPath.Keep),
// since they are lists or nested objects, which it otherwise drops.
func (p *Policy) GroupClaims() []ClaimPath {
	if p == nil {
		return nil
	}
	return append([]ClaimPath(nil), p.groupClaims...)
}

// RestrictsAdmission reports whether the policy limits who may sign in;
// without it, a public multi-tenant IdP admits anyone with an account.
func (p *Policy) RestrictsAdmission() bool { return p != nil && p.admission != nil }

func (p *Policy) computeStats(spec Spec) Stats {
	s := Stats{Admission: spec.Admission != nil, Authorization: spec.Authorization != nil}
	for _, c := range p.groupClaims {
		s.GroupClaims = append(s.GroupClaims, c.String())
	}
	if a := spec.Admission; a != nil {
		s.Emails, s.Domains, s.Subjects = len(a.Emails), len(a.Domains), len(a.Subjects)
		s.Groups, s.MachineClients = len(a.Groups), len(a.MachineClients)
		for _, c := range []Condition{a.Condition, a.Require} {
			if c != nil {
				s.AdmissionConditions++
			}
		}
		s.Requires = a.Require != nil
	}
	if z := spec.Authorization; z != nil {
		s.DefaultDeny = p.authz.defaultDeny
		s.Rules = len(z.Rules)
		for _, r := range z.Rules {
			if r.Condition != nil {
				s.RuleConditions++
			}
		}
	}
	return s
}

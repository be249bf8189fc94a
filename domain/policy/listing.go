package policy

// What the gateway asks before it does any work for a request: whether the
// policy decides requests at all (if not, request bodies need not be read),
// and whether it can hide an entry of a list answer (if not, the answer
// streams through untouched).

// Authorizes reports whether the policy has an authorization section, so
// that some request may be refused. Without one, Authorize allows
// everything and a gateway need not read request bodies.
func (p *Policy) Authorizes() bool { return p != nil && p.authz != nil }

// MayHide reports whether MayCall can refuse some entry of kind k to some
// caller: the default is deny, a rule names entries of that kind, or a
// methods rule matches the method that uses them (tools/call, prompts/get,
// resources/read). When it reports false, every entry of a list of kind k
// is visible to everyone, and the list answer need not be filtered (nor
// buffered).
func (p *Policy) MayHide(k Kind) bool {
	if !p.Authorizes() || k == KindOther || k > KindResource {
		return false
	}
	return p.authz.hides[k]
}

// computeHides fills hides once the indexes are built.
func (a *authorization) computeHides() {
	for k := KindTool; k <= KindResource; k++ {
		a.hides[k] = a.defaultDeny || !a.kinds[k].empty() || a.methods.matchesAny(k.callMethod())
	}
}

// empty reports whether the index holds no pattern.
func (x *index) empty() bool {
	if len(x.exact) > 0 || len(x.floating) > 0 {
		return false
	}
	for i := range x.byFirst {
		if len(x.byFirst[i]) > 0 || len(x.byLast[i]) > 0 {
			return false
		}
	}
	return true
}

// matchesAny reports whether any pattern of the index matches s.
func (x *index) matchesAny(s string) bool {
	if len(x.exact[s]) > 0 {
		return true
	}
	for _, globs := range [][]globRule{x.byFirst[s[0]], x.byLast[s[len(s)-1]], x.floating} {
		for j := range globs {
			if globs[j].glob.Match(s) {
				return true
			}
		}
	}
	return false
}

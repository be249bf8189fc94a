package usecase

import (
	"context"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/domain/policy"
	"github.com/oidcproxy/oidcproxy/ports"
)

// admission applies the admission part of the access policy to a person
// the IdP has verified: at the callback, after the upstream login and
// before a code is issued, and at every refresh, against the identity
// stored with the grant (renewed whenever the IdP sends a new ID token).
// Taking someone out of the policy therefore ends their access at their
// next refresh at the latest.
type admission struct {
	// policies hands out the policy in force; nil means no policy.
	policies ports.PolicySource
	// trustEmail is the provider's promise that every address it returns
	// is verified (ports.EmailVerifier).
	trustEmail bool
}

func newAdmission(policies ports.PolicySource, provider ports.IdentityProvider) admission {
	a := admission{}
	if !isNil(policies) {
		a.policies = policies
	}
	if v, ok := provider.(ports.EmailVerifier); ok {
		a.trustEmail = v.TrustsEmail()
	}
	return a
}

// check asks the policy in force whether id may use clientID, and returns
// why not, or nil when it may.
func (a admission) check(ctx context.Context, id domain.Identity, clientID string, scopes []string) *ports.AdmissionRefused {
	if a.policies == nil {
		return nil
	}
	in := policy.UserInput(id, clientID, scopes, a.trustEmail)
	d := a.policies.Policy().Admit(ctx, &in)
	if d.Admitted {
		return nil
	}
	account := id.Email
	if account == "" {
		account = id.Subject
	}
	return &ports.AdmissionRefused{Subject: id.Subject, ClientID: clientID, Account: account, Reason: d.Reason, Err: d.Err}
}

// errNotAdmitted is what the client learns at the callback: the policy is
// for the operator's eyes only.
func errNotAdmitted(refused *ports.AdmissionRefused) error {
	return domain.ErrAccessDenied("the user is not allowed to use this application").WithCause(refused)
}

// errNoLongerAdmitted is what a refresh answers once the policy no longer
// admits the grant's user.
func errNoLongerAdmitted(refused *ports.AdmissionRefused) error {
	return domain.ErrInvalidGrant("the user is no longer allowed to use this application; sign in again").WithCause(refused)
}

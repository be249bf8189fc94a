package usecase_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/domain/policy"
	"github.com/oidcproxy/oidcproxy/ports"
)

// policies is a PolicySource whose policy the test replaces, as a reload
// of the policy file does.
type policies struct {
	mu sync.Mutex
	p  *policy.Policy
}

func (s *policies) Policy() *policy.Policy { s.mu.Lock(); defer s.mu.Unlock(); return s.p }

func (s *policies) set(p *policy.Policy) { s.mu.Lock(); defer s.mu.Unlock(); s.p = p }

func newPolicy(t *testing.T, a policy.AdmissionSpec) *policy.Policy {
	t.Helper()
	p, err := policy.New(policy.Spec{Admission: &a})
	require.NoError(t, err)
	return p
}

// refusal extracts the policy's refusal from a use case's error.
func refusal(t *testing.T, err error) *ports.AdmissionRefused {
	t.Helper()
	var r *ports.AdmissionRefused
	require.True(t, errors.As(err, &r), "not a policy refusal: %v", err)
	return r
}

func TestTheCallbackIssuesACodeOnlyToAnAdmittedUser(t *testing.T) {
	src := &policies{}
	h := newHarnessWith(t, harnessOptions{policies: src})
	c := h.register(t)

	src.set(newPolicy(t, policy.AdmissionSpec{Domains: []string{"example.com"}}))
	require.NotEmpty(t, h.code(t, c), "alice@example.com, verified, is admitted by her domain")

	src.set(newPolicy(t, policy.AdmissionSpec{Domains: []string{"corp.example"}}))
	res, err := h.callback(t, h.upstream(t, c), ports.CompleteCallbackCommand{})

	require.Equal(t, domain.CodeAccessDenied, domain.CodeOf(err))
	e, _ := domain.AsError(err)
	require.False(t, e.NoRedirect, "the client learns of the refusal at its redirect URI")
	require.NotContains(t, e.Description, "alice", "the description goes to the client: no account, no rule")
	require.NotContains(t, e.Description, "corp.example")
	require.Equal(t, c.redirectURI, res.RedirectURI)
	require.Equal(t, "client-state", res.State)
	require.Empty(t, res.Code)
	r := refusal(t, err)
	require.Equal(t, "alice@example.com", r.Account, "the account, for the person's page")
	require.Equal(t, "alice", r.Subject)
	require.Equal(t, c.id, r.ClientID)
	require.Equal(t, policy.ReasonNoMatch, r.Reason)
	require.NotContains(t, err.Error(), "alice@example.com", "the error text reaches the logs")
}

func TestARefusedUserLeavesNoGrantBehind(t *testing.T) {
	src := &policies{p: newPolicy(t, policy.AdmissionSpec{Subjects: []string{"bob"}})}
	h := newHarnessWith(t, harnessOptions{policies: src})
	c := h.register(t)
	_, err := h.callback(t, h.upstream(t, c), ports.CompleteCallbackCommand{})
	refusal(t, err)
	require.Zero(t, h.stored(t), "no grant, code or token was stored")
}

func TestAnUnverifiedAddressIsNamedButNeverAdmitted(t *testing.T) {
	src := &policies{p: newPolicy(t, policy.AdmissionSpec{Emails: []string{"alice@example.com"}})}
	h := newHarnessWith(t, harnessOptions{policies: src, idp: func(p *scriptedIdP) { p.identity.EmailVerified = false }})
	c := h.register(t)
	_, err := h.callback(t, h.upstream(t, c), ports.CompleteCallbackCommand{})
	r := refusal(t, err)
	require.Equal(t, "alice@example.com", r.Account)
}

func TestAProviderThatVerifiesEveryAddressNeedsNoClaim(t *testing.T) {
	src := &policies{p: newPolicy(t, policy.AdmissionSpec{Emails: []string{"alice@example.com"}})}
	h := newHarnessWith(t, harnessOptions{policies: src, idp: func(p *scriptedIdP) {
		p.identity.EmailVerified = false
		p.trustEmail = true
	}})
	require.NotEmpty(t, h.code(t, h.register(t)))
}

func TestWithoutAnAddressTheSubjectNamesTheAccount(t *testing.T) {
	src := &policies{p: newPolicy(t, policy.AdmissionSpec{Subjects: []string{"bob"}})}
	h := newHarnessWith(t, harnessOptions{policies: src, idp: func(p *scriptedIdP) { p.identity.Email = "" }})
	_, err := h.callback(t, h.upstream(t, h.register(t)), ports.CompleteCallbackCommand{})
	require.Equal(t, "alice", refusal(t, err).Account)
}

func TestARefreshAfterThePolicyDroppedTheUserRevokesTheGrant(t *testing.T) {
	src := &policies{p: newPolicy(t, policy.AdmissionSpec{Emails: []string{"alice@example.com"}})}
	h := newHarnessWith(t, harnessOptions{policies: src})
	c := h.register(t)
	tok := h.login(t, c)
	next, err := h.refresh(t, c, tok.RefreshToken)
	require.NoError(t, err, "still admitted")

	src.set(newPolicy(t, policy.AdmissionSpec{Emails: []string{"bob@example.com"}}))
	_, err = h.refresh(t, c, next.RefreshToken)

	require.Equal(t, domain.CodeInvalidGrant, domain.CodeOf(err))
	r := refusal(t, err)
	require.Equal(t, tok.GrantID, r.GrantID)
	require.Equal(t, policy.ReasonNoMatch, r.Reason)
	require.False(t, h.grantLive(t, tok.GrantID), "the grant is revoked")
	require.False(t, h.live(t, next.AccessToken), "and its access tokens with it")
	require.Zero(t, h.idp.refreshes, "decided on the stored identity: the IdP was not asked")

	src.set(newPolicy(t, policy.AdmissionSpec{Emails: []string{"alice@example.com"}}))
	_, err = h.refresh(t, c, next.RefreshToken)
	require.Equal(t, domain.CodeInvalidGrant, domain.CodeOf(err), "taking the user back does not revive the grant")
}

func TestTheRefreshDecidesOnTheIdentityTheIdPSendsAndKeepsIt(t *testing.T) {
	member := domain.Identity{Subject: "alice", Email: "alice@example.com", EmailVerified: true, Claims: map[string]any{"groups": []any{"mcp"}}}
	src := &policies{p: newPolicy(t, policy.AdmissionSpec{Groups: []string{"mcp"}})}
	h := newHarnessWith(t, harnessOptions{policies: src, idp: func(p *scriptedIdP) {
		p.identity = member
		p.upstream.Expiry = time.Date(2030, 1, 1, 1, 0, 0, 0, time.UTC)
	}})
	c := h.register(t)
	tok := h.login(t, c)

	// The IdP's next ID token says alice left the group; the upstream
	// token has expired, so this refresh asks the IdP.
	left := member.Clone()
	left.Claims["groups"] = []any{"other"}
	h.idp.script(func(p *scriptedIdP) { p.refreshIdentity = &left })
	h.clock.Advance(2 * time.Hour)
	_, err := h.refresh(t, c, tok.RefreshToken)
	require.Equal(t, domain.CodeInvalidGrant, domain.CodeOf(err))
	require.Equal(t, 1, h.idp.refreshes)
	require.False(t, h.grantLive(t, tok.GrantID))

	// Another grant: the IdP's new identity adds a claim, which the grant
	// keeps for the refreshes that do not ask the IdP.
	tok = h.login(t, c)
	renamed := member.Clone()
	renamed.Name = "Alice Renamed"
	h.idp.script(func(p *scriptedIdP) { p.refreshIdentity = &renamed })
	h.clock.Advance(2 * time.Hour)
	_, err = h.refresh(t, c, tok.RefreshToken)
	require.NoError(t, err)
	g, err := h.store.GetGrant(t.Context(), tok.GrantID, h.clock.Now())
	require.NoError(t, err)
	require.Equal(t, "Alice Renamed", g.Identity.Name, "the renewed identity is stored with the grant")
}

func TestARenewedIdentityForAnotherSubjectEndsTheGrant(t *testing.T) {
	h := newHarnessWith(t, harnessOptions{idp: func(p *scriptedIdP) {
		p.upstream.Expiry = time.Date(2030, 1, 1, 1, 0, 0, 0, time.UTC)
		p.refreshIdentity = &domain.Identity{Subject: "mallory"}
	}})
	c := h.register(t)
	tok := h.login(t, c)
	h.clock.Advance(2 * time.Hour)
	_, err := h.refresh(t, c, tok.RefreshToken)
	require.Equal(t, domain.CodeInvalidGrant, domain.CodeOf(err))
	require.False(t, h.grantLive(t, tok.GrantID))
}

func TestAReusedRefreshTokenIsReuseWhateverThePolicySays(t *testing.T) {
	src := &policies{p: newPolicy(t, policy.AdmissionSpec{Subjects: []string{"alice"}})}
	h := newHarnessWith(t, harnessOptions{policies: src})
	c := h.register(t)
	tok := h.login(t, c)
	next, err := h.refresh(t, c, tok.RefreshToken)
	require.NoError(t, err)
	_, err = h.refresh(t, c, next.RefreshToken)
	require.NoError(t, err)

	src.set(newPolicy(t, policy.AdmissionSpec{Subjects: []string{"bob"}}))
	h.clock.Advance(2 * time.Minute) // past the retry window
	_, err = h.refresh(t, c, tok.RefreshToken)
	require.ErrorIs(t, err, domain.ErrAlreadyConsumed, "reuse is detected as such, not reported as a policy refusal")
	var r *ports.AdmissionRefused
	require.False(t, errors.As(err, &r))
}

func TestAConditionThatCannotBeDecidedRefusesAndSaysWhy(t *testing.T) {
	boom := errors.New("evaluation cost limit exceeded")
	src := &policies{p: newPolicy(t, policy.AdmissionSpec{Condition: condition(func(context.Context, *policy.Facts) (bool, error) { return true, boom })})}
	h := newHarnessWith(t, harnessOptions{policies: src})
	_, err := h.callback(t, h.upstream(t, h.register(t)), ports.CompleteCallbackCommand{})
	r := refusal(t, err)
	require.ErrorIs(t, r, boom)
	require.Contains(t, err.Error(), "evaluation cost limit exceeded", "the operator's log says why")
}

// condition is a policy condition written in Go (the policy file's CEL
// conditions are compiled by the policyfile adapter, tested there and end
// to end).
type condition func(context.Context, *policy.Facts) (bool, error)

func (c condition) Eval(ctx context.Context, f *policy.Facts) (bool, error) { return c(ctx, f) }

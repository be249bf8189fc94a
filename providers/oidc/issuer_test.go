package oidc_test

import (
	"testing"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/test/idp"
	"github.com/oidcproxy/oidcproxy/test/providertest"
)

func TestTheAuthorizationResponseIssuerMustBeThisIdP(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	p := newFaultyProvider(t, f)

	fl := newFlow()
	req := exchangeRequest(loginCode(t, p, f, fl), fl)
	req.Issuer = "https://other-idp.example"
	providertest.RequireCode(t, mustFail(p.Exchange(t.Context(), req)), domain.CodeAccessDenied)

	fl = newFlow()
	req = exchangeRequest(loginCode(t, p, f, fl), fl)
	req.Issuer = f.Issuer
	if _, _, err := p.Exchange(t.Context(), req); err != nil {
		t.Fatalf("the right issuer must pass: %v", err)
	}
}

func TestTheAuthorizationResponseIssuerIsRequiredWhenAdvertised(t *testing.T) {
	t.Parallel()
	f := idp.NewFaulty(t, idp.FaultyOptions{})
	f.Update(func(x *idp.Faults) {
		x.DiscoveryExtra = map[string]any{"authorization_response_iss_parameter_supported": true}
	})
	p := newFaultyProvider(t, f)
	fl := newFlow()
	providertest.RequireCode(t, mustFail(p.Exchange(t.Context(), exchangeRequest(loginCode(t, p, f, fl), fl))), domain.CodeAccessDenied)
}

func mustFail(_ domain.Identity, _ domain.UpstreamTokens, err error) error { return err }

// Package providertest is the conformance suite every identity provider
// passes: the generic oidc provider and each preset, against an in-process
// upstream that emulates its IdP (test/idp's NewKeycloak, NewAuth0,
// NewGoogle, NewAzure). A provider's test is one call:
//
//	func TestAuth0PassesTheProviderSuite(t *testing.T) {
//		providertest.Run(t, providertest.Case{
//			Name:     auth0.Name, // built from providers.Registry[auth0.Name]
//			Upstream: func(t testing.TB, o idp.FaultyOptions) *idp.Faulty { ... },
//			...
//		})
//	}
//
// The suite checks what the core relies on whatever the IdP: the
// authorization URL (state, nonce, S256 challenge, the exact callback), the
// verified identity and tokens of a login, refresh, revocation, the
// rejection of bad ID tokens (signature, audience, issuer, nonce, expiry),
// token responses without expires_in or with refresh_expires_in 0, error
// mapping, and that every upstream call goes through the injected HTTP
// client. The helpers (Login, Callback, Flow) serve the presets' own
// quirk tests too.
package providertest

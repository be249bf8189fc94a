package usecase

import "github.com/oidcproxy/oidcproxy/ports"

// Option turns on a capability of the application that needs an outbound
// port beyond NewApplication's required ones. Each is optional: without it
// the capability is off, and the metadata says so.
type Option func(*options)

// options are the optional ports, as the Options left them.
type options struct {
	verifier   ports.AssertionVerifier
	jwks       ports.JWKSFetcher
	issuerKeys ports.IssuerKeys
}

// WithClientAssertions turns on private_key_jwt client authentication
// (RFC 7523 2.2) at /token, /revoke and /introspect, and its registration:
// verifier checks the assertions, jwks fetches the key sets of clients
// that registered a jwks_uri (nil: only clients with inline jwks can use
// the method).
func WithClientAssertions(verifier ports.AssertionVerifier, jwks ports.JWKSFetcher) Option {
	return func(o *options) {
		o.verifier = verifier
		if !isNil(jwks) {
			o.jwks = jwks
		}
	}
}

// WithIDJAG gives the jwt-bearer grant the keys of the trusted enterprise
// IdPs (Settings.TrustedIDJAGIssuers); the grant also needs the assertion
// verifier of WithClientAssertions.
func WithIDJAG(keys ports.IssuerKeys) Option {
	return func(o *options) { o.issuerKeys = keys }
}

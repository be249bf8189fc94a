// Package idp runs upstream identity providers inside go test, on 127.0.0.1,
// for the tests of providers and of whole flows.
//
//   - StartOP runs a real OpenID provider, zitadel/oidc's example OP, with
//     its real login form; OP.Login drives that form like a browser.
//   - NewFaulty runs a hand-written IdP whose faults (hanging or failing
//     endpoints, broken ID tokens, access-token shapes, discovery quirks)
//     can be switched between requests. It serves what no real IdP
//     produces on demand and records the requests it received.
//
// Both are closed by t.Cleanup. Only test code imports this package.
package idp

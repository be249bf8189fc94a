// Package usecase holds one handler per use case of oidcproxy: register a
// client, start an authorization, consent, complete the upstream callback,
// exchange a code, refresh, revoke, verify a bearer token, sweep. Handlers
// depend on ports only; adapters drive them and the composition root wraps
// them in telemetry decorators.
//
// Each handler has a constructor that takes exactly the ports and the part
// of the policy it uses and rejects nil ones (NewExchangeToken,
// NewRefreshToken, ...); NewApplication builds them all from the outbound
// ports and the Settings. The pieces several handlers share live in files
// named for them: clients.go (finding and authenticating a client, CIMD
// included), issue.go (issuing our access tokens and their lifetime
// policy), upstream.go (sending an approved request upstream, sealing the
// upstream tokens), verify.go (judging our own access tokens), errors.go.
package usecase

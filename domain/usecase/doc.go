// Package usecase holds one handler per use case of oidcproxy: register a
// client, start an authorization, consent, complete the upstream callback,
// exchange a code, refresh, revoke, verify a bearer token, sweep. Handlers
// depend on ports only; adapters drive them and the composition root wraps
// them in telemetry decorators.
package usecase

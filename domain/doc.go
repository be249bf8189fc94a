// Package domain holds oidcproxy's entities, value objects, rules and OAuth
// errors. It depends on the standard library only: no HTTP, storage, OIDC
// library or telemetry type ever appears here, so the rules can be tested and
// reasoned about without any infrastructure.
package domain

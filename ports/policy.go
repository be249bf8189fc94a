package ports

import "github.com/oidcproxy/oidcproxy/domain/policy"

// PolicySource hands out the access policy in force. The policy can be
// replaced while the server runs (a reload), so callers ask for it at each
// decision instead of keeping it. A nil *policy.Policy means no policy:
// everyone is admitted and every request allowed.
type PolicySource interface {
	Policy() *policy.Policy
}

package ports

import (
	"errors"
	"fmt"
)

// ErrUnavailable marks an error of an outbound dependency (a store's
// database, most of all) that cannot be reached or did not answer in time:
// the request may succeed if retried later. Adapters wrap it (errors.Is
// finds it) next to the cause, so the use cases can answer
// temporarily_unavailable (HTTP 503) instead of server_error (500), and a
// readiness probe can tell "down" from "broken".
var ErrUnavailable = errors.New("temporarily unavailable")

// AdmissionRefused is the private cause of the error a use case returns
// when the access policy refuses a user: access_denied at the callback,
// invalid_grant at a refresh. The HTTP adapter finds it with errors.As to
// show the person which account was refused and to write the audit record;
// its text, which the logs carry, names the rule but never the account.
type AdmissionRefused struct {
	// Subject and ClientID say who was refused, for whom; GrantID names
	// the grant a refresh ended ("" at the callback).
	Subject, ClientID, GrantID string
	// Account names the refused account to its owner: the email address
	// the IdP reported or, without one, the subject. It is shown on the
	// refusal page only, never logged.
	Account string
	// Reason is the policy's reason (policy.AdmissionDecision.Reason):
	// for the operator, never for the user.
	Reason string
	// Err is why a condition could not be evaluated, or nil.
	Err error
}

// Error implements error without the account.
func (e *AdmissionRefused) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("the access policy refused the user: %s: %v", e.Reason, e.Err)
	}
	return "the access policy refused the user: " + e.Reason
}

// Unwrap returns the condition's evaluation error.
func (e *AdmissionRefused) Unwrap() error { return e.Err }

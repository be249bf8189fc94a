package usecase

import (
	"errors"
	"fmt"
	"strings"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// serverError is the one place that decides how a failure on our side
// is reported, so that the use cases never call domain.ErrServerError
// themselves (a test keeps it so): a dependency that cannot be reached or
// did not answer in time (ports.ErrUnavailable: the store's database, most
// of all) is temporarily_unavailable, HTTP 503, which tells clients and
// load balancers to try again; anything else is server_error, 500, a fault
// for the operator. cause is logged, never shown.
func serverError(cause error) *domain.Error {
	if errors.Is(cause, ports.ErrUnavailable) {
		return domain.ErrTemporarilyUnavailable("the service is temporarily unavailable; try again shortly", cause)
	}
	return domain.ErrServerError(cause)
}

// asOAuth passes OAuth errors through and turns anything else into a
// server error (see serverError) whose cause names the failed step.
func asOAuth(err error, step string) error {
	if _, ok := domain.AsError(err); ok {
		return err
	}
	if errors.Is(err, domain.ErrNotFound) {
		return domain.ErrInvalidRequest("the authorization request is unknown or has expired").WithCause(err)
	}
	return serverError(fmt.Errorf("%s: %w", step, err))
}

// errUnknownTransaction is shown as a page: the link is stale or forged.
func errUnknownTransaction(cause error) error {
	return domain.ErrInvalidRequest("this authorization request is unknown, already used or expired; start again from your application").
		WithNoRedirect().WithCause(cause)
}

// clip shortens client- or IdP-supplied text quoted in an error
// description or cause.
func clip(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

package usecase

import (
	"errors"
	"fmt"
	"strings"

	"github.com/oidcproxy/oidcproxy/domain"
)

// asOAuth passes OAuth errors through and turns anything else into a
// server_error whose cause names the failed step.
func asOAuth(err error, step string) error {
	if _, ok := domain.AsError(err); ok {
		return err
	}
	if errors.Is(err, domain.ErrNotFound) {
		return domain.ErrInvalidRequest("the authorization request is unknown or has expired").WithCause(err)
	}
	return domain.ErrServerError(fmt.Errorf("%s: %w", step, err))
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

package domain

import (
	"errors"
	"fmt"
)

// ErrorCode is an OAuth 2.0 error code from RFC 6749, RFC 7591, RFC 6750,
// RFC 8707 or RFC 7009. The HTTP adapter alone decides which status a code
// maps to.
type ErrorCode string

// The error codes oidcproxy emits.
const (
	CodeInvalidRequest          ErrorCode = "invalid_request"
	CodeInvalidClient           ErrorCode = "invalid_client"
	CodeInvalidGrant            ErrorCode = "invalid_grant"
	CodeUnauthorizedClient      ErrorCode = "unauthorized_client"
	CodeUnsupportedGrantType    ErrorCode = "unsupported_grant_type"
	CodeUnsupportedResponseType ErrorCode = "unsupported_response_type"
	CodeInvalidScope            ErrorCode = "invalid_scope"
	CodeAccessDenied            ErrorCode = "access_denied"
	CodeServerError             ErrorCode = "server_error"
	CodeTemporarilyUnavailable  ErrorCode = "temporarily_unavailable"
	CodeInvalidRedirectURI      ErrorCode = "invalid_redirect_uri"
	CodeInvalidClientMetadata   ErrorCode = "invalid_client_metadata"
	CodeInvalidTarget           ErrorCode = "invalid_target"
	CodeInvalidToken            ErrorCode = "invalid_token"
	CodeInsufficientScope       ErrorCode = "insufficient_scope"
	CodeUnsupportedTokenType    ErrorCode = "unsupported_token_type"
)

// Error is an OAuth error as the domain reports it. Description is safe to
// show to the client; Err is the private cause, logged but never shown.
// NoRedirect marks errors that must not be sent to the client's redirect URI
// (unknown client, unregistered redirect URI) and are rendered as a page.
type Error struct {
	Code        ErrorCode
	Description string
	NoRedirect  bool
	Err         error
}

// Error implements error. It includes the private cause so that logs carry
// it; adapters must render Code and Description only.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Description, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Description)
}

// Unwrap returns the private cause.
func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is match two *Error values by code, so callers can write
// errors.Is(err, domain.ErrInvalidGrant("")).
func (e *Error) Is(target error) bool {
	var t *Error
	if errors.As(target, &t) {
		return t.Code == e.Code
	}
	return false
}

// Internal reports whether the error is a failure of oidcproxy itself
// (server_error), which its operator must look at. Every other code is a
// client's mistake or a dependency failing: temporarily_unavailable means
// the upstream identity provider is down or refused to serve, which the
// operator can watch but not fix. Adapters log internal errors at Error
// and the rest at Warn, so that Error lines mean "our fault".
func (e *Error) Internal() bool { return e.Code == CodeServerError }

// WithNoRedirect returns a copy of e marked NoRedirect: it is shown to the
// user as a page instead of being sent to a redirect URI that was not (or
// could not be) validated, which would make the proxy an open redirector.
func (e *Error) WithNoRedirect() *Error {
	c := *e
	c.NoRedirect = true
	return &c
}

// WithCause returns a copy of e that wraps cause.
func (e *Error) WithCause(cause error) *Error {
	c := *e
	c.Err = cause
	return &c
}

// AsError extracts the *Error from err's chain, if any.
func AsError(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// CodeOf returns the OAuth error code carried by err, server_error when err
// is not an OAuth error (an unexpected failure), and "" for nil.
func CodeOf(err error) ErrorCode {
	if err == nil {
		return ""
	}
	if e, ok := AsError(err); ok {
		return e.Code
	}
	return CodeServerError
}

func newError(code ErrorCode, description string) *Error {
	return &Error{Code: code, Description: description}
}

// ErrInvalidRequest reports a missing, repeated or malformed parameter.
func ErrInvalidRequest(description string) *Error {
	return newError(CodeInvalidRequest, description)
}

// ErrInvalidClient reports failed client authentication or an unknown client.
func ErrInvalidClient(description string) *Error {
	return newError(CodeInvalidClient, description)
}

// ErrInvalidGrant reports an invalid, expired, revoked or replayed grant
// (authorization code or refresh token).
func ErrInvalidGrant(description string) *Error {
	return newError(CodeInvalidGrant, description)
}

// ErrUnauthorizedClient reports a client that may not use this grant or flow.
func ErrUnauthorizedClient(description string) *Error {
	return newError(CodeUnauthorizedClient, description)
}

// ErrUnsupportedGrantType reports a grant_type the server does not support.
func ErrUnsupportedGrantType(description string) *Error {
	return newError(CodeUnsupportedGrantType, description)
}

// ErrUnsupportedResponseType reports a response_type other than "code".
func ErrUnsupportedResponseType(description string) *Error {
	return newError(CodeUnsupportedResponseType, description)
}

// ErrInvalidScope reports an unknown or malformed scope.
func ErrInvalidScope(description string) *Error {
	return newError(CodeInvalidScope, description)
}

// ErrAccessDenied reports that the user or the upstream IdP refused.
func ErrAccessDenied(description string) *Error {
	return newError(CodeAccessDenied, description)
}

// ErrServerError reports an unexpected failure; cause is logged, never shown.
func ErrServerError(cause error) *Error {
	return &Error{Code: CodeServerError, Description: "internal error", Err: cause}
}

// ErrTemporarilyUnavailable reports that a dependency (the upstream IdP, the
// store) is unreachable right now; cause is logged, never shown.
func ErrTemporarilyUnavailable(description string, cause error) *Error {
	return &Error{Code: CodeTemporarilyUnavailable, Description: description, Err: cause}
}

// ErrInvalidRedirectURI reports an unacceptable redirect URI at registration.
func ErrInvalidRedirectURI(description string) *Error {
	return newError(CodeInvalidRedirectURI, description)
}

// ErrInvalidClientMetadata reports unacceptable client metadata at registration.
func ErrInvalidClientMetadata(description string) *Error {
	return newError(CodeInvalidClientMetadata, description)
}

// ErrInvalidTarget reports an unacceptable RFC 8707 resource indicator.
func ErrInvalidTarget(description string) *Error {
	return newError(CodeInvalidTarget, description)
}

// ErrInvalidToken reports a bearer token that is missing, malformed,
// expired, revoked or meant for someone else (RFC 6750).
func ErrInvalidToken(description string) *Error {
	return newError(CodeInvalidToken, description)
}

// ErrInsufficientScope reports a valid bearer token without a needed scope.
func ErrInsufficientScope(description string) *Error {
	return newError(CodeInsufficientScope, description)
}

// ErrUnsupportedTokenType reports an RFC 7009 token_type_hint the server
// cannot revoke.
func ErrUnsupportedTokenType(description string) *Error {
	return newError(CodeUnsupportedTokenType, description)
}

// Store errors. Every store adapter returns these (wrapped is fine) so the
// use cases can tell "absent" from "broken".
var (
	// ErrNotFound: no such record, or the record has expired.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: a record with that key exists.
	ErrAlreadyExists = errors.New("already exists")
	// ErrAlreadyConsumed: a single-use record (code, refresh token) was used
	// before. The store returns the record alongside so that the use case can
	// decide whether the replay is an attack on a live grant.
	ErrAlreadyConsumed = errors.New("already consumed")
	// ErrWrongClient: a record bound to one client (a live refresh token)
	// was presented by another; nothing changed.
	ErrWrongClient = errors.New("issued to another client")
	// ErrLimitReached: a bounded collection (the self-registered clients)
	// is full; nothing changed.
	ErrLimitReached = errors.New("limit reached")
)

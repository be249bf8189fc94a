package oauthhttp

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/oidcproxy/oidcproxy/domain"
)

// Status is the one table from OAuth error code to HTTP status (RFC 6749
// 5.2, RFC 6750 3.1, RFC 7591 3.2.2): a failed client authentication or
// token check is 401, a missing scope 403, our own failures 500 and 503,
// and every other client error 400.
func Status(code domain.ErrorCode) int {
	switch code {
	case domain.CodeInvalidClient, domain.CodeInvalidToken:
		return http.StatusUnauthorized
	case domain.CodeInsufficientScope:
		return http.StatusForbidden
	case domain.CodeServerError:
		return http.StatusInternalServerError
	case domain.CodeTemporarilyUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusBadRequest
	}
}

// ErrorOf converts any error into the *domain.Error to show: an error that
// is not an OAuth error becomes server_error, so that its text (which may
// name files, hosts or SQL) never reaches a client.
func ErrorOf(err error) *domain.Error {
	if e, ok := domain.AsError(err); ok {
		return e
	}
	return domain.ErrServerError(err)
}

// BearerErrorCode is the code a protected resource reports for a refused
// bearer token. RFC 6750 3.1 names invalid_request, invalid_token and
// insufficient_scope; server_error and temporarily_unavailable stay what
// they are (our failure, not the token's). Any other code means the token
// was refused for a reason RFC 6750 has no name for, so it is reported as
// invalid_token: whatever went wrong, the token did not grant access.
func BearerErrorCode(code domain.ErrorCode) domain.ErrorCode {
	switch code {
	case domain.CodeInvalidRequest, domain.CodeInvalidToken, domain.CodeInsufficientScope,
		domain.CodeServerError, domain.CodeTemporarilyUnavailable:
		return code
	default:
		return domain.CodeInvalidToken
	}
}

// ErrorBody is the JSON error document of RFC 6749 5.2, RFC 6750 3 and
// RFC 7591 3.2.2.
type ErrorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
}

// WriteError answers with the JSON error document for code and
// description. Headers set before (a challenge) are kept.
func WriteError(w http.ResponseWriter, status int, code domain.ErrorCode, description string) {
	WriteJSON(w, status, ErrorBody{Error: string(code), ErrorDescription: description})
}

// serverErrorBody answers when a response cannot be encoded.
var serverErrorBody = []byte(`{"error":"server_error","error_description":"internal error"}`)

// WriteJSON writes v as a JSON response that no cache may keep: the headers
// RFC 6749 5.1 requires on token responses (Cache-Control: no-store,
// Pragma: no-cache), which suit every answer that carries tokens, secrets
// or errors about them. URLs in v are written as they are ("&" stays "&").
// The body has no trailing newline and an exact Content-Length.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	body := serverErrorBody
	if err := enc.Encode(v); err == nil {
		body = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	} else {
		status = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

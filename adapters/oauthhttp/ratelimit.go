package oauthhttp

import (
	"errors"
	"net/http"
	"time"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/internal/ratelimit"
)

// RateLimitCode is the error code of a request refused by a rate limit.
// OAuth defines none for it: temporarily_unavailable (RFC 6749 4.1.2.1, in
// the IANA registry) says "the server cannot handle this right now", which
// generic OAuth clients understand, while the 429 status and Retry-After
// say why and for how long. slow_down (RFC 8628 3.5) would tell a device
// flow client to poll more slowly, which no other client expects, and the
// MCP TypeScript SDK's too_many_requests is in no registry.
const RateLimitCode = domain.CodeTemporarilyUnavailable

// RateLimitDescription is the error_description of a refused request.
const RateLimitDescription = "too many requests; retry after the time in the Retry-After header"

// RetryAfter reports whether err (anywhere in its chain) is a rate
// limit's refusal, and how long the client should wait.
func RetryAfter(err error) (time.Duration, bool) {
	var ex *ratelimit.Exceeded
	if errors.As(err, &ex) {
		return ex.RetryAfter, true
	}
	return 0, false
}

// SetRetryAfter sets the Retry-After header (RFC 9110 10.2.3) of a 429
// answer: whole seconds, rounded up.
func SetRetryAfter(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Retry-After", ratelimit.RetryAfterSeconds(wait))
}

// WriteTooManyRequests answers an API request that a rate limit refused:
// 429, Retry-After, and the JSON error document.
func WriteTooManyRequests(w http.ResponseWriter, wait time.Duration) {
	SetRetryAfter(w, wait)
	WriteError(w, http.StatusTooManyRequests, RateLimitCode, RateLimitDescription)
}

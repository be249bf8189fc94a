package httpapi

import (
	"errors"
	"net/http"

	"github.com/oidcproxy/oidcproxy/adapters/oauthhttp"
	"github.com/oidcproxy/oidcproxy/domain"
)

// Audit events: one Info record per security-relevant action
// (oauthhttp.Audit gives the record its shape). They name the client, the
// subject when known, and the remote address; never a token, code or
// secret.
const (
	auditClientRegistered = "client_registered"
	auditConsentApproved  = "consent_approved"
	auditConsentDenied    = "consent_denied"
	auditTokensIssued     = "tokens_issued"
	auditRefreshRotated   = "refresh_rotated"
	// auditRefreshRetry: a rotated refresh token presented again by its
	// client within REFRESH_REUSE_GRACE while its successor was unused (a
	// retry after a lost response); the unused successor was withdrawn.
	auditRefreshRetry  = "refresh_retry"
	auditReuseDetected = "token_reuse_detected_grant_revoked"
	auditRevocation    = "revocation_requested"
	auditIntrospection = "token_introspected"
)

// audit logs one audit event for the request, in the record shape the
// gateway's audit events share.
func (s *Server) audit(r *http.Request, event string, attrs ...any) {
	oauthhttp.Audit(s.log, r, event, attrs...)
}

// auditTokenError records the token-endpoint failures that matter for
// security: a replayed code or reused refresh token revoked a grant (the
// grant type tells which), or the access policy no longer admits the
// grant's user, whose grant was revoked.
func (s *Server) auditTokenError(r *http.Request, clientID, grantType string, err error) {
	if errors.Is(err, domain.ErrAlreadyConsumed) && domain.CodeOf(err) == domain.CodeInvalidGrant {
		s.audit(r, auditReuseDetected, "client_id", clientID, "grant_type", grantType)
	}
	if refused, ok := admissionRefusal(err); ok {
		s.auditAdmission(r, refused, "grant_type", grantType)
	}
}

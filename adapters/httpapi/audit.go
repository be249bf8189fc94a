package httpapi

import (
	"errors"
	"net/http"

	"github.com/oidcproxy/oidcproxy/domain"
)

// Audit events: one Info record per security-relevant action, with the
// attribute audit=true so that log pipelines can route them apart. They
// name the client, the subject when known, and the remote address; never a
// token, code or secret.
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

// audit logs one audit event for the request.
func (s *Server) audit(r *http.Request, event string, attrs ...any) {
	base := []any{"audit", true, "event", event, "remote_addr", r.RemoteAddr}
	s.log.InfoContext(r.Context(), "audit", append(base, attrs...)...)
}

// auditTokenError records the token-endpoint failures that matter for
// security: a replayed code or reused refresh token revoked a grant (the
// grant type tells which).
func (s *Server) auditTokenError(r *http.Request, clientID, grantType string, err error) {
	if errors.Is(err, domain.ErrAlreadyConsumed) && domain.CodeOf(err) == domain.CodeInvalidGrant {
		s.audit(r, auditReuseDetected, "client_id", clientID, "grant_type", grantType)
	}
}

package oauthhttp

import (
	"log/slog"
	"net/http"
)

// Audit logs one audit record for the request: an Info record with the
// message "audit" and the attribute audit=true, so that log pipelines can
// route security events apart, then the event name, the remote address and
// attrs (key-value pairs, as slog takes them). Callers name the client and
// the subject when known; never a token, code or secret.
func Audit(log *slog.Logger, r *http.Request, event string, attrs ...any) {
	base := []any{"audit", true, "event", event, "remote_addr", r.RemoteAddr}
	log.InfoContext(r.Context(), "audit", append(base, attrs...)...)
}

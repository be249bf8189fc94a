package oauthhttp

import (
	"log/slog"
	"net/http"

	"github.com/oidcproxy/oidcproxy/internal/clientip"
)

// Audit logs one audit record for the request: an Info record with the
// message "audit" and the attribute audit=true, so that log pipelines can
// route security events apart, then the event name, the client's address
// (client_ip: the one the rate limits count, which behind trusted proxies
// is the address they forwarded for; see ClientIP), the connection's peer
// (remote_addr, the proxy in that case) and attrs (key-value pairs, as
// slog takes them). Callers name the client and the subject when known;
// never a token, code or secret.
func Audit(log *slog.Logger, r *http.Request, event string, attrs ...any) {
	base := []any{"audit", true, "event", event, "client_ip", ClientIP(r), "remote_addr", r.RemoteAddr}
	log.InfoContext(r.Context(), "audit", append(base, attrs...)...)
}

// ClientIP is the request's client address as text: the one the HTTP
// adapter derived and put in the request's context (clientip.NewContext),
// else the connection's peer; "" when neither is an IP address.
func ClientIP(r *http.Request) string {
	a, ok := clientip.FromContext(r.Context())
	if !ok {
		a = clientip.PeerAddr(r.RemoteAddr)
	}
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

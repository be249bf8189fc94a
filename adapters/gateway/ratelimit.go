package gateway

import (
	"log/slog"
	"net/http"

	"github.com/oidcproxy/oidcproxy/adapters/oauthhttp"
	"github.com/oidcproxy/oidcproxy/internal/clientip"
	"github.com/oidcproxy/oidcproxy/ports"
)

// subjectLimitName names the gateway's limit in metrics and logs.
const subjectLimitName = "gateway"

// overLimit refuses, with 429 and Retry-After, a request whose subject is
// beyond its rate limit (Options.SubjectLimit), and reports whether it
// did. It runs after the bearer check, which tells the subject, and before
// the body is received or the backend is reached. The subject is the
// grant's, as the backend is told (identity).
func (g *Gateway) overLimit(w http.ResponseWriter, r *http.Request, access ports.VerifiedAccess) bool {
	if g.subjectLimit == nil {
		return false
	}
	subject := access.Grant.Subject
	if subject == "" {
		subject = access.Token.Subject
	}
	ok, wait := g.subjectLimit.Allow(subject)
	if ok {
		return false
	}
	if g.limitRefused != nil {
		g.limitRefused(r.Context(), subjectLimitName)
	}
	g.log.LogAttrs(r.Context(), slog.LevelDebug, "gateway: rate limit refused a request",
		slog.String("limit", subjectLimitName), slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.Duration("retry_after", wait))
	if r.ContentLength != 0 {
		// The body is not received; closing spares the server from
		// waiting for it to drain.
		w.Header().Set("Connection", "close")
	}
	oauthhttp.WriteTooManyRequests(w, wait)
	return true
}

// withClientIP returns r carrying its client address (Options.ClientIP)
// for an audit record; the gateway's requests skip the authorization
// server's middleware, which does that for every other request.
func (g *Gateway) withClientIP(r *http.Request) *http.Request {
	if g.clientIP == nil {
		return r
	}
	return r.WithContext(clientip.NewContext(r.Context(), g.clientIP.ClientIP(r)))
}

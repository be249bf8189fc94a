package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/oidcproxy/oidcproxy/adapters/oauthhttp"
	"github.com/oidcproxy/oidcproxy/internal/clientip"
	"github.com/oidcproxy/oidcproxy/internal/ratelimit"
)

// Limits are the authorization server's rate limits, each counted per
// client address (Options.ClientIP) in this process only. A nil limiter is
// off.
type Limits struct {
	// Register limits POST /register.
	Register *ratelimit.Addrs
	// Authorize, Consent and Callback limit the browser pages: /authorize,
	// /consent and the upstream callback, each with a budget of its own (a
	// sign-in visits each once or twice). They are refused with an HTML
	// page.
	Authorize, Consent, Callback *ratelimit.Addrs
	// Token, Revoke and Introspect limit those endpoints.
	Token, Revoke, Introspect *ratelimit.Addrs
	// Refused, when set, is told of every refused request, by the limit's
	// name (register, authorize, consent, callback, token, revoke,
	// introspect), for metrics.
	Refused func(ctx context.Context, limit string)
}

// routeLimit is the limit of one path.
type routeLimit struct {
	name    string
	limiter *ratelimit.Addrs
	// page: a browser navigation, refused with an HTML page rather than
	// a JSON document.
	page bool
	// cors: an endpoint browser-based clients call with fetch, whose
	// refusal they can read only with the CORS headers (see cors).
	cors bool
}

// routeLimits maps each limited path to its limit; paths whose limit is
// off are left out.
func (s *Server) routeLimits() map[string]routeLimit {
	l := s.opts.Limits
	all := map[string]routeLimit{
		"/register":         {name: "register", limiter: l.Register, cors: true},
		"/authorize":        {name: "authorize", limiter: l.Authorize, page: true},
		consentPagePath:     {name: "consent", limiter: l.Consent, page: true},
		s.opts.CallbackPath: {name: "callback", limiter: l.Callback, page: true},
		"/token":            {name: "token", limiter: l.Token, cors: true},
		"/revoke":           {name: "revoke", limiter: l.Revoke, cors: true},
		"/introspect":       {name: "introspect", limiter: l.Introspect},
	}
	for path, rl := range all {
		if rl.limiter == nil {
			delete(all, path)
		}
	}
	return all
}

// limitRequests derives the request's client address, puts it in the
// request's context (for the audit records, and for the client ID metadata
// document fetches a request may trigger, which are limited per client
// address too), and refuses a request beyond its path's limit before
// anything else is spent on it: its body is not even read. CORS preflight
// requests are never counted (they precede the request that is).
func (s *Server) limitRequests(next http.Handler) http.Handler {
	limits := s.routeLimits()
	resolver := s.opts.ClientIP
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr := resolver.ClientIP(r)
		r = r.WithContext(clientip.NewContext(r.Context(), addr))
		if rl, ok := limits[r.URL.Path]; ok && r.Method != http.MethodOptions {
			if ok, wait := rl.limiter.Allow(addr); !ok {
				s.refuseRateLimited(w, r, rl, wait)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// refuseRateLimited answers a request over its limit: 429 with
// Retry-After, as a JSON error document or, on a browser page, as a page.
// The refusal is logged at Debug only (a flood would flood the log too)
// and counted through Limits.Refused.
func (s *Server) refuseRateLimited(w http.ResponseWriter, r *http.Request, rl routeLimit, wait time.Duration) {
	if s.opts.Limits.Refused != nil {
		s.opts.Limits.Refused(r.Context(), rl.name)
	}
	s.log.LogAttrs(r.Context(), slog.LevelDebug, "rate limit refused a request",
		slog.String("limit", rl.name), slog.String("path", r.URL.Path),
		slog.String("client_ip", oauthhttp.ClientIP(r)), slog.Duration("retry_after", wait))
	if r.ContentLength != 0 {
		// The body was not read; closing spares the server from waiting
		// for it to drain.
		w.Header().Set("Connection", "close")
	}
	if rl.cors {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Expose-Headers", "Retry-After")
	}
	if rl.page {
		s.renderTooManyRequests(w, wait)
		return
	}
	oauthhttp.WriteTooManyRequests(w, wait)
}

// renderTooManyRequests shows the rate limit's refusal to a person.
func (s *Server) renderTooManyRequests(w http.ResponseWriter, wait time.Duration) {
	oauthhttp.SetRetryAfter(w, wait)
	s.renderPage(w, http.StatusTooManyRequests, "error.html", errorPage{
		Code: string(oauthhttp.RateLimitCode),
		Description: fmt.Sprintf("Too many sign-in requests came from your network in a short time. "+
			"Wait %s seconds, then try again.", ratelimit.RetryAfterSeconds(wait)),
	})
}

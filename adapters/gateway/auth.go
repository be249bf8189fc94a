package gateway

import (
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/oidcproxy/oidcproxy/adapters/oauthhttp"
	"github.com/oidcproxy/oidcproxy/domain"
)

// tokenStatus is what the Authorization header holds.
type tokenStatus int

const (
	tokenOK        tokenStatus = iota
	tokenAbsent                // no header, or another scheme: challenge
	tokenMalformed             // a Bearer header we cannot read: invalid_request
)

// bearerToken extracts the token of the one "Authorization: Bearer <token>"
// header (RFC 6750 2.1; the scheme is case-insensitive, RFC 7235 2.1).
func bearerToken(h http.Header) (string, tokenStatus) {
	values := h["Authorization"]
	switch len(values) {
	case 0:
		return "", tokenAbsent
	case 1:
	default:
		return "", tokenMalformed
	}
	scheme, rest, _ := strings.Cut(values[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", tokenAbsent
	}
	token := strings.TrimLeft(rest, " ")
	if !isToken68(token) {
		return "", tokenMalformed
	}
	return token, tokenOK
}

// isToken68 reports whether s is an RFC 7235 token68, the syntax of a
// bearer token (RFC 6750 2.1 b64token).
func isToken68(s string) bool {
	end := len(s)
	for end > 0 && s[end-1] == '=' {
		end--
	}
	if end == 0 {
		return false
	}
	for i := range end {
		if !token68Chars[s[i]] {
			return false
		}
	}
	return true
}

// token68Chars is the token68 alphabet as a lookup table: this check runs
// on every proxied request.
var token68Chars = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~+/" {
		t[c] = true
	}
	return t
}()

// challenge answers a request that carried no bearer token. It is the first
// step of every MCP client's discovery, not a mistake, so it is logged at
// Debug only.
func (g *Gateway) challenge(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["Www-Authenticate"] = g.challengeNoToken
	h["Cache-Control"] = noStore
	w.WriteHeader(http.StatusUnauthorized)
	g.log.LogAttrs(r.Context(), slog.LevelDebug, "gateway: request without bearer token",
		slog.String("method", r.Method), slog.String("path", r.URL.Path))
}

// reject answers a failed token check: a challenge with the RFC 6750 error
// code for 400, 401 and 403, and a JSON error document.
func (g *Gateway) reject(w http.ResponseWriter, r *http.Request, err error) {
	e := oauthhttp.ErrorOf(err)
	code := oauthhttp.BearerErrorCode(e.Code)
	status := oauthhttp.Status(code)
	description := e.Description
	if status >= http.StatusInternalServerError && description == "" {
		description = "internal error"
	}
	if status < http.StatusInternalServerError {
		w.Header()["Www-Authenticate"] = []string{g.challenges.Error(code, description)}
	}
	oauthhttp.WriteError(w, status, code, description)

	level := slog.LevelWarn
	if e.Internal() {
		// Our fault; temporarily_unavailable (the store's database
		// unreachable) is a dependency's, logged at Warn as httpapi does.
		level = slog.LevelError
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", status),
		slog.String("error", string(code)), slog.String("description", description),
	}
	if e.Err != nil {
		attrs = append(attrs, slog.String("cause", e.Err.Error()))
	}
	g.log.LogAttrs(r.Context(), level, "gateway: request refused", attrs...)
	if code == domain.CodeInvalidToken || code == domain.CodeInsufficientScope {
		// A presented token that was refused is a security event: one audit
		// record, like the authorization server's (never the token itself).
		oauthhttp.Audit(g.log, g.withClientIP(r), "bearer_rejected", "error", string(code))
	}
}

// originAllowed reports whether the request's Origin header names an allowed
// origin. Browsers send one serialized origin; several headers are refused.
func (g *Gateway) originAllowed(values []string) bool {
	if len(values) != 1 {
		return false
	}
	if _, ok := g.origins[values[0]]; ok {
		return true
	}
	// Browsers serialize origins in lowercase without default ports, so the
	// exact lookup above almost always decides; other clients may not.
	n, ok := normalizeOrigin(values[0])
	if !ok {
		return false
	}
	_, ok = g.origins[n]
	return ok
}

// normalizeOrigin returns the RFC 6454 serialization of an origin written as
// scheme://host[:port]: lowercase, default port dropped.
func normalizeOrigin(s string) (string, bool) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return "", false
		}
		if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
			port = ""
		}
	}
	if port != "" {
		return scheme + "://" + host + ":" + port, true
	}
	return scheme + "://" + host, true
}

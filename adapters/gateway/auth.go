package gateway

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

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

// buildChallenges prepares the constant parts of every WWW-Authenticate
// header so that the request path only concatenates strings.
func (g *Gateway) buildChallenges(metadataURL string) {
	g.metadataParam = quote(metadataURL)
	if len(g.requiredScopes) > 0 {
		g.scopeParam = quote(strings.Join(g.requiredScopes, " "))
	}
	// RFC 6750 3: a request without credentials gets no error code.
	g.challengeNoToken = "Bearer resource_metadata=" + g.metadataParam
	g.challengeTail = ", resource_metadata=" + g.metadataParam
	if g.scopeParam != "" {
		g.challengeNoToken += ", scope=" + g.scopeParam
		// The MCP authorization spec asks for scope in 401 and 403
		// challenges so that clients request (or step up to) the right
		// scopes.
		g.challengeTail = ", scope=" + g.scopeParam + g.challengeTail
	}
}

// challenge answers a request that carried no bearer token. It is the first
// step of every MCP client's discovery, not a mistake, so it is logged at
// Debug only.
func (g *Gateway) challenge(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["Www-Authenticate"] = []string{g.challengeNoToken}
	h["Cache-Control"] = noStore
	w.WriteHeader(http.StatusUnauthorized)
	g.log.LogAttrs(r.Context(), slog.LevelDebug, "gateway: request without bearer token",
		slog.String("method", r.Method), slog.String("path", r.URL.Path))
}

// errorBody is an RFC 6750 error document.
type errorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
}

// reject answers a failed token check: a challenge with the RFC 6750 error
// code for 400, 401 and 403, and a JSON error document. Codes other than
// the ones the verifier documents are treated as invalid_token: whatever
// went wrong, the token did not grant access.
func (g *Gateway) reject(w http.ResponseWriter, r *http.Request, err error) {
	e, ok := domain.AsError(err)
	if !ok {
		e = domain.ErrServerError(err)
	}
	code, status := e.Code, http.StatusUnauthorized
	switch code {
	case domain.CodeInvalidRequest:
		status = http.StatusBadRequest
	case domain.CodeInsufficientScope:
		status = http.StatusForbidden
	case domain.CodeServerError:
		status = http.StatusInternalServerError
	case domain.CodeTemporarilyUnavailable:
		status = http.StatusServiceUnavailable
	default:
		code = domain.CodeInvalidToken
	}
	description := e.Description
	if status >= http.StatusInternalServerError && description == "" {
		description = "internal error"
	}
	h := w.Header()
	if status < http.StatusInternalServerError {
		var b strings.Builder
		b.Grow(64 + len(description) + len(g.challengeTail))
		b.WriteString(`Bearer error="`)
		b.WriteString(string(code))
		b.WriteByte('"')
		if description != "" {
			b.WriteString(", error_description=")
			b.WriteString(quote(description))
		}
		b.WriteString(g.challengeTail)
		h["Www-Authenticate"] = []string{b.String()}
	}
	body, _ := json.Marshal(errorBody{Error: string(code), ErrorDescription: description})
	writeBody(w, status, body)

	level := slog.LevelWarn
	if status >= http.StatusInternalServerError {
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
		g.log.LogAttrs(r.Context(), slog.LevelInfo, "audit", slog.Bool("audit", true),
			slog.String("event", "bearer_rejected"), slog.String("remote_addr", r.RemoteAddr),
			slog.String("error", string(code)))
	}
}

// quote renders s as an RFC 7230 quoted-string: '"' and '\' are escaped,
// control characters (which a quoted-string cannot hold) become spaces.
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < ' ' && c != '\t' || c == 0x7f:
			b.WriteByte(' ')
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
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

package httpapi

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/oidcproxy/oidcproxy/adapters/oauthhttp"
	"github.com/oidcproxy/oidcproxy/domain"
)

// logError logs a failed request once, at the edge: client mistakes and
// an unavailable identity provider at Warn, our own failures at Error. The
// private cause is logged; it never carries codes, tokens or secrets (the
// use cases build it that way).
func (s *Server) logError(r *http.Request, e *domain.Error) {
	level := slog.LevelWarn
	if e.Internal() {
		level = slog.LevelError
	}
	attrs := []any{"method", r.Method, "path", r.URL.Path, "error", string(e.Code), "description", e.Description}
	if e.Err != nil {
		attrs = append(attrs, "cause", e.Err.Error())
	}
	s.log.Log(r.Context(), level, "request failed", attrs...)
}

// errorBody is the OAuth JSON error document, under the name this
// package's handlers use.
type errorBody = oauthhttp.ErrorBody

// writeJSONError answers an API endpoint (/token, /register, /revoke) with an
// RFC 6749 5.2 error document.
func (s *Server) writeJSONError(w http.ResponseWriter, r *http.Request, err error) {
	e := oauthhttp.ErrorOf(err)
	s.logError(r, e)
	status := oauthhttp.Status(e.Code)
	if errors.Is(e, errBodyTooLarge) {
		status = http.StatusRequestEntityTooLarge
	}
	if wait, limited := oauthhttp.RetryAfter(e); limited {
		// A fetch this request would trigger (a client ID metadata
		// document) was over the client address's limit.
		status = http.StatusTooManyRequests
		oauthhttp.SetRetryAfter(w, wait)
	}
	if e.Code == domain.CodeInvalidClient && r.Header.Get("Authorization") != "" {
		// RFC 6749 5.2: a 401 to a client that used HTTP authentication
		// carries the matching challenge.
		w.Header().Set("WWW-Authenticate", oauthhttp.BasicChallenge)
	}
	oauthhttp.WriteError(w, status, e.Code, e.Description)
}

// writeJSON writes a no-store JSON response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	oauthhttp.WriteJSON(w, status, v)
}

// redirectError sends an authorization error to the client's redirect URI
// (RFC 6749 4.1.2.1) with state and, per RFC 9207, our issuer. Errors marked
// NoRedirect, or without a validated redirect URI, become a page instead.
func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, redirectURI, state string, err error) {
	e := oauthhttp.ErrorOf(err)
	if e.NoRedirect || redirectURI == "" {
		s.renderError(w, r, e)
		return
	}
	s.logError(r, e)
	params := url.Values{"error": {string(e.Code)}}
	if e.Description != "" {
		params.Set("error_description", e.Description)
	}
	s.redirectToClient(w, r, redirectURI, state, params)
}

// redirectToClient redirects the browser to the client's (validated)
// redirect URI with params, state and iss added to its query.
func (s *Server) redirectToClient(w http.ResponseWriter, r *http.Request, redirectURI, state string, params url.Values) {
	target, err := s.clientURL(redirectURI, state, params)
	if err != nil {
		s.renderError(w, r, domain.ErrServerError(err))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, redirectStatus(r))
}

// clientURL is the client's (validated) redirect URI with params, state
// and iss added to its query.
func (s *Server) clientURL(redirectURI, state string, params url.Values) (string, error) {
	u, err := url.Parse(redirectURI)
	if err != nil {
		return "", err
	}
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	if state != "" {
		q.Set("state", state)
	}
	q.Set("iss", s.opts.Issuer)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// redirectStatus is 303 after a POST (so the browser follows with GET and
// never re-posts the form, unlike 307) and 302 otherwise.
func redirectStatus(r *http.Request) int {
	if r.Method == http.MethodPost {
		return http.StatusSeeOther
	}
	return http.StatusFound
}

// renderError shows an error page to the user (HTML, escaped).
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, err error) {
	e := oauthhttp.ErrorOf(err)
	s.logError(r, e)
	status := oauthhttp.Status(e.Code)
	if e.Code == domain.CodeAccessDenied || e.Code == domain.CodeInvalidClient {
		// For a person in a browser these mean "you may not continue", not
		// an HTTP authentication challenge.
		status = http.StatusForbidden
		if e.Code == domain.CodeInvalidClient {
			status = http.StatusBadRequest
		}
	}
	if wait, limited := oauthhttp.RetryAfter(e); limited {
		status = http.StatusTooManyRequests
		oauthhttp.SetRetryAfter(w, wait)
	}
	s.renderPage(w, status, "error.html", errorPage{Code: string(e.Code), Description: e.Description})
}

package httpapi

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"

	"github.com/oidcproxy/oidcproxy/adapters/oauthhttp"
	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// auditAdmissionDenied: the access policy refused a person at the callback
// (no code was issued) or at a refresh (the grant was revoked). The record
// carries the policy's reason, which the person never sees.
const auditAdmissionDenied = "admission_denied"

// deniedPageDelay is how long the refusal page stays before the browser
// continues to the client with access_denied: long enough to read which
// account was refused, short enough that a client waiting on its redirect
// URI learns the outcome without the person doing anything.
const deniedPageDelay = 10

type deniedPage struct {
	Account   string
	ClientURL template.URL
	Seconds   int
}

// admissionRefusal finds the access policy's refusal in a use case's
// error.
func admissionRefusal(err error) (*ports.AdmissionRefused, bool) {
	var refused *ports.AdmissionRefused
	ok := errors.As(err, &refused)
	return refused, ok
}

// auditAdmission records a refusal by the access policy: who, for which
// client, and the policy's reason (and a condition's evaluation error);
// never the account's address.
func (s *Server) auditAdmission(r *http.Request, refused *ports.AdmissionRefused, attrs ...any) {
	attrs = append(attrs, "client_id", refused.ClientID, "subject", refused.Subject, "reason", refused.Reason)
	if refused.GrantID != "" {
		attrs = append(attrs, "grant_id", refused.GrantID)
	}
	if refused.Err != nil {
		attrs = append(attrs, "condition_error", refused.Err.Error())
	}
	s.audit(r, auditAdmissionDenied, attrs...)
}

// renderRefused answers a callback whose user the access policy refused.
// Both parties learn of it: the person sees a page naming the account that
// was refused (so that someone signed in with the wrong account can tell),
// and never the rule; the MCP client gets access_denied, with its state
// and our issuer (RFC 9207), at its redirect URI, which the transaction
// validated. The page sends the browser there after deniedPageDelay
// seconds (the Refresh header, which browsers treat as a meta refresh) or
// at once through its link, so that a client waiting on a loopback
// redirect URI is never left hanging.
func (s *Server) renderRefused(w http.ResponseWriter, r *http.Request, redirectURI, state string, refused *ports.AdmissionRefused, err error) {
	e := oauthhttp.ErrorOf(err)
	s.logError(r, e)
	params := url.Values{"error": {string(domain.CodeAccessDenied)}}
	if e.Description != "" {
		params.Set("error_description", e.Description)
	}
	target, uerr := s.clientURL(redirectURI, state, params)
	if uerr != nil {
		s.renderError(w, r, domain.ErrServerError(uerr))
		return
	}
	w.Header().Set("Refresh", strconv.Itoa(deniedPageDelay)+"; url="+target)
	s.renderPage(w, http.StatusForbidden, "denied.html", deniedPage{
		Account: refused.Account,
		// The redirect URI was validated at registration and again at
		// /authorize (no javascript:, data: or file:), and it may be a
		// native app's own scheme, which html/template would blank.
		ClientURL: template.URL(target),
		Seconds:   deniedPageDelay,
	})
}

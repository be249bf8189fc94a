package httpapi

import (
	"net/http"
	"net/url"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

type consentPage struct {
	View       ports.ConsentView
	FormAction string
}

// handleConsentPage renders the consent page. The CSRF token is both in the
// form and, hashed, in a signed cookie: a form rendered for someone else (an
// attacker fetching the page and framing or replaying it) fails both the
// cookie check and the per-render check in the use case.
func (s *Server) handleConsentPage(w http.ResponseWriter, r *http.Request) {
	values, err := checkParams(r.URL.Query())
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	view, err := s.app.Consent.Show(r.Context(), values.Get("txn"))
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	s.cookies.set(w, consentCookie(view.TransactionID), domain.HashToken(view.CSRFToken), consentMaxAge)
	// Under the global no-referrer policy a browser sends "Origin: null"
	// with the form's POST (Fetch: serializing a request origin), which
	// sameOrigin must refuse. same-origin still sends no referrer to any
	// other site, and lets the POST carry our true origin.
	w.Header().Set("Referrer-Policy", "same-origin")
	s.renderPage(w, http.StatusOK, "consent.html", consentPage{View: view, FormAction: consentPagePath})
}

// handleConsentDecision takes the user's answer.
func (s *Server) handleConsentDecision(w http.ResponseWriter, r *http.Request) {
	values, err := formParams(w, r)
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	if !s.sameOrigin(r) {
		s.renderError(w, r, domain.ErrAccessDenied("the consent form was submitted from another site").WithNoRedirect())
		return
	}
	csrf, txn := values.Get("csrf_token"), values.Get("txn")
	cookieHash, ok := s.cookies.get(r, consentCookie(txn))
	if !ok || csrf == "" || !domain.EqualHash(csrf, cookieHash) {
		s.renderError(w, r, domain.ErrAccessDenied("the consent form was not valid for this browser; start again from your application").WithNoRedirect())
		return
	}
	s.cookies.clear(w, consentCookie(txn))
	var approve bool
	switch values.Get("decision") {
	case "approve":
		approve = true
	case "deny":
	default:
		s.renderError(w, r, domain.ErrInvalidRequest("the consent form is incomplete").WithNoRedirect())
		return
	}
	res, err := s.app.Consent.Decide(r.Context(), ports.ConsentDecisionCommand{
		TransactionID: txn,
		CSRFToken:     csrf,
		Approve:       approve,
	})
	if err != nil {
		if domain.CodeOf(err) == domain.CodeAccessDenied && res.RedirectURI != "" {
			s.audit(r, auditConsentDenied, "client_id", res.ClientID)
		}
		s.redirectError(w, r, res.RedirectURI, res.State, err)
		return
	}
	s.audit(r, auditConsentApproved, "client_id", res.ClientID)
	s.remember(w, r, res.ClientID, res.Scopes)
	s.goUpstream(w, r, *res.Upstream)
}

// sameOrigin rejects cross-site form posts using the headers browsers send
// (Sec-Fetch-Site, then Origin). Requests with neither come from non-browser
// clients, which the CSRF cookie check stops anyway.
func (s *Server) sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none", "":
	default:
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	o, err := url.Parse(origin)
	b, berr := url.Parse(s.opts.BaseURL)
	return err == nil && berr == nil && o.Scheme == b.Scheme && o.Host == b.Host
}

// consentCookie names the consent cookie of one transaction, so consent
// pages open in two tabs do not overwrite each other's cookie.
func consentCookie(txn string) string { return cookieConsent + domain.BindingName(txn) }

package httpapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// Cookie names (before the __Host- prefix) and lifetimes.
const (
	cookieConsent   = "c-" // + domain.BindingName(transaction id)
	cookieRemember  = "remember"
	cookieBinding   = "b-" // + domain.BindingName(state)
	rememberMaxAge  = 30 * 24 * time.Hour
	maxRemembered   = 10
	bindingMaxAge   = domain.TransactionTTL
	consentMaxAge   = domain.TransactionTTL
	consentPagePath = "/consent"
)

// handleAuthorize accepts GET (query) and POST (form body) authorization
// requests (RFC 6749 3.1).
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	var values url.Values
	var err error
	if r.Method == http.MethodPost {
		values, err = formParams(w, r, "resource")
	} else {
		values, err = checkParams(r.URL.Query(), "resource")
	}
	if err != nil {
		// The redirect URI is not validated yet: show a page.
		s.renderError(w, r, err)
		return
	}
	res, err := s.app.StartAuthorization.Handle(r.Context(), ports.StartAuthorizationCommand{
		ClientID:            values.Get("client_id"),
		RedirectURI:         values.Get("redirect_uri"),
		ResponseType:        values.Get("response_type"),
		State:               values.Get("state"),
		Scope:               values.Get("scope"),
		CodeChallenge:       values.Get("code_challenge"),
		CodeChallengeMethod: values.Get("code_challenge_method"),
		Resource:            values["resource"],
		RememberedConsent:   s.rememberedConsent(r),
	})
	if err != nil {
		s.redirectError(w, r, res.RedirectURI, res.State, err)
		return
	}
	if res.Upstream != nil {
		s.goUpstream(w, r, *res.Upstream)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, consentPagePath+"?"+url.Values{"txn": {res.TransactionID}}.Encode(), redirectStatus(r))
}

// goUpstream binds the flow to this browser and sends it to the IdP.
func (s *Server) goUpstream(w http.ResponseWriter, r *http.Request, up ports.UpstreamRedirect) {
	s.cookies.set(w, cookieBinding+up.BindingName, up.BindingSecret, bindingMaxAge)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, up.URL, redirectStatus(r))
}

// rememberedConsent reads the signed list of earlier approvals (consent mode
// "remember" only).
func (s *Server) rememberedConsent(r *http.Request) []ports.RememberedConsent {
	if s.opts.Consent != domain.ConsentRemember {
		return nil
	}
	raw, ok := s.cookies.get(r, cookieRemember)
	if !ok {
		return nil
	}
	var list []ports.RememberedConsent
	if json.Unmarshal([]byte(raw), &list) != nil {
		return nil
	}
	return list
}

// remember adds an approval to the remember cookie, keeping the newest few.
func (s *Server) remember(w http.ResponseWriter, r *http.Request, clientID string, scopes []string) {
	if s.opts.Consent != domain.ConsentRemember {
		return
	}
	list := []ports.RememberedConsent{{ClientID: clientID, Scopes: scopes}}
	for _, c := range s.rememberedConsent(r) {
		if c.ClientID != clientID && len(list) < maxRemembered {
			list = append(list, c)
		}
	}
	raw, err := json.Marshal(list)
	if err != nil {
		return
	}
	s.cookies.set(w, cookieRemember, string(raw), rememberMaxAge)
}

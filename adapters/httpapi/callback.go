package httpapi

import (
	"net/http"
	"net/url"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// handleCallback is where the upstream IdP sends the browser back.
func (s *Server) handleCallback(w http.ResponseWriter, r *http.Request) {
	values, err := checkParams(r.URL.Query())
	if err != nil {
		s.renderError(w, r, domain.ErrInvalidRequest("the identity provider's response is malformed").WithNoRedirect())
		return
	}
	state := values.Get("state")
	cmd := ports.CompleteCallbackCommand{
		State:  state,
		Code:   values.Get("code"),
		Error:  values.Get("error"),
		Issuer: values.Get("iss"),
	}
	if state != "" {
		name := cookieBinding + domain.BindingName(state)
		cmd.BindingSecret, _ = s.cookies.get(r, name)
		s.cookies.clear(w, name)
	}
	res, err := s.app.CompleteCallback.Handle(r.Context(), cmd)
	if refused, ok := admissionRefusal(err); ok {
		s.auditAdmission(r, refused)
		if res.RedirectURI != "" {
			s.renderRefused(w, r, res.RedirectURI, res.State, refused, err)
			return
		}
	}
	if err != nil {
		s.redirectError(w, r, res.RedirectURI, res.State, err)
		return
	}
	s.redirectToClient(w, r, res.RedirectURI, res.State, url.Values{"code": {res.Code}})
}

package httpapi

import (
	"net/http"
	"net/url"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// handleToken dispatches on grant_type (RFC 6749 4.1.3, 6).
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	values, err := formParams(w, r, "resource")
	if err != nil {
		s.writeJSONError(w, r, err)
		return
	}
	auth, err := clientAuth(r, values)
	if err != nil {
		s.writeJSONError(w, r, err)
		return
	}
	var res ports.TokenResult
	switch gt := values.Get("grant_type"); gt {
	case domain.GrantAuthorizationCode:
		res, err = s.app.ExchangeToken.Handle(r.Context(), ports.ExchangeTokenCommand{
			Client:       auth,
			Code:         values.Get("code"),
			RedirectURI:  values.Get("redirect_uri"),
			CodeVerifier: values.Get("code_verifier"),
			Resource:     values["resource"],
		})
	case domain.GrantRefreshToken:
		res, err = s.app.RefreshToken.Handle(r.Context(), ports.RefreshTokenCommand{
			Client:       auth,
			RefreshToken: values.Get("refresh_token"),
			Scope:        values.Get("scope"),
			Resource:     values["resource"],
		})
	case "":
		err = domain.ErrInvalidRequest("grant_type is missing")
	default:
		err = domain.ErrUnsupportedGrantType("grant_type " + strconvQuote(gt) + " is not supported")
	}
	if err != nil {
		s.auditTokenError(r, auth.ClientID, values.Get("grant_type"), err)
		s.writeJSONError(w, r, err)
		return
	}
	event := auditTokensIssued
	switch {
	case res.Retried:
		event = auditRefreshRetry
	case values.Get("grant_type") == domain.GrantRefreshToken:
		event = auditRefreshRotated
	}
	s.audit(r, event, "client_id", res.ClientID, "subject", res.Subject, "grant_id", res.GrantID)
	writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken:  res.AccessToken,
		TokenType:    res.TokenType,
		ExpiresIn:    res.ExpiresIn,
		RefreshToken: res.RefreshToken,
		Scope:        res.Scope,
	})
}

// handleRevoke implements RFC 7009: 200 with an empty body whether or not
// the token was known.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	values, err := formParams(w, r)
	if err != nil {
		s.writeJSONError(w, r, err)
		return
	}
	auth, err := clientAuth(r, values)
	if err != nil {
		s.writeJSONError(w, r, err)
		return
	}
	err = s.app.Revoke.Handle(r.Context(), ports.RevokeCommand{
		Client:        auth,
		Token:         values.Get("token"),
		TokenTypeHint: values.Get("token_type_hint"),
	})
	if err != nil {
		s.writeJSONError(w, r, err)
		return
	}
	s.audit(r, auditRevocation, "client_id", auth.ClientID)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// clientAuth reads client credentials from HTTP Basic (RFC 6749 2.3.1, with
// its form-urlencoding of id and secret) or from the body. Using both
// methods at once is refused, as 2.3 requires.
func clientAuth(r *http.Request, values url.Values) (ports.ClientAuth, error) {
	bodyID, bodySecret := values.Get("client_id"), values.Get("client_secret")
	if r.Header.Get("Authorization") != "" {
		user, pass, ok := r.BasicAuth()
		if !ok {
			return ports.ClientAuth{}, domain.ErrInvalidClient("malformed Authorization header")
		}
		id, err1 := url.QueryUnescape(user)
		secret, err2 := url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			return ports.ClientAuth{}, domain.ErrInvalidClient("malformed Authorization header")
		}
		if bodySecret != "" || (bodyID != "" && bodyID != id) {
			return ports.ClientAuth{}, domain.ErrInvalidRequest("use one client authentication method only")
		}
		return ports.ClientAuth{ClientID: id, Secret: secret, Method: domain.AuthClientSecretBasic}, nil
	}
	if bodySecret != "" {
		return ports.ClientAuth{ClientID: bodyID, Secret: bodySecret, Method: domain.AuthClientSecretPost}, nil
	}
	return ports.ClientAuth{ClientID: bodyID, Method: domain.AuthNone}, nil
}

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
	case domain.GrantClientCredentials:
		if s.app.ClientCredentials == nil {
			err = domain.ErrUnsupportedGrantType("grant_type " + strconvQuote(gt) + " is not supported")
			break
		}
		res, err = s.app.ClientCredentials.Handle(r.Context(), ports.ClientCredentialsCommand{
			Client:   auth,
			Scope:    values.Get("scope"),
			Resource: values["resource"],
		})
	case domain.GrantJWTBearer:
		if s.app.JWTBearer == nil {
			err = domain.ErrUnsupportedGrantType("grant_type " + strconvQuote(gt) + " is not supported")
			break
		}
		res, err = s.app.JWTBearer.Handle(r.Context(), ports.JWTBearerCommand{
			Client:    auth,
			Assertion: values.Get("assertion"),
			Scope:     values.Get("scope"),
			Resource:  values["resource"],
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
// its form-urlencoding of id and secret), from the body, or as a client
// assertion (RFC 7521 4.2, private_key_jwt). Using two methods at once is
// refused, as RFC 6749 2.3 requires.
func clientAuth(r *http.Request, values url.Values) (ports.ClientAuth, error) {
	bodyID, bodySecret := values.Get("client_id"), values.Get("client_secret")
	assertionType, assertion := values.Get("client_assertion_type"), values.Get("client_assertion")
	if assertionType != "" || assertion != "" {
		switch {
		case r.Header.Get("Authorization") != "" || bodySecret != "":
			return ports.ClientAuth{}, domain.ErrInvalidRequest("use one client authentication method only")
		case assertionType != domain.ClientAssertionType:
			return ports.ClientAuth{}, domain.ErrInvalidClient("client_assertion_type must be " + domain.ClientAssertionType)
		case assertion == "":
			return ports.ClientAuth{}, domain.ErrInvalidRequest("client_assertion is missing")
		}
		return ports.ClientAuth{ClientID: bodyID, Assertion: assertion, Method: domain.AuthPrivateKeyJWT}, nil
	}
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

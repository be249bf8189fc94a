package httpapi

import (
	"net/http"
	"strings"

	"github.com/oidcproxy/oidcproxy/ports"
)

// introspectionResponse is the RFC 7662 2.2 document; an inactive token is
// {"active":false} and nothing else.
type introspectionResponse struct {
	Active    bool   `json:"active"`
	TokenType string `json:"token_type,omitempty"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Subject   string `json:"sub,omitempty"`
	Audience  string `json:"aud,omitempty"`
	Issuer    string `json:"iss,omitempty"`
	JTI       string `json:"jti,omitempty"`
	ExpiresAt int64  `json:"exp,omitempty"`
	IssuedAt  int64  `json:"iat,omitempty"`
	NotBefore int64  `json:"nbf,omitempty"`
}

// handleIntrospect implements RFC 7662. Callers authenticate as a
// confidential client (Basic or body) or with the operator's introspection
// secret as a bearer token.
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	values, err := formParams(w, r)
	if err != nil {
		s.writeJSONError(w, r, err)
		return
	}
	cmd := ports.IntrospectCommand{Token: values.Get("token"), TokenTypeHint: values.Get("token_type_hint")}
	if scheme, secret, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		cmd.Secret = strings.TrimSpace(secret)
	} else if cmd.Client, err = clientAuth(r, values); err != nil {
		s.writeJSONError(w, r, err)
		return
	}
	res, err := s.app.Introspect.Handle(r.Context(), cmd)
	if err != nil {
		s.writeJSONError(w, r, err)
		return
	}
	s.audit(r, auditIntrospection, "caller_client_id", cmd.Client.ClientID, "active", res.Active)
	out := introspectionResponse{Active: res.Active}
	if res.Active {
		out = introspectionResponse{
			Active:    true,
			TokenType: res.TokenType,
			Scope:     res.Scope,
			ClientID:  res.ClientID,
			Subject:   res.Subject,
			Audience:  res.Audience,
			Issuer:    res.Issuer,
			JTI:       res.JTI,
			ExpiresAt: unixOrZero(res.ExpiresAt.Unix(), res.ExpiresAt.IsZero()),
			IssuedAt:  unixOrZero(res.IssuedAt.Unix(), res.IssuedAt.IsZero()),
			NotBefore: unixOrZero(res.NotBefore.Unix(), res.NotBefore.IsZero()),
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func unixOrZero(v int64, zero bool) int64 {
	if zero {
		return 0
	}
	return v
}

package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"

	"github.com/oidcproxy/oidcproxy/adapters/oauthhttp"
	"github.com/oidcproxy/oidcproxy/domain"
)

// registrationResponse is the RFC 7591 3.2.1 answer.
type registrationResponse struct {
	ClientID                string          `json:"client_id"`
	ClientSecret            string          `json:"client_secret,omitempty"`
	ClientIDIssuedAt        int64           `json:"client_id_issued_at"`
	ClientSecretExpiresAt   *int64          `json:"client_secret_expires_at,omitempty"`
	RedirectURIs            []string        `json:"redirect_uris"`
	TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method"`
	GrantTypes              []string        `json:"grant_types"`
	ResponseTypes           []string        `json:"response_types"`
	ApplicationType         string          `json:"application_type"`
	ClientName              string          `json:"client_name,omitempty"`
	ClientURI               string          `json:"client_uri,omitempty"`
	LogoURI                 string          `json:"logo_uri,omitempty"`
	Scope                   string          `json:"scope,omitempty"`
	Contacts                []string        `json:"contacts,omitempty"`
	SoftwareID              string          `json:"software_id,omitempty"`
	SoftwareVersion         string          `json:"software_version,omitempty"`
	JWKS                    json.RawMessage `json:"jwks,omitempty"`
	JWKSURI                 string          `json:"jwks_uri,omitempty"`
}

func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "application/json" {
		s.writeJSONError(w, r, domain.ErrInvalidClientMetadata("the request body must be application/json"))
		return
	}
	var req oauthhttp.ClientMetadata
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBytes))
	if err := dec.Decode(&req); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.writeJSONError(w, r, domain.ErrInvalidClientMetadata("the request body is too large").WithCause(errBodyTooLarge))
			return
		}
		s.writeJSONError(w, r, domain.ErrInvalidClientMetadata("the request body is not a valid client metadata document"))
		return
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		s.writeJSONError(w, r, domain.ErrInvalidClientMetadata("the request body holds more than one JSON document"))
		return
	}
	res, err := s.app.RegisterClient.Handle(r.Context(), req.Command())
	if err != nil {
		s.writeJSONError(w, r, err)
		return
	}
	c := res.Client
	s.audit(r, auditClientRegistered, "client_id", c.ID, "client_name", c.Name, "public", c.IsPublic())
	out := registrationResponse{
		ClientID:                c.ID,
		ClientSecret:            res.ClientSecret,
		ClientIDIssuedAt:        c.CreatedAt.Unix(),
		RedirectURIs:            c.RedirectURIs,
		TokenEndpointAuthMethod: string(c.TokenEndpointAuthMethod),
		GrantTypes:              c.GrantTypes,
		ResponseTypes:           c.ResponseTypes,
		ApplicationType:         string(c.ApplicationType),
		ClientName:              c.Name,
		ClientURI:               c.ClientURI,
		LogoURI:                 c.LogoURI,
		Scope:                   c.Scope,
		Contacts:                c.Contacts,
		SoftwareID:              c.SoftwareID,
		SoftwareVersion:         c.SoftwareVersion,
		JWKS:                    c.JWKS,
		JWKSURI:                 c.JWKSURI,
	}
	if res.ClientSecret != "" {
		never := int64(0) // RFC 7591: 0 means the secret does not expire
		out.ClientSecretExpiresAt = &never
	}
	writeJSON(w, http.StatusCreated, out)
}

package httpapi

import (
	"net/http"

	"github.com/oidcproxy/oidcproxy/domain"
)

// authorizationServerMetadata is the RFC 8414 document. Optional fields are
// omitted rather than null.
type authorizationServerMetadata struct {
	Issuer                                     string   `json:"issuer"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	RegistrationEndpoint                       string   `json:"registration_endpoint"`
	RevocationEndpoint                         string   `json:"revocation_endpoint"`
	IntrospectionEndpoint                      string   `json:"introspection_endpoint"`
	JWKSURI                                    string   `json:"jwks_uri"`
	ScopesSupported                            []string `json:"scopes_supported,omitempty"`
	ResponseTypesSupported                     []string `json:"response_types_supported"`
	ResponseModesSupported                     []string `json:"response_modes_supported"`
	GrantTypesSupported                        []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	RevocationEndpointAuthMethodsSupported     []string `json:"revocation_endpoint_auth_methods_supported"`
	// The signing algorithms of private_key_jwt at /revoke and
	// /introspect (RFC 8414 2), the same as at /token.
	RevocationEndpointAuthSigningAlgValuesSupported    []string `json:"revocation_endpoint_auth_signing_alg_values_supported,omitempty"`
	IntrospectionEndpointAuthMethodsSupported          []string `json:"introspection_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthSigningAlgValuesSupported []string `json:"introspection_endpoint_auth_signing_alg_values_supported,omitempty"`
	// AuthorizationGrantProfilesSupported names the ID-JAG profile when
	// the jwt-bearer grant is configured
	// (draft-ietf-oauth-identity-assertion-authz-grant 7.2, the MCP
	// enterprise-managed authorization extension's discovery).
	AuthorizationGrantProfilesSupported        []string `json:"authorization_grant_profiles_supported,omitempty"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported"`
	AuthorizationResponseIssParameterSupported bool     `json:"authorization_response_iss_parameter_supported"`
	// ClientIDMetadataDocumentSupported is omitted, not false, when CIMD is
	// off, like every optional field.
	ClientIDMetadataDocumentSupported bool `json:"client_id_metadata_document_supported,omitempty"`
}

// idJAGProfile is the authorization grant profile of ID-JAGs.
const idJAGProfile = "urn:ietf:params:oauth:grant-profile:id-jag"

func (s *Server) metadata() authorizationServerMetadata {
	// What the metadata lists is exactly what works: private_key_jwt and
	// its algorithms only when the assertion verifier is wired, each
	// grant only when its use case is.
	authMethods := []string{"client_secret_basic", "client_secret_post", "none"}
	// Introspection needs a confidential client or the operator's
	// introspection secret (as a bearer token).
	introspectionMethods := []string{"client_secret_basic", "client_secret_post", "bearer"}
	var algs []string
	if s.opts.PrivateKeyJWT {
		algs = domain.AssertionAlgorithms
		authMethods = []string{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"}
		introspectionMethods = []string{"client_secret_basic", "client_secret_post", "private_key_jwt", "bearer"}
	}
	grants := []string{domain.GrantAuthorizationCode, domain.GrantRefreshToken}
	if s.app.ClientCredentials != nil {
		grants = append(grants, domain.GrantClientCredentials)
	}
	var profiles []string
	if s.app.JWTBearer != nil {
		grants = append(grants, domain.GrantJWTBearer)
		profiles = []string{idJAGProfile}
	}
	return authorizationServerMetadata{
		Issuer:                            s.opts.Issuer,
		AuthorizationEndpoint:             s.endpoint("/authorize"),
		TokenEndpoint:                     s.endpoint(TokenPath),
		RegistrationEndpoint:              s.endpoint("/register"),
		RevocationEndpoint:                s.endpoint("/revoke"),
		IntrospectionEndpoint:             s.endpoint("/introspect"),
		JWKSURI:                           s.endpoint("/jwks.json"),
		ScopesSupported:                   s.opts.ScopesSupported,
		ResponseTypesSupported:            []string{"code"},
		ResponseModesSupported:            []string{"query"},
		GrantTypesSupported:               grants,
		TokenEndpointAuthMethodsSupported: authMethods,
		TokenEndpointAuthSigningAlgValuesSupported:         algs,
		RevocationEndpointAuthMethodsSupported:             authMethods,
		RevocationEndpointAuthSigningAlgValuesSupported:    algs,
		IntrospectionEndpointAuthMethodsSupported:          introspectionMethods,
		IntrospectionEndpointAuthSigningAlgValuesSupported: algs,
		AuthorizationGrantProfilesSupported:                profiles,
		CodeChallengeMethodsSupported:                      []string{"S256"},
		AuthorizationResponseIssParameterSupported:         true,
		ClientIDMetadataDocumentSupported:                  s.opts.CIMD,
	}
}

// handleMetadata serves the RFC 8414 document at every well-known alias.
func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request) {
	writeCacheableJSON(w, s.metadata())
}

// protectedResourceMetadata is the RFC 9728 document for the MCP server.
type protectedResourceMetadata struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers"`
	ScopesSupported        []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
}

func (s *Server) handleResourceMetadata(w http.ResponseWriter, r *http.Request) {
	writeCacheableJSON(w, protectedResourceMetadata{
		Resource:               s.opts.Resource,
		AuthorizationServers:   []string{s.opts.Issuer},
		ScopesSupported:        s.opts.ScopesSupported,
		BearerMethodsSupported: []string{"header"},
	})
}

// handleJWKS serves the public keys of our signing key ring.
func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	doc, err := s.jwks.JWKS(r.Context())
	if err != nil {
		s.writeJSONError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/jwk-set+json")
	// Short caching: verifiers refetch soon after a key rotation.
	h.Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(doc)
}

// writeCacheableJSON writes a public document that changes only with the
// configuration.
func writeCacheableJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Header().Set("Content-Type", "application/json")
	_ = jsonEncoder(w).Encode(v)
}

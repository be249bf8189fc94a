package oauthhttp

import (
	"encoding/json"

	"github.com/oidcproxy/oidcproxy/ports"
)

// ClientMetadata is the RFC 7591 2 client metadata the proxy reads, as a
// client sends it to /register and as a Client ID Metadata Document
// publishes it. Unknown members are ignored, as RFC 7591 2 requires.
type ClientMetadata struct {
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ApplicationType         string   `json:"application_type"`
	ClientName              string   `json:"client_name"`
	ClientURI               string   `json:"client_uri"`
	LogoURI                 string   `json:"logo_uri"`
	Scope                   string   `json:"scope"`
	Contacts                []string `json:"contacts"`
	SoftwareID              string   `json:"software_id"`
	SoftwareVersion         string   `json:"software_version"`
	// JWKS is kept as the raw JSON value: the use case judges its keys.
	JWKS    json.RawMessage `json:"jwks"`
	JWKSURI string          `json:"jwks_uri"`
}

// Command is the registration the metadata asks for; the use case judges
// it. The conversion (rather than a field-by-field copy) makes a member
// added to one type and not the other a compile error.
func (m ClientMetadata) Command() ports.RegisterClientCommand {
	return ports.RegisterClientCommand(m)
}

package httpapi

import "strings"

// Paths of this server that other parts of the proxy put in URLs.
const (
	// TokenPath is the token endpoint, below the base URL.
	TokenPath = "/token"
	// ResourceMetadataPath serves the RFC 9728 protected resource
	// metadata, alone and followed by the MCP path.
	ResourceMetadataPath = "/.well-known/oauth-protected-resource"
)

// TokenEndpoint is the URL of the token endpoint of a server at baseURL:
// what the metadata announces, and an audience a client assertion may
// name.
func TokenEndpoint(baseURL string) string {
	return strings.TrimSuffix(baseURL, "/") + TokenPath
}

// ResourceMetadataURL is the URL of the protected resource metadata of the
// MCP server at mcpPath, on a server at baseURL: where the gateway's
// challenges send clients.
func ResourceMetadataURL(baseURL, mcpPath string) string {
	return strings.TrimSuffix(baseURL, "/") + ResourceMetadataPath + mcpPath
}

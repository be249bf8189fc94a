package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/httpapi"
)

// The URLs other parts of the proxy build from these functions (a client
// assertion's audience, the gateway's challenge) are the ones the server
// announces and serves.
func TestTheTokenAndResourceMetadataURLsAreTheOnesServed(t *testing.T) {
	f := newFixture(t)

	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/.well-known/oauth-authorization-server", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	var meta struct {
		TokenEndpoint string `json:"token_endpoint"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &meta))
	require.Equal(t, httpapi.TokenEndpoint(fuzzIssuer+"/"), meta.TokenEndpoint)

	u, err := url.Parse(httpapi.ResourceMetadataURL(fuzzIssuer, "/mcp"))
	require.NoError(t, err)
	require.Equal(t, fuzzIssuer, u.Scheme+"://"+u.Host)
	rec = httptest.NewRecorder()
	f.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, u.Path, nil))
	require.Equal(t, http.StatusOK, rec.Code)
	var resource struct {
		Resource string `json:"resource"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &resource))
	require.Equal(t, fuzzIssuer+"/mcp", resource.Resource)
}

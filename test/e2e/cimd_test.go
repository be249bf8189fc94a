package e2e_test

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

// docHost publishes client ID metadata documents from an httptest TLS
// server on 127.0.0.1, as an MCP client vendor would from its website.
type docHost struct {
	*httptest.Server
	mu   sync.Mutex
	docs map[string]string
	hits map[string]int
}

func newDocHost(t *testing.T) *docHost {
	t.Helper()
	h := &docHost{docs: map[string]string{}, hits: map[string]int{}}
	h.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.hits[r.URL.Path]++
		doc, ok := h.docs[r.URL.Path]
		h.mu.Unlock()
		if !ok {
			http.Error(w, "no document here: internal-detail-404", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(doc))
	}))
	t.Cleanup(h.Close)
	return h
}

// Roots verify the host's certificate: https all the way, even in tests.
func (h *docHost) Roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(h.Certificate())
	return pool
}

// Host is what the consent page must show.
func (h *docHost) Host() string { return strings.TrimPrefix(h.URL, "https://") }

// publish serves doc (members of the document; client_id defaults to the
// document's own URL) at path and returns the client_id URL.
func (h *docHost) publish(t *testing.T, path string, doc map[string]any) string {
	t.Helper()
	id := h.URL + path
	if _, ok := doc["client_id"]; !ok {
		doc["client_id"] = id
	}
	raw, err := json.Marshal(doc)
	require.NoError(t, err)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.docs[path] = string(raw)
	return id
}

func (h *docHost) Hits(path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hits[path]
}

const cimdRedirectURI = "http://127.0.0.1:53682/callback"

// cimdDocument is what a typical MCP client publishes.
func cimdDocument() map[string]any {
	return map[string]any{
		"client_name":   "CIMD E2E Client",
		"client_uri":    "https://client.example/",
		"redirect_uris": []string{cimdRedirectURI},
		"grant_types":   []string{"authorization_code", "refresh_token"},
	}
}

// cimdClient is an MCP client whose client_id is its document's URL: no
// registration, no secret.
func (p *proxy) cimdClient(clientID, redirectURI string) *mcpClient {
	return &mcpClient{ID: clientID, RedirectURI: redirectURI, OAuth: &oauth2.Config{
		ClientID:    clientID,
		RedirectURL: redirectURI,
		Endpoint: oauth2.Endpoint{
			AuthURL:   p.BaseURL + "/authorize",
			TokenURL:  p.BaseURL + "/token",
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}}
}

func startWithDocHost(t *testing.T, opts ...proxyOption) (*proxy, *docHost) {
	t.Helper()
	docs := newDocHost(t)
	opts = append([]proxyOption{withEnv("CIMD_ALLOW_PRIVATE_NETWORK", "true")}, opts...)
	p, _ := startWithOPTrusting(t, docs.Roots(), opts...)
	return p, docs
}

func TestAnMCPClientIdentifiedByAMetadataDocumentGetsTokensWithoutRegistering(t *testing.T) {
	p, docs := startWithDocHost(t)
	status, _, meta, _ := getJSON(t, p.BaseURL+"/.well-known/oauth-authorization-server")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, true, meta["client_id_metadata_document_supported"])

	id := docs.publish(t, "/mcp/client-metadata.json", cimdDocument())
	c := p.cimdClient(id, cimdRedirectURI)
	f := newFlow(t, c)

	consent := p.toConsent(t, f)
	require.Contains(t, consent.Body, "CIMD E2E Client")
	require.Contains(t, consent.Body, `id="client-host"`)
	require.Contains(t, consent.Body, "<code>"+docs.Host()+"</code>", "the document's host is shown")
	require.Contains(t, consent.Body, "identified itself by the address")

	up := p.decide(t, f, consent, "approve")
	require.Equal(t, http.StatusSeeOther, up.Status, up.Body)
	cb, err := p.Upstream.Login(t.Context(), f.Browser.Client, up.Location.String())
	require.NoError(t, err)
	final := f.Browser.get(t, cb.String())
	require.Equal(t, http.StatusFound, final.Status, final.Body)
	require.True(t, strings.HasPrefix(final.Location.String(), cimdRedirectURI+"?"), final.Location.String())
	q := final.Location.Query()
	require.Equal(t, f.State, q.Get("state"))
	require.Equal(t, p.BaseURL, q.Get("iss"))

	tok, err := c.OAuth.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(f.Verifier),
		oauth2.SetAuthURLParam("resource", p.BaseURL+"/mcp"))
	require.NoError(t, err)
	require.NotEmpty(t, tok.AccessToken)
	require.NotEmpty(t, tok.RefreshToken)

	parsed, err := jwt.ParseSigned(tok.AccessToken, []jose.SignatureAlgorithm{jose.ES256})
	require.NoError(t, err)
	var claims struct {
		ClientID string `json:"client_id"`
	}
	require.NoError(t, parsed.UnsafeClaimsWithoutVerification(&claims))
	require.Equal(t, id, claims.ClientID, "the token names the document URL as its client")

	next, err := p.refresh(t, c, tok.RefreshToken)
	require.NoError(t, err)
	require.NotEqual(t, tok.RefreshToken, next.RefreshToken)

	require.Equal(t, 1, docs.Hits("/mcp/client-metadata.json"),
		"authorize, consent, token and refresh share one cached fetch")
	require.NotContains(t, p.Logs.String(), `"path":"/register"`, "no registration took place")
}

func TestAMetadataDocumentIsRefetchedWhenItsCacheExpires(t *testing.T) {
	p, docs := startWithDocHost(t)
	id := docs.publish(t, "/client.json", cimdDocument())
	c := p.cimdClient(id, cimdRedirectURI)
	tok, _ := p.login(t, c)
	require.Equal(t, 1, docs.Hits("/client.json"))

	// The vendor withdraws the document; once the cached copy expires the
	// client can no longer use its refresh token.
	docs.mu.Lock()
	delete(docs.docs, "/client.json")
	docs.mu.Unlock()
	p.Clock.Advance(6 * time.Minute) // past the default five minutes
	_, err := p.refresh(t, c, tok.RefreshToken)
	require.Equal(t, "invalid_client", oauthErrorCode(err))
	require.Equal(t, 2, docs.Hits("/client.json"))
}

// authorizePage starts an authorization for a document client and returns
// what the browser gets.
func (p *proxy) authorizePage(t *testing.T, clientID, redirectURI string) page {
	t.Helper()
	c := p.cimdClient(clientID, redirectURI)
	f := newFlow(t, c)
	return f.Browser.get(t, p.authorizeURL(c, f.State, f.Verifier))
}

func requireErrorPage(t *testing.T, res page, wantText string) {
	t.Helper()
	require.Equal(t, http.StatusBadRequest, res.Status, res.Body)
	require.Nil(t, res.Location, "never a redirect: the redirect URI is not trusted")
	require.Contains(t, res.Header.Get("Content-Type"), "text/html")
	require.Contains(t, res.Body, wantText)
}

func TestABadMetadataDocumentGetsAnErrorPageNeverARedirect(t *testing.T) {
	p, docs := startWithDocHost(t)

	t.Run("redirect URI not in the document", func(t *testing.T) {
		id := docs.publish(t, "/ok.json", cimdDocument())
		res := p.authorizePage(t, id, "http://127.0.0.1:53682/elsewhere")
		requireErrorPage(t, res, "redirect_uri is not registered for this client")
	})

	t.Run("client_id that is not the document's URL", func(t *testing.T) {
		doc := cimdDocument()
		doc["client_id"] = docs.URL + "/someone-else.json"
		doc["client_name"] = "Body-Marker-Name"
		id := docs.publish(t, "/mismatch.json", doc)
		res := p.authorizePage(t, id, cimdRedirectURI)
		requireErrorPage(t, res, "client_id does not equal the URL")

		// The same client at /token: invalid_client, 401.
		status, _, body := p.postToken(t, url.Values{
			"grant_type": {"authorization_code"}, "client_id": {id}, "code": {"x"},
			"redirect_uri": {cimdRedirectURI}, "code_verifier": {oauth2.GenerateVerifier()},
		})
		require.Equal(t, http.StatusUnauthorized, status)
		require.Equal(t, "invalid_client", body["error"])

		logs := p.Logs.String()
		require.Contains(t, logs, docs.Host(), "the log names the document's host")
		require.NotContains(t, logs, "Body-Marker-Name", "the log never carries the document")
	})

	t.Run("a document with a client secret", func(t *testing.T) {
		doc := cimdDocument()
		doc["client_secret"] = "published-secret"
		doc["token_endpoint_auth_method"] = "client_secret_basic"
		id := docs.publish(t, "/secret.json", doc)
		requireErrorPage(t, p.authorizePage(t, id, cimdRedirectURI), "must not contain a client secret")
	})

	t.Run("a shared-secret authentication method", func(t *testing.T) {
		doc := cimdDocument()
		doc["token_endpoint_auth_method"] = "client_secret_post"
		id := docs.publish(t, "/symmetric.json", doc)
		requireErrorPage(t, p.authorizePage(t, id, cimdRedirectURI), "shared-secret token_endpoint_auth_method")
	})

	t.Run("a redirect URI that registration would refuse", func(t *testing.T) {
		doc := cimdDocument()
		doc["redirect_uris"] = []string{"javascript:alert(1)"}
		id := docs.publish(t, "/js.json", doc)
		requireErrorPage(t, p.authorizePage(t, id, "javascript:alert(1)"), "document is invalid")
	})

	t.Run("no document at the URL", func(t *testing.T) {
		res := p.authorizePage(t, docs.URL+"/missing.json", cimdRedirectURI)
		requireErrorPage(t, res, "could not be retrieved")
		require.NotContains(t, res.Body, "internal-detail-404", "nothing of the document server's answer is shown")
		require.NotContains(t, res.Body, "404")
	})

	t.Run("not an https URL", func(t *testing.T) {
		res := p.authorizePage(t, "http://client.example/client.json", cimdRedirectURI)
		requireErrorPage(t, res, "https")
	})
}

func TestMetadataDocumentsOnThisMachineNeedThePrivateNetworkAllowance(t *testing.T) {
	docs := newDocHost(t)
	p, _ := startWithOPTrusting(t, docs.Roots())
	id := docs.publish(t, "/client.json", cimdDocument())
	requireErrorPage(t, p.authorizePage(t, id, cimdRedirectURI), "not an acceptable client metadata document URL")
	require.Zero(t, docs.Hits("/client.json"))
}

func TestTurningCIMDOffMakesURLClientIDsUnknown(t *testing.T) {
	p, docs := startWithDocHost(t, withEnv("CIMD_ENABLED", "false"))
	status, _, meta, _ := getJSON(t, p.BaseURL+"/.well-known/oauth-authorization-server")
	require.Equal(t, http.StatusOK, status)
	require.NotContains(t, meta, "client_id_metadata_document_supported")

	id := docs.publish(t, "/client.json", cimdDocument())
	requireErrorPage(t, p.authorizePage(t, id, cimdRedirectURI), "unknown client")
	require.Zero(t, docs.Hits("/client.json"))
}

// Every distinct client_id URL is a fetch; a flood of them at one host is
// refused with temporarily_unavailable once the host's share is spent, on
// the authorization page (503, still never a redirect) and at /token.
func TestAFloodOfMetadataDocumentURLsIsAnsweredTemporarilyUnavailable(t *testing.T) {
	// The flood comes from one address: the per-address limit on fetch
	// triggers, which has its own test, would refuse it first.
	p, docs := startWithDocHost(t, withEnv("RATE_LIMIT_CIMD", "0"))
	id := docs.publish(t, "/client.json", cimdDocument())
	// cimd.DefaultHostBurst fetches at once, then one a second of the
	// proxy's clock, which follows the wall clock here: a slow machine
	// earns a few more before the refusals start.
	const burst, enough = 10, 40
	n := 0
	next := func() string { n++; return fmt.Sprintf("%s?n=%d", id, n) }
	var refused page
	for range enough {
		// A query string makes a new URL, whose document (naming the
		// URL without it) is then refused as a mismatch.
		res := p.authorizePage(t, next(), cimdRedirectURI)
		if res.Status == http.StatusServiceUnavailable {
			refused = res
			break
		}
		requireErrorPage(t, res, "client_id does not equal the URL")
	}
	require.Equal(t, http.StatusServiceUnavailable, refused.Status, "a flood of %d URLs is never refused", enough)
	require.GreaterOrEqual(t, docs.Hits("/client.json"), burst, "the burst was fetched")
	require.Nil(t, refused.Location)
	require.Contains(t, refused.Header.Get("Content-Type"), "text/html")
	require.Contains(t, refused.Body, "temporarily_unavailable")

	for range enough {
		hits := docs.Hits("/client.json")
		status, _, body := p.postToken(t, url.Values{
			"grant_type": {"authorization_code"}, "client_id": {next()}, "code": {"x"},
			"redirect_uri": {cimdRedirectURI}, "code_verifier": {oauth2.GenerateVerifier()},
		})
		if status == http.StatusServiceUnavailable {
			require.Equal(t, "temporarily_unavailable", body["error"])
			require.Equal(t, hits, docs.Hits("/client.json"), "refused without contacting the host")
			return
		}
		require.Equal(t, "invalid_client", body["error"])
	}
	t.Fatalf("/token never refused a flood of %d URLs", enough)
}

package gateway_test

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/gateway"
	"github.com/oidcproxy/oidcproxy/ports"
)

const (
	challengeNoToken = `Bearer resource_metadata="` + testMetadataURL + `", scope="mcp:tools profile"`
	challengeTail    = `, scope="mcp:tools profile", resource_metadata="` + testMetadataURL + `"`
)

// countingBackend counts the requests that reach it.
func countingBackend(n *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		echoBackend().ServeHTTP(w, r)
	})
}

func TestNewRejectsInvalidOptions(t *testing.T) {
	v := newVerifier()
	logger := slog.New(slog.DiscardHandler)
	tests := []struct {
		name   string
		verify ports.VerifyAccessToken
		logger *slog.Logger
		edit   func(*gateway.Options)
		want   string
	}{
		{name: "no verifier", logger: logger, want: "nil access token verifier"},
		{name: "no logger", verify: v, want: "nil logger"},
		{name: "no upstream", verify: v, logger: logger,
			edit: func(o *gateway.Options) { o.Upstream = nil }, want: "upstream URL is required"},
		{name: "upstream of another scheme", verify: v, logger: logger,
			edit: func(o *gateway.Options) { o.Upstream = &url.URL{Scheme: "ftp", Host: "b"} }, want: "http or https"},
		{name: "upstream without host", verify: v, logger: logger,
			edit: func(o *gateway.Options) { o.Upstream = &url.URL{Scheme: "http", Path: "/mcp"} }, want: "no host"},
		{name: "upstream with credentials", verify: v, logger: logger,
			edit: func(o *gateway.Options) { o.Upstream.User = url.UserPassword("u", "secret") }, want: "credentials"},
		{name: "no resource", verify: v, logger: logger,
			edit: func(o *gateway.Options) { o.Resource = "" }, want: "resource is required"},
		{name: "no metadata URL", verify: v, logger: logger,
			edit: func(o *gateway.Options) { o.ResourceMetadataURL = "" }, want: "metadata URL is required"},
		{name: "relative mount path", verify: v, logger: logger,
			edit: func(o *gateway.Options) { o.MountPath = "mcp" }, want: "absolute path"},
		{name: "mount path with dot segments", verify: v, logger: logger,
			edit: func(o *gateway.Options) { o.MountPath = "/a/../mcp" }, want: "dot segments"},
		{name: "origin with a path", verify: v, logger: logger,
			edit: func(o *gateway.Options) { o.AllowedOrigins = []string{"https://app.example/page"} }, want: "scheme://host"},
		{name: "origin without scheme", verify: v, logger: logger,
			edit: func(o *gateway.Options) { o.AllowedOrigins = []string{"app.example"} }, want: "scheme://host"},
		{name: "header name with a space", verify: v, logger: logger,
			edit: func(o *gateway.Options) { o.UserHeader = "X User" }, want: "not a valid HTTP field name"},
		{name: "identity in the Authorization header", verify: v, logger: logger,
			edit: func(o *gateway.Options) { o.UserHeader = "authorization" }, want: "reserved"},
		{name: "identity in an MCP header", verify: v, logger: logger,
			edit: func(o *gateway.Options) { o.EmailHeader = "Mcp_Session_Id" }, want: "reserved"},
		{name: "colliding identity headers", verify: v, logger: logger,
			edit: func(o *gateway.Options) { o.UpstreamTokenHeader = "x_forwarded_user" }, want: "collide"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := defaultOptions(t, "http://127.0.0.1:9/mcp")
			if tt.edit != nil {
				tt.edit(&opts)
			}
			g, err := gateway.New(tt.verify, tt.logger, opts)
			require.ErrorContains(t, err, tt.want)
			require.True(t, strings.HasPrefix(err.Error(), "gateway: new: "), err.Error())
			require.Nil(t, g)
		})
	}
}

func TestRequestsWithoutABearerTokenGetTheChallengeAndNeverReachTheBackend(t *testing.T) {
	var hits atomic.Int64
	f := newFixture(t, countingBackend(&hits), nil)
	tests := []struct {
		name          string
		authorization string
	}{
		{name: "no Authorization header"},
		{name: "another scheme", authorization: "Basic YWxpY2U6c2VjcmV0"},
		{name: "a scheme that merely starts like Bearer", authorization: "Bearerish " + tokenAlice},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.authorization != "" {
				h.Set("Authorization", tt.authorization)
			}
			res, body := f.do(t, http.MethodPost, "/mcp", "", []byte(`{}`), h)
			require.Equal(t, http.StatusUnauthorized, res.StatusCode)
			require.Equal(t, []string{challengeNoToken}, res.Header.Values("WWW-Authenticate"))
			require.Equal(t, "no-store", res.Header.Get("Cache-Control"))
			require.Empty(t, body)
		})
	}
	require.Zero(t, hits.Load())
	require.Empty(t, f.verifier.Calls())
}

func TestTheChallengeOmitsScopeWhenNoScopeIsRequired(t *testing.T) {
	f := newFixture(t, echoBackend(), func(o *gateway.Options) { o.RequiredScopes = nil })
	res, _ := f.do(t, http.MethodGet, "/mcp", "", nil, nil)
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	require.Equal(t, `Bearer resource_metadata="`+testMetadataURL+`"`, res.Header.Get("WWW-Authenticate"))

	res, _ = f.do(t, http.MethodGet, "/mcp", tokenExpired, nil, nil)
	require.Equal(t, `Bearer error="invalid_token", error_description="the access token has expired", resource_metadata="`+testMetadataURL+`"`,
		res.Header.Get("WWW-Authenticate"))
}

func TestRefusedTokensGetRFC6750ErrorsAndNeverReachTheBackend(t *testing.T) {
	var hits atomic.Int64
	f := newFixture(t, countingBackend(&hits), nil)
	tests := []struct {
		name      string
		header    http.Header
		path      string
		status    int
		challenge string // "" = no WWW-Authenticate
		body      string
	}{
		{
			name:      "an invalid token",
			header:    bearer("unknown.token.sig"),
			status:    http.StatusUnauthorized,
			challenge: `Bearer error="invalid_token", error_description="the access token is not valid"` + challengeTail,
			body:      `{"error":"invalid_token","error_description":"the access token is not valid"}`,
		},
		{
			name:      "an expired token",
			header:    bearer(tokenExpired),
			status:    http.StatusUnauthorized,
			challenge: `Bearer error="invalid_token", error_description="the access token has expired"` + challengeTail,
			body:      `{"error":"invalid_token","error_description":"the access token has expired"}`,
		},
		{
			name:      "a token without the required scope (step-up)",
			header:    bearer(tokenNoScope),
			status:    http.StatusForbidden,
			challenge: `Bearer error="insufficient_scope", error_description="the access token lacks a required scope"` + challengeTail,
			body:      `{"error":"insufficient_scope","error_description":"the access token lacks a required scope"}`,
		},
		{
			name:   "a store failure",
			header: bearer(tokenStoreDown),
			status: http.StatusInternalServerError,
			body:   `{"error":"server_error","error_description":"internal error"}`,
		},
		{
			name:   "an error that is not an OAuth error",
			header: bearer(tokenPlainError),
			status: http.StatusInternalServerError,
			body:   `{"error":"server_error","error_description":"internal error"}`,
		},
		{
			name:   "a subject that cannot travel in a header",
			header: bearer(tokenBadSubject),
			status: http.StatusInternalServerError,
			body:   `{"error":"server_error","error_description":"internal error"}`,
		},
		{
			name:   "an unavailable dependency",
			header: bearer(tokenUnavailable),
			status: http.StatusServiceUnavailable,
			body:   `{"error":"temporarily_unavailable","error_description":"the token store is unavailable"}`,
		},
		{
			name:      "a Bearer header without token",
			header:    http.Header{"Authorization": {"Bearer "}},
			status:    http.StatusBadRequest,
			challenge: `Bearer error="invalid_request", error_description="the Authorization header is not a single Bearer token"` + challengeTail,
			body:      `{"error":"invalid_request","error_description":"the Authorization header is not a single Bearer token"}`,
		},
		{
			name:      "a Bearer header with two tokens",
			header:    http.Header{"Authorization": {"Bearer a b"}},
			status:    http.StatusBadRequest,
			challenge: `Bearer error="invalid_request", error_description="the Authorization header is not a single Bearer token"` + challengeTail,
			body:      `{"error":"invalid_request","error_description":"the Authorization header is not a single Bearer token"}`,
		},
		{
			name:      "two Authorization headers",
			header:    http.Header{"Authorization": {"Bearer " + tokenAlice, "Bearer " + tokenAlice}},
			status:    http.StatusBadRequest,
			challenge: `Bearer error="invalid_request", error_description="the Authorization header is not a single Bearer token"` + challengeTail,
			body:      `{"error":"invalid_request","error_description":"the Authorization header is not a single Bearer token"}`,
		},
		{
			name:      "a token in the query, even beside a valid header",
			header:    bearer(tokenAlice),
			path:      "/mcp?access_token=" + tokenAlice,
			status:    http.StatusBadRequest,
			challenge: `Bearer error="invalid_request", error_description="access tokens are accepted only in the Authorization header"` + challengeTail,
			body:      `{"error":"invalid_request","error_description":"access tokens are accepted only in the Authorization header"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path
			if path == "" {
				path = "/mcp"
			}
			res, body := f.do(t, http.MethodPost, path, "", []byte(`{}`), tt.header)
			require.Equal(t, tt.status, res.StatusCode)
			require.Equal(t, tt.challenge, res.Header.Get("WWW-Authenticate"))
			require.Equal(t, "application/json", res.Header.Get("Content-Type"))
			require.Equal(t, "no-store", res.Header.Get("Cache-Control"))
			require.Equal(t, tt.body, string(body))
		})
	}
	require.Zero(t, hits.Load())
}

func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

func TestTheBearerSchemeIsCaseInsensitive(t *testing.T) {
	f := newFixture(t, echoBackend(), nil)
	for _, scheme := range []string{"Bearer", "bearer", "BEARER", "bEaReR"} {
		t.Run(scheme, func(t *testing.T) {
			res, body := f.do(t, http.MethodPost, "/mcp", "", []byte(`{}`),
				http.Header{"Authorization": {scheme + "  " + tokenAlice}})
			require.Equal(t, http.StatusOK, res.StatusCode, string(body))
			require.Equal(t, "alice", decodeEcho(t, body).Header.Get("X-Forwarded-User"))
		})
	}
}

func TestTheVerifierIsAskedForTheConfiguredResourceAndScopes(t *testing.T) {
	f := newFixture(t, echoBackend(), nil)
	res, _ := f.do(t, http.MethodPost, "/mcp", tokenAlice, []byte(`{}`), nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, []ports.VerifyAccessTokenCommand{{
		Token: tokenAlice, Resource: testResource, RequiredScopes: []string{"mcp:tools", "profile"},
	}}, f.verifier.Calls())
}

func TestChallengeParametersAreQuotedStrings(t *testing.T) {
	f := newFixture(t, echoBackend(), func(o *gateway.Options) {
		o.ResourceMetadataURL = `https://proxy.example/.well-known/oauth-protected-resource/"odd\`
		o.RequiredScopes = []string{`a"b`}
	})
	res, body := f.do(t, http.MethodGet, "/mcp", tokenQuoted, nil, nil)
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	require.Equal(t,
		`Bearer error="invalid_token", error_description="say \"hi\" \\ then  bye", scope="a\"b", `+
			`resource_metadata="https://proxy.example/.well-known/oauth-protected-resource/\"odd\\"`,
		res.Header.Get("WWW-Authenticate"))
	require.JSONEq(t, `{"error":"invalid_token","error_description":"say \"hi\" \\ then\r\nbye"}`, string(body))
}

func TestOriginsOutsideTheAllowListAreRefusedBeforeTheTokenIsChecked(t *testing.T) {
	f := newFixture(t, echoBackend(), nil)
	tests := []struct {
		name   string
		origin []string
		status int
	}{
		{name: "no Origin header (a non-browser client)", status: http.StatusOK},
		{name: "an allowed origin", origin: []string{"https://app.example"}, status: http.StatusOK},
		{name: "an allowed origin with a port", origin: []string{"http://localhost:6274"}, status: http.StatusOK},
		{name: "an allowed origin spelled differently", origin: []string{"HTTPS://App.Example:443"}, status: http.StatusOK},
		{name: "another origin", origin: []string{"https://evil.example"}, status: http.StatusForbidden},
		{name: "an allowed host on another port", origin: []string{"http://localhost:8080"}, status: http.StatusForbidden},
		{name: "an allowed host with another scheme", origin: []string{"http://app.example"}, status: http.StatusForbidden},
		{name: "the opaque origin", origin: []string{"null"}, status: http.StatusForbidden},
		{name: "two Origin headers", origin: []string{"https://app.example", "https://evil.example"}, status: http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.verifier.Calls())
			h := http.Header{}
			if tt.origin != nil {
				h["Origin"] = tt.origin
			}
			res, body := f.do(t, http.MethodPost, "/mcp", tokenAlice, []byte(`{}`), h)
			require.Equal(t, tt.status, res.StatusCode, string(body))
			if tt.status == http.StatusForbidden {
				require.Equal(t, jsonRPCError(-32600, "Forbidden: origin not allowed"), string(body))
				require.Len(t, f.verifier.Calls(), before, "the token must not be checked for a refused origin")
			}
		})
	}
}

func TestMethodsOtherThanPostGetAndDeleteAreRefused(t *testing.T) {
	var hits atomic.Int64
	f := newFixture(t, countingBackend(&hits), nil)
	for _, method := range []string{http.MethodPut, http.MethodPatch, http.MethodOptions, http.MethodHead, "PROPFIND"} {
		t.Run(method, func(t *testing.T) {
			res, body := f.do(t, method, "/mcp", tokenAlice, nil, nil)
			require.Equal(t, http.StatusMethodNotAllowed, res.StatusCode)
			require.Equal(t, "GET, POST, DELETE", res.Header.Get("Allow"))
			if method != http.MethodHead {
				require.Equal(t, jsonRPCError(-32600, "Method not allowed"), string(body))
			}
		})
	}
	require.Zero(t, hits.Load())
}

func TestRefusalsAreLoggedOnceWithoutTheToken(t *testing.T) {
	f := newFixture(t, echoBackend(), nil)
	for _, token := range []string{tokenAlice, tokenExpired, tokenNoScope, tokenStoreDown, "unknown.token.sig"} {
		f.do(t, http.MethodPost, "/mcp", token, []byte(`{}`), nil)
	}
	f.do(t, http.MethodPost, "/mcp?access_token=secret.in.query", "", []byte(`{}`), nil)
	f.do(t, http.MethodPost, "/mcp", "", []byte(`{}`), nil)

	logs := f.logs.String()
	for _, secret := range []string{tokenAlice, tokenExpired, tokenNoScope, tokenStoreDown, "unknown.token.sig", "secret.in.query", testUpstreamAT} {
		require.NotContains(t, logs, secret)
	}
	var warns, errs, debugs int
	for _, l := range lines(logs) {
		switch {
		case strings.Contains(l, "level=WARN"):
			warns++
		case strings.Contains(l, "level=ERROR"):
			errs++
			require.Contains(t, l, "boltstore: get grant: timeout", "the private cause is logged")
		case strings.Contains(l, "level=DEBUG"):
			debugs++
		}
	}
	require.Equal(t, 4, warns, logs) // expired, no scope, unknown, token in query
	require.Equal(t, 1, errs, logs)  // the store failure
	require.Equal(t, 1, debugs, logs)
}

package oauthhttp_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/oauthhttp"
	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/internal/clientip"
	"github.com/oidcproxy/oidcproxy/internal/ratelimit"
	"github.com/oidcproxy/oidcproxy/ports"
)

func TestEveryOAuthErrorCodeHasItsStatus(t *testing.T) {
	tests := []struct {
		code   domain.ErrorCode
		status int
	}{
		{domain.CodeInvalidClient, http.StatusUnauthorized},
		{domain.CodeInvalidToken, http.StatusUnauthorized},
		{domain.CodeInsufficientScope, http.StatusForbidden},
		{domain.CodeServerError, http.StatusInternalServerError},
		{domain.CodeTemporarilyUnavailable, http.StatusServiceUnavailable},
		{domain.CodeInvalidRequest, http.StatusBadRequest},
		{domain.CodeInvalidGrant, http.StatusBadRequest},
		{domain.CodeAccessDenied, http.StatusBadRequest},
		{domain.CodeInvalidClientMetadata, http.StatusBadRequest},
		{domain.CodeInvalidRedirectURI, http.StatusBadRequest},
		{domain.CodeInvalidTarget, http.StatusBadRequest},
		{"an_unknown_code", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(string(tt.code), func(t *testing.T) {
			require.Equal(t, tt.status, oauthhttp.Status(tt.code))
		})
	}
}

func TestARefusedBearerTokenIsReportedWithAnRFC6750Code(t *testing.T) {
	for _, kept := range []domain.ErrorCode{domain.CodeInvalidRequest, domain.CodeInvalidToken, domain.CodeInsufficientScope,
		domain.CodeServerError, domain.CodeTemporarilyUnavailable} {
		require.Equal(t, kept, oauthhttp.BearerErrorCode(kept))
	}
	for _, other := range []domain.ErrorCode{domain.CodeInvalidGrant, domain.CodeAccessDenied, domain.CodeInvalidClient, ""} {
		require.Equal(t, domain.CodeInvalidToken, oauthhttp.BearerErrorCode(other))
	}
}

func TestAnErrorThatIsNotAnOAuthErrorIsShownAsAServerError(t *testing.T) {
	e := oauthhttp.ErrorOf(errorString("pgstore: dial 10.0.0.5:5432: refused"))
	require.Equal(t, domain.CodeServerError, e.Code)
	require.Equal(t, "internal error", e.Description)

	grant := domain.ErrInvalidGrant("the code was already used")
	require.Same(t, grant, oauthhttp.ErrorOf(grant))
}

type errorString string

func (e errorString) Error() string { return string(e) }

func TestErrorDocumentsAreNoStoreJSONWithAnExactLength(t *testing.T) {
	w := httptest.NewRecorder()
	w.Header().Set("WWW-Authenticate", oauthhttp.BasicChallenge)
	oauthhttp.WriteError(w, http.StatusUnauthorized, domain.CodeInvalidClient, "client authentication failed")
	require.Equal(t, http.StatusUnauthorized, w.Code)
	require.Equal(t, `{"error":"invalid_client","error_description":"client authentication failed"}`, w.Body.String())
	require.Equal(t, http.Header{
		"Content-Type":     {"application/json"},
		"Cache-Control":    {"no-store"},
		"Pragma":           {"no-cache"},
		"Content-Length":   {"77"},
		"Www-Authenticate": {`Basic realm="oidcproxy", charset="UTF-8"`},
	}, w.Header())

	w = httptest.NewRecorder()
	oauthhttp.WriteError(w, http.StatusBadRequest, domain.CodeInvalidRequest, "")
	require.Equal(t, `{"error":"invalid_request"}`, w.Body.String(), "an empty description is left out")
}

func TestJSONAnswersKeepURLsAsTheyAre(t *testing.T) {
	w := httptest.NewRecorder()
	oauthhttp.WriteJSON(w, http.StatusCreated, map[string]string{"redirect_uri": "https://app.example/cb?a=1&b=<2>"})
	require.Equal(t, http.StatusCreated, w.Code)
	require.Equal(t, `{"redirect_uri":"https://app.example/cb?a=1&b=<2>"}`, w.Body.String())
}

func TestAValueThatCannotBeEncodedBecomesAServerError(t *testing.T) {
	w := httptest.NewRecorder()
	oauthhttp.WriteJSON(w, http.StatusOK, map[string]any{"f": func() {}})
	require.Equal(t, http.StatusInternalServerError, w.Code)
	require.Equal(t, `{"error":"server_error","error_description":"internal error"}`, w.Body.String())
}

func TestBearerChallengesPointAtTheMetadataAndTheScopes(t *testing.T) {
	const metadata = "https://proxy.example/.well-known/oauth-protected-resource/mcp"
	c := oauthhttp.NewBearerChallenge(metadata, []string{"mcp:tools", "profile"})
	require.Equal(t, `Bearer resource_metadata="`+metadata+`", scope="mcp:tools profile"`, c.NoToken())
	require.Equal(t, `Bearer error="insufficient_scope", error_description="the access token lacks a required scope", `+
		`scope="mcp:tools profile", resource_metadata="`+metadata+`"`,
		c.Error(domain.CodeInsufficientScope, "the access token lacks a required scope"))
	require.Equal(t, `Bearer error="invalid_token", scope="mcp:tools profile", resource_metadata="`+metadata+`"`,
		c.Error(domain.CodeInvalidToken, ""))

	bare := oauthhttp.NewBearerChallenge(metadata, nil)
	require.Equal(t, `Bearer resource_metadata="`+metadata+`"`, bare.NoToken(), "no scope parameter when none is required")
	require.Equal(t, `Bearer error="invalid_token", resource_metadata="`+metadata+`"`, bare.Error(domain.CodeInvalidToken, ""))
}

func TestChallengeParametersAreQuotedStrings(t *testing.T) {
	tests := map[string]string{
		`plain`:              `"plain"`,
		`say "hi"`:           `"say \"hi\""`,
		`back\slash`:         `"back\\slash"`,
		"line\r\nbreak\x00":  `"line  break "`,
		"tab\tand\x7fdelete": "\"tab\tand delete\"",
		"":                   `""`,
	}
	for in, want := range tests {
		require.Equal(t, want, oauthhttp.Quote(in), "%q", in)
	}
}

func TestAnAuditRecordHasOneShape(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	r := httptest.NewRequest(http.MethodPost, "/token", nil)
	r.RemoteAddr = "192.0.2.7:4242"
	oauthhttp.Audit(log, r, "tokens_issued", "client_id", "c1")
	var rec map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &rec))
	delete(rec, "time")
	require.Equal(t, map[string]any{
		"level": "INFO", "msg": "audit", "audit": true, "event": "tokens_issued",
		"client_ip": "192.0.2.7", "remote_addr": "192.0.2.7:4242", "client_id": "c1",
	}, rec)
}

func TestAnAuditRecordNamesTheClientAddressTheAdapterDerived(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	r := httptest.NewRequest(http.MethodPost, "/token", nil)
	r.RemoteAddr = "10.0.0.5:443" // a trusted proxy
	r = r.WithContext(clientip.NewContext(r.Context(), netip.MustParseAddr("198.51.100.1")))
	oauthhttp.Audit(log, r, "tokens_issued")
	var rec map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &rec))
	require.Equal(t, "198.51.100.1", rec["client_ip"])
	require.Equal(t, "10.0.0.5:443", rec["remote_addr"])

	unix := httptest.NewRequest(http.MethodGet, "/", nil)
	unix.RemoteAddr = "@" // a Unix socket's peer
	require.Empty(t, oauthhttp.ClientIP(unix))
}

func TestARateLimitRefusalIsA429WithRetryAfterInWholeSeconds(t *testing.T) {
	w := httptest.NewRecorder()
	oauthhttp.WriteTooManyRequests(w, 1500*time.Millisecond)
	require.Equal(t, http.StatusTooManyRequests, w.Code)
	require.Equal(t, "2", w.Header().Get("Retry-After"))
	require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	require.JSONEq(t, `{"error":"temporarily_unavailable","error_description":"`+oauthhttp.RateLimitDescription+`"}`, w.Body.String())

	wait, ok := oauthhttp.RetryAfter(fmt.Errorf("fetch: %w", domain.ErrTemporarilyUnavailable("busy", &ratelimit.Exceeded{RetryAfter: time.Second})))
	require.True(t, ok)
	require.Equal(t, time.Second, wait)
	_, ok = oauthhttp.RetryAfter(domain.ErrTemporarilyUnavailable("busy", nil))
	require.False(t, ok)
}

func TestClientMetadataIsReadAsRFC7591Says(t *testing.T) {
	var m oauthhttp.ClientMetadata
	require.NoError(t, json.Unmarshal([]byte(`{
		"redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": "none",
		"grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
		"application_type": "native", "client_name": "App", "client_uri": "https://app.example",
		"logo_uri": "https://app.example/logo.png", "scope": "openid mcp", "contacts": ["ops@app.example"],
		"software_id": "sw", "software_version": "1.2", "jwks_uri": "https://app.example/jwks",
		"jwks": {"keys": [{"kty": "EC"}]}, "x_vendor": {"a": 1}
	}`), &m))
	require.Equal(t, ports.RegisterClientCommand{
		RedirectURIs: []string{"https://app.example/cb"}, TokenEndpointAuthMethod: "none",
		GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
		ApplicationType: "native", ClientName: "App", ClientURI: "https://app.example",
		LogoURI: "https://app.example/logo.png", Scope: "openid mcp", Contacts: []string{"ops@app.example"},
		SoftwareID: "sw", SoftwareVersion: "1.2", JWKSURI: "https://app.example/jwks",
		// The key set is kept as sent: the use case judges it.
		JWKS: json.RawMessage(`{"keys": [{"kty": "EC"}]}`),
	}, m.Command())
}

package idp

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

// The emulations below are Faulty IdPs with the quirks of one real IdP, as
// documented by its vendor and as FastMCP users met them. They behave like
// the real service where a preset's correctness depends on it: they refuse
// what the real IdP refuses, with its error codes, so a preset that forgets
// a quirk fails its tests the way it would fail in production.

// Well-known values of the emulations.
const (
	// GraphAudience is Microsoft Graph's application id, the aud of the
	// access tokens Entra issues when no other resource is asked for.
	GraphAudience = "00000003-0000-0000-c000-000000000000"
	// GraphResource is Microsoft Graph's resource URI; Entra reads a bare
	// scope such as User.Read as one of Graph's.
	GraphResource = "https://graph.microsoft.com"
	// DefaultTenantID is the Entra tenant of the emulated user.
	DefaultTenantID = "5f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
	// EntraV1Issuer is the token service that names itself in the iss of
	// Entra's v1.0 access tokens, https://sts.windows.net/{tenant}/, in
	// the public cloud (and the US Government cloud), whatever host the
	// v2.0 endpoints have.
	EntraV1Issuer = "https://sts.windows.net"
	// DefaultAuth0Audience is the API identifier the Auth0 emulation knows.
	DefaultAuth0Audience = "https://mcp.example.com/api"
	// GoogleEmailScope and GoogleProfileScope are Google's long forms of
	// the email and profile scopes, the ones its token responses echo.
	GoogleEmailScope   = "https://www.googleapis.com/auth/userinfo.email"
	GoogleProfileScope = "https://www.googleapis.com/auth/userinfo.profile"
)

// openIDScopes are the scopes Entra treats as OpenID Connect's own rather
// than a resource's.
var openIDScopes = []string{"openid", "profile", "email", "offline_access"}

// hasScope reports whether the space-separated scope list holds s.
func hasScope(scope, s string) bool { return slices.Contains(strings.Fields(scope), s) }

// Auth0Options configure NewAuth0.
type Auth0Options struct {
	FaultyOptions
	// Audience is the identifier of the one API registered in the tenant;
	// DefaultAuth0Audience when empty.
	Audience string
}

// NewAuth0 starts an IdP that behaves like an Auth0 tenant:
//   - the issuer ends with a slash ("https://tenant.auth0.com/");
//   - an access token is a JWT (aud = [audience, issuer + "userinfo"]) only
//     when the authorization request names a known API in "audience";
//     without it Auth0 issues an opaque token good for /userinfo alone, and
//     an unknown audience is refused with access_denied ("Service not
//     found");
//   - refresh tokens only for offline_access;
//   - RS256 signatures, HS256 listed in discovery too.
func NewAuth0(t testing.TB, o Auth0Options) *Faulty {
	t.Helper()
	audience := o.Audience
	if audience == "" {
		audience = DefaultAuth0Audience
	}
	clientID := o.ClientID
	if clientID == "" {
		clientID = DefaultClientID
	}
	o.Quirks = Quirks{
		IssuerTrailingSlash: true,
		SigningAlgorithm:    "RS256",
		Discovery: map[string]any{
			"scopes_supported": []string{"openid", "profile", "offline_access", "name", "given_name",
				"family_name", "nickname", "email", "email_verified", "picture", "created_at", "identities", "phone", "address"},
			"id_token_signing_alg_values_supported": []string{"HS256", "RS256", "PS256"},
			"code_challenge_methods_supported":      []string{"S256", "plain"},
			"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post", "private_key_jwt"},
		},
		Authorize: func(q url.Values) (string, string) {
			if a := q.Get("audience"); a != "" && a != audience {
				return "access_denied", "Service not found: " + a
			}
			return "", ""
		},
		RefreshTokenIf: func(q url.Values) bool { return hasScope(q.Get("scope"), "offline_access") },
		AccessToken: func(q url.Values, _, issuer string) AccessTokenShape {
			if q.Get("audience") == "" {
				return AccessTokenShape{}
			}
			return AccessTokenShape{
				JWT:      true,
				Audience: []string{q.Get("audience"), issuer + "userinfo"},
				Claims:   map[string]any{"azp": clientID},
			}
		},
	}
	return NewFaulty(t, o.FaultyOptions)
}

// GoogleOptions configure NewGoogle.
type GoogleOptions struct {
	FaultyOptions
	// HostedDomain, when set, is the hd claim of the user's ID tokens (a
	// Google Workspace account); empty means a consumer account.
	HostedDomain string
}

// NewGoogle starts an IdP that behaves like Google:
//   - discovery does not list offline_access, and an authorization request
//     asking for it is refused with invalid_scope;
//   - refresh tokens only with access_type=offline;
//   - access tokens are opaque ("ya29." ...), and here deliberately shaped
//     like a JWT (three dot-separated parts) that is not one, so that any
//     code that sniffs for JWTs trips over it;
//   - the token response echoes email and profile in their long forms
//     (https://www.googleapis.com/auth/userinfo.email, ...);
//   - RS256 signatures, azp = the client id, hd for Workspace accounts.
func NewGoogle(t testing.TB, o GoogleOptions) *Faulty {
	t.Helper()
	clientID := o.ClientID
	if clientID == "" {
		clientID = DefaultClientID
	}
	claims := map[string]any{"azp": clientID}
	if o.HostedDomain != "" {
		claims["hd"] = o.HostedDomain
	}
	o.Quirks = Quirks{
		SigningAlgorithm: "RS256",
		Discovery: map[string]any{
			"scopes_supported":                      []string{"openid", "email", "profile"},
			"code_challenge_methods_supported":      []string{"plain", "S256"},
			"token_endpoint_auth_methods_supported": []string{"client_secret_post", "client_secret_basic"},
		},
		Authorize: func(q url.Values) (string, string) {
			if hasScope(q.Get("scope"), "offline_access") {
				return "invalid_scope", "Some requested scopes were invalid. {invalid=[offline_access]}"
			}
			return "", ""
		},
		RefreshTokenIf: func(q url.Values) bool { return q.Get("access_type") == "offline" },
		AccessToken: func(url.Values, string, string) AccessTokenShape {
			return AccessTokenShape{Prefix: "ya29.", Dotted: true}
		},
		EchoScope: func(scope string) string {
			long := map[string]string{"email": GoogleEmailScope, "profile": GoogleProfileScope}
			out := strings.Fields(scope)
			for i, s := range out {
				if l, ok := long[s]; ok {
					out[i] = l
				}
			}
			return strings.Join(out, " ")
		},
		IDTokenClaims: claims,
	}
	return NewFaulty(t, o.FaultyOptions)
}

// AzureOptions configure NewAzure.
type AzureOptions struct {
	FaultyOptions
	// Tenant is the tenant segment of the endpoints as the client names
	// it: common (the default), organizations, consumers, a GUID or a
	// domain.
	Tenant string
	// TenantID is the user's tenant, DefaultTenantID when empty.
	TenantID string
	// IdentifierURI is the application ID URI of the API whose scopes the
	// client may ask for; api://{client id} when empty.
	IdentifierURI string
	// AccessTokenVersion mirrors the API's app manifest entry
	// accessTokenAcceptedVersion (requestedAccessTokenVersion in the
	// Microsoft Graph format), which alone decides the version of the
	// access tokens Entra issues for the API, whatever endpoint the client
	// uses: 2 for v2.0 tokens; 1, or 0 for the manifest's null (the
	// default of a new registration), for v1.0 tokens. Entra refuses a
	// value other than 2 for apps that personal Microsoft accounts sign
	// in to, so NewAzure refuses it with the consumers tenant.
	AccessTokenVersion int
}

// NewAzure starts an IdP that behaves like Microsoft Entra ID's v2.0
// endpoints at /{tenant}/v2.0:
//   - for common, organizations and consumers discovery names the issuer
//     https://host/{tenantid}/v2.0 and tokens carry tid and their tenant's
//     issuer; a tenant named by domain answers with its GUID issuer;
//   - an authorization request with "resource" is refused (AADSTS9010010),
//     and one whose scopes name more than one resource too (AADSTS28000); a
//     bare scope such as User.Read is Microsoft Graph's;
//   - when the scopes name the API, the access token is a JWT for it in the
//     version AccessTokenVersion selects, signed with the tenant's keys
//     (Microsoft identity platform, "Access token claims reference"):
//     v2.0: ver "2.0", iss = the v2.0 issuer of the user's tenant
//     ({authority}/{tid}/v2.0), aud = the API's application (client) ID,
//     azp = the client; v1.0: ver "1.0", iss =
//     https://sts.windows.net/{tid}/, aud = the API's application ID URI
//     (the resource the scopes named), appid = the client. Both carry tid,
//     oid and scp (the API scopes without prefix). Otherwise the token is
//     a Graph token, signed with a key nobody else can verify;
//   - the token response echoes the resource scopes in full (api://...);
//   - refresh tokens only for offline_access; RS256; no PKCE methods and no
//     revocation endpoint in discovery.
func NewAzure(t testing.TB, o AzureOptions) *Faulty {
	t.Helper()
	tenant, tid := o.Tenant, o.TenantID
	if tenant == "" {
		tenant = "common"
	}
	if tid == "" {
		tid = DefaultTenantID
	}
	clientID := o.ClientID
	if clientID == "" {
		clientID = DefaultClientID
	}
	identifier := o.IdentifierURI
	if identifier == "" {
		identifier = "api://" + clientID
	}
	version := o.AccessTokenVersion
	switch {
	case version != 0 && version != 1 && version != 2:
		t.Fatalf("idp: accessTokenAcceptedVersion is 1, 2 or null (0), not %d", version)
	case tenant == "consumers" && version != 2:
		t.Fatalf("idp: an app for personal Microsoft accounts must set accessTokenAcceptedVersion to 2")
	}
	o.IssuerPath = "/" + tenant + "/v2.0"
	o.Quirks = Quirks{
		TenantID:         tid,
		TenantTemplate:   tenant == "common" || tenant == "organizations" || tenant == "consumers",
		SigningAlgorithm: "RS256",
		Discovery: map[string]any{
			"code_challenge_methods_supported":      nil,
			"revocation_endpoint":                   nil,
			"scopes_supported":                      openIDScopes,
			"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
			"response_modes_supported":              []string{"query", "fragment", "form_post"},
		},
		Authorize: func(q url.Values) (string, string) {
			if q.Has("resource") {
				return "invalid_request", "AADSTS9010010: The resource parameter provided in the request doesn't match with the requested scopes."
			}
			if len(azureResources(q.Get("scope"), identifier)) > 1 {
				return "invalid_scope", "AADSTS28000: Provided value for the input parameter scope is not valid because it contains more than one resource."
			}
			return "", ""
		},
		RefreshTokenIf: func(q url.Values) bool { return hasScope(q.Get("scope"), "offline_access") },
		AccessToken: func(_ url.Values, scope, issuer string) AccessTokenShape {
			resources := azureResources(scope, identifier)
			if len(resources) != 1 || resources[0] != identifier {
				return AccessTokenShape{JWT: true, Audience: []string{GraphAudience}, ScopeClaim: "scp", Scope: "User.Read",
					Claims: map[string]any{"tid": tid, "ver": "1.0", "appid": clientID}, Unpublished: true,
					Issuer: EntraV1Issuer + "/" + tid + "/"}
			}
			var scp []string
			for _, s := range strings.Fields(scope) {
				if short, ok := strings.CutPrefix(s, identifier+"/"); ok {
					scp = append(scp, short)
				}
			}
			shape := AccessTokenShape{JWT: true, ScopeClaim: "scp", Scope: strings.Join(scp, " "),
				Claims: map[string]any{"tid": tid, "oid": azureObjectID}}
			if version == 2 {
				shape.Issuer, shape.Audience = issuer, []string{clientID}
				merge(shape.Claims, map[string]any{"ver": "2.0", "azp": clientID, "azpacr": "1"})
			} else {
				shape.Issuer, shape.Audience = EntraV1Issuer+"/"+tid+"/", []string{identifier}
				merge(shape.Claims, map[string]any{"ver": "1.0", "appid": clientID, "appidacr": "1"})
			}
			return shape
		},
		EchoScope: func(scope string) string {
			var out []string
			for _, s := range strings.Fields(scope) {
				switch {
				case slices.Contains(openIDScopes, s):
				case strings.Contains(s, "://"):
					out = append(out, s)
				default:
					out = append(out, GraphResource+"/"+s)
				}
			}
			if len(out) == 0 {
				out = []string{GraphResource + "/User.Read"}
			}
			return strings.Join(out, " ")
		},
		IDTokenClaims: map[string]any{"ver": "2.0", "oid": azureObjectID, "preferred_username": DefaultEmail},
	}
	return NewFaulty(t, o.FaultyOptions)
}

// azureObjectID is the emulated user's object ID in the tenant (oid).
const azureObjectID = "00000000-0000-0000-0000-0000000000aa"

// azureResources returns the resources the non-OpenID scopes of a scope
// list belong to, the way Entra reads them: the part before the last "/"
// of a URI scope, Microsoft Graph for a bare one.
func azureResources(scope, identifier string) []string {
	var out []string
	for _, s := range strings.Fields(scope) {
		if slices.Contains(openIDScopes, s) {
			continue
		}
		resource := GraphResource
		if strings.HasPrefix(s, identifier+"/") {
			resource = identifier
		} else if i := strings.LastIndex(s, "/"); strings.Contains(s, "://") && i > 0 {
			resource = s[:i]
		}
		if !slices.Contains(out, resource) {
			out = append(out, resource)
		}
	}
	return out
}

// NewKeycloak starts an IdP that behaves like a Keycloak realm, the
// worked example of docs/adding-a-provider.md: the issuer has a path
// (/realms/mcp), tokens are RS256, access tokens are JWTs for the "account"
// audience, refresh tokens only for offline_access, and token responses
// carry refresh_expires_in (0 for offline tokens) and not-before-policy.
func NewKeycloak(t testing.TB, o FaultyOptions) *Faulty {
	t.Helper()
	clientID := o.ClientID
	if clientID == "" {
		clientID = DefaultClientID
	}
	if o.IssuerPath == "" {
		o.IssuerPath = "/realms/mcp"
	}
	o.Quirks = Quirks{
		SigningAlgorithm: "RS256",
		Discovery: map[string]any{
			"code_challenge_methods_supported": []string{"plain", "S256"},
			"scopes_supported":                 []string{"openid", "offline_access", "profile", "email", "roles", "web-origins"},
		},
		RefreshTokenIf: func(q url.Values) bool { return hasScope(q.Get("scope"), "offline_access") },
		AccessToken: func(url.Values, string, string) AccessTokenShape {
			return AccessTokenShape{JWT: true, Audience: []string{"account"}, Claims: map[string]any{"azp": clientID, "typ": "Bearer"}}
		},
		IDTokenClaims: map[string]any{"azp": clientID, "preferred_username": "faulty-user", "typ": "ID"},
		TokenExtra:    map[string]any{"refresh_expires_in": 0, "not-before-policy": 0, "session_state": "8c4b5a2e-1f3d-4e6a-9b7c-0d1e2f3a4b5c"},
	}
	return NewFaulty(t, o)
}

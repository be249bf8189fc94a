package azure

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Access token versions, the values of the ver claim.
const (
	version1 = "1.0"
	version2 = "2.0"
)

// v1Issuers are the token services that issue v1.0 access tokens, by the
// host of the authority whose v2.0 endpoints the preset uses. The public
// cloud and the US Government cloud share sts.windows.net; the cloud
// operated by 21Vianet has its own. Any other authority (a proxy in front of
// Entra, an emulation) is taken to be the public cloud's.
var v1Issuers = map[string]string{
	"login.chinacloudapi.cn":           "https://sts.chinacloudapi.cn",
	"login.partner.microsoftonline.cn": "https://sts.chinacloudapi.cn",
}

// defaultV1Issuer is the v1.0 token service of the public cloud.
const defaultV1Issuer = "https://sts.windows.net"

// accessTokens is Entra's access token policy. The API's app registration
// decides which version of access token Entra issues for it, whatever
// endpoint the client uses (the manifest's accessTokenAcceptedVersion, or
// requestedAccessTokenVersion in the Microsoft Graph format: 2 for v2.0
// tokens; 1 or null, the default, for v1.0 tokens). The two documented
// shapes differ in issuer and audience:
//
//	ver "2.0": iss {authority}/{tenant}/v2.0, aud the API's application (client) ID
//	ver "1.0": iss https://sts.windows.net/{tenant}/, aud the API's Application ID URI
//
// A token is accepted when it is exactly one of them, for the configured
// tenant (the token's own tid under a multi-tenant authority, as for ID
// tokens); anything in between, such as a v2.0 issuer with ver "1.0" or a
// v1.0 token naming the client ID, is refused. The keys are the tenant's
// JWKS in both cases: Entra signs both versions with the same keys.
type accessTokens struct {
	// audience is the aud of v2.0 tokens: AUDIENCE, or the client ID.
	audience string
	// identifier is the aud of v1.0 tokens: the Application ID URI that
	// the upstream scopes are prefixed with, so the one Entra names.
	identifier string
}

// accept judges the claims of an access token whose signature verified
// against the IdP's keys; issuer is the discovery issuer,
// {authority}/{tenant or {tenantid}}/v2.0.
func (a accessTokens) accept(issuer string, claims map[string]any) error {
	authority, tenant, ok := splitIssuer(issuer)
	if !ok {
		return fmt.Errorf("discovery issuer %q is not of the form {authority}/{tenant}/v2.0", issuer)
	}
	if tenant == tenantPlaceholder {
		// A multi-tenant authority: the token names its tenant, and its
		// iss must then name the same one.
		tid, _ := claims["tid"].(string)
		if !isTenantGUID(tid) {
			return errors.New("a token of a multi-tenant authority has no tenant id (tid) to check its issuer against")
		}
		tenant = tid
	}
	iss, _ := claims["iss"].(string)
	ver, _ := claims["ver"].(string)
	var wantIssuer, wantAudience string
	switch ver {
	case version2:
		wantIssuer, wantAudience = authority+"/"+tenant+v2Suffix, a.audience
	case version1:
		wantIssuer, wantAudience = v1Issuer(authority)+"/"+tenant+"/", a.identifier
	default:
		return fmt.Errorf("version (ver) %q is neither %s nor %s", truncate(ver), version1, version2)
	}
	if iss != wantIssuer {
		return fmt.Errorf("a version %s token issued by %q, not %q", ver, truncate(iss), wantIssuer)
	}
	if aud := audiences(claims["aud"]); !slices.Contains(aud, wantAudience) {
		return fmt.Errorf("a version %s token for the audience %q, not %q", ver, aud, wantAudience)
	}
	return nil
}

// v1Issuer returns the base of the v1.0 issuers that go with authority.
func v1Issuer(authority string) string {
	if u, err := url.Parse(authority); err == nil {
		if sts, ok := v1Issuers[strings.ToLower(u.Hostname())]; ok {
			return sts
		}
	}
	return defaultV1Issuer
}

// audiences reads an aud claim: one string, or an array of strings.
func audiences(v any) []string {
	switch t := v.(type) {
	case string:
		return []string{t}
	case []any:
		out := make([]string, 0, len(t))
		for _, e := range t {
			if s, ok := e.(string); ok {
				out = append(out, truncate(s))
			}
		}
		return out
	}
	return nil
}

// truncate shortens a claim before it enters an error (and so a log line):
// the token came from the IdP, but its size is not ours to trust.
func truncate(s string) string {
	const n = 200
	if len(s) > n {
		return strings.ToValidUTF8(s[:n], "") + "…"
	}
	return s
}

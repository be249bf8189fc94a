package azure

import (
	"strings"
)

// tenantPlaceholder is the tenant segment of the issuer that Entra's
// multi-tenant discovery documents publish.
const tenantPlaceholder = "{tenantid}"

// v2Suffix ends every v2.0 issuer: {authority}/{tenant}/v2.0.
const v2Suffix = "/v2.0"

// issuers is Entra's oidc.IssuerPolicy: the tenant segment of the issuer
// may differ from the configured one in discovery, and may be a template
// that each token fills with its tid.
type issuers struct{}

// AcceptDiscovery accepts a discovery issuer that differs from the
// configured one in the tenant segment alone: the {tenantid} template for
// common, organizations and consumers, a GUID for a tenant named by domain
// (and for consumers, whose issuer is the Microsoft account tenant's).
// Authority and the /v2.0 suffix must be the same. A tenant configured by
// GUID accepts nothing else, so a single-tenant setup can never be widened
// to every tenant by its discovery document.
func (issuers) AcceptDiscovery(configured, discovered string) bool {
	cAuthority, configuredTenant, ok1 := splitIssuer(configured)
	dAuthority, tenant, ok2 := splitIssuer(discovered)
	if !ok1 || !ok2 || cAuthority != dAuthority {
		return false
	}
	if tenant == tenantPlaceholder {
		return multiTenant(configuredTenant)
	}
	return isTenantGUID(tenant) && !isTenantGUID(configuredTenant)
}

// multiTenant reports whether tenant is one of Entra's multi-tenant names.
func multiTenant(tenant string) bool {
	switch strings.ToLower(tenant) {
	case "common", "organizations", "consumers":
		return true
	}
	return false
}

// AcceptToken accepts a token of a multi-tenant issuer when its iss is the
// template filled with its own tid (never the template itself). A
// tenant-specific issuer accepts only itself.
func (issuers) AcceptToken(issuer string, claims map[string]any) bool {
	iss, _ := claims["iss"].(string)
	if !strings.Contains(issuer, tenantPlaceholder) {
		return iss == issuer
	}
	tid, _ := claims["tid"].(string)
	return isTenantGUID(tid) && iss == strings.Replace(issuer, tenantPlaceholder, tid, 1)
}

// splitIssuer splits {authority}/{tenant}/v2.0 into authority and tenant.
func splitIssuer(issuer string) (authority, tenant string, ok bool) {
	rest, ok := strings.CutSuffix(issuer, v2Suffix)
	if !ok {
		return "", "", false
	}
	i := strings.LastIndex(rest, "/")
	if i < 0 || !strings.Contains(rest[:i], "://") {
		return "", "", false
	}
	return rest[:i], rest[i+1:], rest[i+1:] != ""
}

// isTenantGUID reports whether s has the form of a tenant id, a GUID such
// as 72f988bf-86f1-41af-91ab-2d7cd011db47; tid is always one.
func isTenantGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
				return false
			}
		}
	}
	return true
}

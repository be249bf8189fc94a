// Package azure is the Microsoft Entra ID (Azure AD) preset of the generic
// OpenID Connect provider, for the v2.0 endpoints.
//
// Its own settings are Config: the tenant, the authority and the API's
// Application ID URI. Discovery is
// {authority}/{tenant}/v2.0/.well-known/openid-configuration, with the
// authority https://login.microsoftonline.com unless Config.Authority names
// a sovereign cloud, and the shared Settings.ConfigURL overriding both.
// What Entra does differently, and what the preset does about it:
//
//   - The tenants common, organizations and consumers publish the issuer
//     https://login.microsoftonline.com/{tenantid}/v2.0, a template: a
//     token is accepted when its iss is that template filled with the
//     token's own tid claim. A tenant named by domain answers with its GUID
//     issuer, which is accepted for the same authority.
//   - Custom scopes belong to an API and must be sent as
//     {identifier URI}/{scope}, api://{client id}/mcp.read by default
//     (Config.IdentifierURI). The preset adds the prefix on the way out and
//     removes it from what comes back (the token response's scope), so
//     clients, REQUIRED_SCOPES and the scp claim all use the short form.
//     The OpenID scopes (openid, profile, email, offline_access) are never
//     prefixed.
//   - One token is for one resource: scopes of two resources in one request
//     fail with AADSTS28000. The preset sends the OpenID scopes and the
//     API's scopes only, and drops any scope that names another resource
//     (such as https://graph.microsoft.com/User.Read); such a scope in
//     REQUIRED_SCOPES fails validation.
//   - Without an API scope Entra issues a Microsoft Graph token that only
//     Graph can verify, so REQUIRED_SCOPES must name at least one scope of
//     the API; the access token is then verified: signature (the tenant's
//     JWKS), issuer, audience and the scp claim.
//   - The API's app registration, not the endpoint, decides the version of
//     its access tokens (accessTokenAcceptedVersion in the manifest: null,
//     the default, or 1 for v1.0; 2 for v2.0), and the two versions differ
//     in issuer and audience. Both documented shapes are accepted, each
//     whole: ver "2.0" with the v2.0 issuer of the tenant and aud = the
//     API's client ID (Settings.Audience when set), or ver "1.0" with
//     https://sts.windows.net/{tenant}/ (sts.chinacloudapi.cn in the cloud
//     operated by 21Vianet) and aud = the Application ID URI. Anything else
//     is refused (see accessTokens).
//   - The RFC 8707 resource parameter is never sent, even with
//     Settings.ForwardResource: Entra rejects it next to v2.0 scopes
//     (AADSTS9010010).
package azure

package oidc

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/domain/policy"
	"github.com/oidcproxy/oidcproxy/ports"
)

// maxDescriptionEcho bounds the IdP's error_description kept, in private
// causes only.
const maxDescriptionEcho = 200

// protocolClaims are ID-token claims that describe the token rather than the
// user; they are checked, not kept.
var protocolClaims = []string{
	"iss", "sub", "aud", "exp", "iat", "nbf", "nonce", "at_hash", "c_hash", "azp",
	"jti", "email", "email_verified", "name", "_claim_names", "_claim_sources",
}

// Exchange redeems the upstream authorization code with our PKCE verifier
// (and ExtraTokenParams), verifies the ID token — signature with the
// algorithms from discovery, issuer, audience = client id, expiry, the nonce
// in constant time, azp and at_hash when present — and, when Audience,
// Algorithm or RequiredScopes are set, the upstream access token.
//
// Every failure is a *domain.Error: access_denied when the IdP refuses or
// its answer cannot be verified (an OAuth error at the callback cannot be
// invalid_grant, which is not an authorization-response code),
// temporarily_unavailable when the IdP cannot be reached or fails.
func (p *Provider) Exchange(ctx context.Context, req ports.ExchangeRequest) (domain.Identity, domain.UpstreamTokens, error) {
	responseIssuer, err := p.checkResponseIssuer(req.Issuer)
	if err != nil {
		return domain.Identity{}, domain.UpstreamTokens{}, err
	}
	opts := make([]oauth2.AuthCodeOption, 0, len(p.settings.ExtraTokenParams)+1)
	for k, v := range p.settings.ExtraTokenParams {
		opts = append(opts, oauth2.SetAuthURLParam(k, v))
	}
	opts = append(opts, oauth2.VerifierOption(req.Verifier))
	tctx, cancel := p.upstreamContext(ctx)
	tok, err := p.oauth.Exchange(tctx, req.Code, opts...)
	cancel()
	if err != nil {
		return domain.Identity{}, domain.UpstreamTokens{}, tokenError("exchange code", err,
			domain.ErrAccessDenied("identity provider refused the authorization code"))
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return domain.Identity{}, domain.UpstreamTokens{}, domain.ErrAccessDenied("identity provider returned no ID token").
			WithCause(errors.New("oidc: exchange code: token response has no id_token"))
	}
	idToken, err := p.verifyIDToken(ctx, rawID, tok.AccessToken)
	if err != nil {
		return domain.Identity{}, domain.UpstreamTokens{}, err
	}
	if subtle.ConstantTimeCompare([]byte(idToken.Nonce), []byte(req.Nonce)) != 1 || req.Nonce == "" {
		return domain.Identity{}, domain.UpstreamTokens{}, domain.ErrAccessDenied("ID token verification failed").
			WithCause(errors.New("oidc: exchange code: ID token nonce does not match the request"))
	}
	if responseIssuer != "" && idToken.Issuer != responseIssuer {
		return domain.Identity{}, domain.UpstreamTokens{}, domain.ErrAccessDenied("the response came from another identity provider").
			WithCause(errors.New("oidc: RFC 9207 iss parameter does not match the ID token's issuer"))
	}
	scope, _ := tok.Extra("scope").(string)
	scope = p.opts.localScope(scope)
	if err := p.verifyAccessToken(ctx, tok.AccessToken, scope); err != nil {
		return domain.Identity{}, domain.UpstreamTokens{}, err
	}
	identity, err := p.identity(ctx, idToken, tok)
	if err != nil {
		return domain.Identity{}, domain.UpstreamTokens{}, err
	}
	return identity, upstreamTokens(tok, rawID, scope), nil
}

// identity builds the identity a verified ID token names: its subject,
// email and name, its small scalar claims, the group claims the access
// policy reads, and, when the ID token has no email or UserinfoClaims is
// set, what the userinfo endpoint adds.
func (p *Provider) identity(ctx context.Context, idToken *gooidc.IDToken, tok *oauth2.Token) (domain.Identity, error) {
	var all map[string]any
	if err := idToken.Claims(&all); err != nil {
		return domain.Identity{}, verificationError("ID token", err)
	}
	id := identityFrom(idToken.Subject, idToken.Issuer, all)
	groups := p.groupClaims()
	if err := keepGroupClaims(&id, groups, all); err != nil {
		return domain.Identity{}, err
	}
	if id.Email == "" || p.settings.UserinfoClaims {
		if err := p.addUserInfo(ctx, tok, &id, groups); err != nil {
			return domain.Identity{}, err
		}
	}
	return id, nil
}

// groupClaims are the claims the access policy in force reads groups or
// roles from; none without a policy.
func (p *Provider) groupClaims() []policy.ClaimPath {
	if p.settings.Policy == nil {
		return nil
	}
	return p.settings.Policy.Policy().GroupClaims()
}

// keepGroupClaims copies each group claim of all that id does not hold
// yet into id.Claims. A claim too large to keep whole refuses the
// identity: the error names the claim, never its values.
func keepGroupClaims(id *domain.Identity, groups []policy.ClaimPath, all map[string]any) error {
	for _, g := range groups {
		if _, held := g.Lookup(id.Claims); held {
			continue
		}
		if id.Claims == nil {
			id.Claims = make(map[string]any)
		}
		if err := g.Keep(id.Claims, all); err != nil {
			return domain.ErrAccessDenied("the identity provider's account details cannot be used here").
				WithCause(fmt.Errorf("oidc: %w", err))
		}
	}
	if len(id.Claims) == 0 {
		id.Claims = nil
	}
	return nil
}

// checkResponseIssuer applies RFC 9207 before the code is redeemed: an iss
// parameter, when present, must be this IdP's issuer, and it must be present
// when the IdP advertises it. This stops mix-up attacks in deployments that
// share a browser with other authorization servers.
//
// With an issuer policy the discovery issuer may be a template that no
// response names verbatim; the iss is then returned, to be compared with
// the verified ID token's issuer (which the policy judges) once the code
// is redeemed.
func (p *Provider) checkResponseIssuer(iss string) (string, error) {
	if iss == "" {
		if p.doc.AuthorizationResponseISS {
			return "", domain.ErrAccessDenied("the identity provider's response is missing its issuer").
				WithCause(errors.New("oidc: RFC 9207 iss parameter missing although advertised"))
		}
		return "", nil
	}
	if p.opts.issuer != nil {
		return iss, nil
	}
	if subtle.ConstantTimeCompare([]byte(iss), []byte(p.issuer)) == 1 {
		return "", nil
	}
	return "", domain.ErrAccessDenied("the response came from another identity provider").
		WithCause(errors.New("oidc: RFC 9207 iss parameter does not match the issuer"))
}

// addUserInfo completes an identity from the userinfo endpoint: its email
// when the ID token had none, as IdPs that follow OpenID Connect Core 5.4
// strictly (zitadel, Okta) put profile and email claims there and not in
// the ID token, its small scalar claims, and, with UserinfoClaims, the
// group claims the ID token lacks. The answer must be about the same
// subject (Core 5.3.2). Claims the ID token already has are kept.
//
// An unreachable endpoint is temporarily_unavailable. A refusal leaves the
// identity as the ID token says, because some IdPs issue access tokens
// their own userinfo endpoint does not accept (Azure with a custom API
// scope) — unless the operator set UserinfoClaims: the groups must then
// come from there, so a refusal refuses the identity (access_denied) and
// a failing endpoint (5xx, 429) is temporarily_unavailable, rather than
// an identity whose groups silently went missing.
func (p *Provider) addUserInfo(ctx context.Context, tok *oauth2.Token, id *domain.Identity, groups []policy.ClaimPath) error {
	if p.provider.UserInfoEndpoint() == "" {
		return nil
	}
	ctx, cancel := p.upstreamContext(ctx)
	defer cancel()
	status := &statusRecorder{}
	info, err := p.provider.UserInfo(status.context(ctx, p.client), oauth2.StaticTokenSource(tok))
	if err != nil {
		// go-oidc's error quotes the answer's body: only its status is
		// kept for the log.
		code := status.code.Load()
		switch {
		case isTimeout(err) || isTransport(err):
			return domain.ErrTemporarilyUnavailable("identity provider unavailable", fmt.Errorf("oidc: userinfo: %w", err))
		case !p.settings.UserinfoClaims:
			return nil
		case code >= 500 || code == http.StatusTooManyRequests:
			return domain.ErrTemporarilyUnavailable("identity provider unavailable", fmt.Errorf("oidc: userinfo answered HTTP %d", code))
		default:
			return verificationError("userinfo", fmt.Errorf("answered HTTP %d, and USERINFO_CLAIMS needs its claims", code))
		}
	}
	if info.Subject != id.Subject {
		return verificationError("userinfo", errors.New("userinfo names another subject"))
	}
	var all map[string]any
	if err := info.Claims(&all); err != nil {
		return verificationError("userinfo", err)
	}
	if id.Email == "" {
		id.Email, id.EmailVerified = info.Email, info.EmailVerified
	}
	if id.Name == "" {
		id.Name, _ = all["name"].(string)
	}
	domain.KeepScalarClaims(id, all, protocolClaims)
	if !p.settings.UserinfoClaims {
		return nil
	}
	return keepGroupClaims(id, groups, all)
}

// statusRecorder notes the status of the responses to the requests made
// with its context, which go-oidc's userinfo error does not expose apart
// from the body.
type statusRecorder struct {
	base http.RoundTripper
	code atomic.Int32
}

// context routes the requests made with ctx through client's transport
// and the recorder.
func (r *statusRecorder) context(ctx context.Context, client *http.Client) context.Context {
	c := *client
	r.base = c.Transport
	if r.base == nil {
		r.base = http.DefaultTransport
	}
	c.Transport = r
	return gooidc.ClientContext(ctx, &c)
}

// RoundTrip implements http.RoundTripper.
func (r *statusRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	if err == nil {
		r.code.Store(int32(resp.StatusCode))
	}
	return resp, err
}

// Refresh exchanges the upstream refresh token for new tokens. An IdP
// refusal is invalid_grant. When the IdP does not rotate, the old refresh
// token is kept; when it sends no new ID token, the old one is kept. A new ID
// token is verified like at login, without a nonce (OpenID Connect Core
// 12.2), and must name the same subject as the old one; the identity it
// names is built as at sign-in and returned, so that the grant carries the
// user's current groups. When only the userinfo part of that identity
// cannot be had right now (the endpoint is unreachable), the refresh still
// succeeds without an identity: the IdP has already spent the old refresh
// token, so failing here would end the session for a passing outage.
func (p *Provider) Refresh(ctx context.Context, current domain.UpstreamTokens) (ports.Refreshed, error) {
	if current.RefreshToken == "" {
		return ports.Refreshed{}, domain.ErrInvalidGrant("no upstream refresh token").
			WithCause(errors.New("oidc: refresh: the grant holds no upstream refresh token"))
	}
	// An empty access token makes the source refresh at once.
	tctx, cancel := p.upstreamContext(ctx)
	tok, err := p.oauth.TokenSource(tctx, &oauth2.Token{RefreshToken: current.RefreshToken}).Token()
	cancel()
	if err != nil {
		return ports.Refreshed{}, tokenError("refresh", err,
			domain.ErrInvalidGrant("identity provider refused the refresh token"))
	}
	scope, _ := tok.Extra("scope").(string)
	scope = p.opts.localScope(scope)
	if scope == "" {
		scope = current.Scope
	}
	var idToken *gooidc.IDToken
	rawID, _ := tok.Extra("id_token").(string)
	if rawID != "" {
		if idToken, err = p.verifyIDToken(ctx, rawID, tok.AccessToken); err != nil {
			return ports.Refreshed{}, asInvalidGrant(err)
		}
		if old := subjectOf(current.IDToken); old != "" && old != idToken.Subject {
			return ports.Refreshed{}, domain.ErrInvalidGrant("identity provider changed the subject").
				WithCause(errors.New("oidc: refresh: refreshed ID token names another subject"))
		}
	} else {
		rawID = current.IDToken
	}
	if err := p.verifyAccessToken(ctx, tok.AccessToken, scope); err != nil {
		return ports.Refreshed{}, asInvalidGrant(err)
	}
	out := ports.Refreshed{Tokens: upstreamTokens(tok, rawID, scope)}
	if out.Tokens.RefreshToken == "" {
		out.Tokens.RefreshToken = current.RefreshToken
	}
	if idToken != nil {
		id, err := p.identity(ctx, idToken, tok)
		switch {
		case err == nil:
			out.Identity = &id
		case domain.CodeOf(err) != domain.CodeTemporarilyUnavailable:
			return ports.Refreshed{}, asInvalidGrant(err)
		}
	}
	return out, nil
}

// upstreamContext bounds one upstream call by the timeout and routes every
// HTTP request made with it (x/oauth2 and go-oidc read the same context key)
// through the injected client.
func (p *Provider) upstreamContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(gooidc.ClientContext(ctx, p.client), p.settings.Timeout)
}

// verifyIDToken checks signature, issuer, audience, expiry, azp and at_hash,
// then the preset's ID token check.
func (p *Provider) verifyIDToken(ctx context.Context, raw, accessToken string) (*gooidc.IDToken, error) {
	ctx, cancel := p.upstreamContext(ctx) // for a JWKS fetch on an unknown kid
	defer cancel()
	idToken, err := verify(ctx, p.idTokens, "ID token", raw)
	if err != nil {
		return nil, err
	}
	if err := p.checkIssuer(idToken.Issuer, idToken.Claims); err != nil {
		return nil, verificationError("ID token", err)
	}
	var extra struct {
		AZP string `json:"azp"`
	}
	if err := idToken.Claims(&extra); err != nil {
		return nil, verificationError("ID token", err)
	}
	// OpenID Connect Core 3.1.3.7: when azp is present it must be us, or the
	// token was issued to another client that merely lists us as audience.
	// (An absent azp with several audiences is only a SHOULD there, and
	// real IdPs send it, so it is not refused.)
	if extra.AZP != "" && extra.AZP != p.settings.ClientID {
		return nil, verificationError("ID token", errors.New("azp names another client"))
	}
	if idToken.AccessTokenHash != "" {
		if err := idToken.VerifyAccessToken(accessToken); err != nil {
			return nil, verificationError("ID token", err)
		}
	}
	if idToken.Subject == "" {
		return nil, verificationError("ID token", errors.New("no subject"))
	}
	if p.opts.idCheck != nil {
		var all map[string]any
		if err := idToken.Claims(&all); err != nil {
			return nil, verificationError("ID token", err)
		}
		if err := p.opts.idCheck(all); err != nil {
			return nil, verificationError("ID token", err)
		}
	}
	return idToken, nil
}

// verifyAccessToken enforces Audience, Algorithm and RequiredScopes on the
// upstream access token. With Audience or Algorithm set, or an access token
// policy (which then judges issuer and audience in place of Audience), the
// token must be a JWT that verifies against the IdP's JWKS. With only RequiredScopes, a JWT
// is verified and its scope/scp claim checked; an opaque token cannot be, so
// the token response's scope is checked instead when the IdP sent one (RFC
// 6749 5.1: an absent scope means the requested one was granted). With
// WithOpaqueAccessTokens every token is treated as opaque. responseScope
// and the claims are compared in their local forms.
func (p *Provider) verifyAccessToken(ctx context.Context, raw, responseScope string) error {
	if !p.checksAccessToken() {
		return nil
	}
	s := p.settings
	// A JWS in compact form has exactly three parts; anything else (opaque
	// strings, JWE) cannot be verified with the IdP's signing keys.
	if p.accessJWT == nil || strings.Count(raw, ".") != 2 {
		if s.Audience != "" || s.Algorithm != "" || p.opts.accessPolicy != nil {
			return verificationError("access token", errors.New("access token is not a JWT"))
		}
		if responseScope != "" {
			if missing := missingScopes(s.RequiredScopes, strings.Fields(responseScope)); len(missing) > 0 {
				return verificationError("access token", fmt.Errorf("granted scope lacks %v", missing))
			}
		}
		return nil
	}
	ctx, cancel := p.upstreamContext(ctx)
	defer cancel()
	at, err := verify(ctx, p.accessJWT, "access token", raw)
	if err != nil {
		return err
	}
	if p.opts.accessPolicy != nil {
		var all map[string]any
		if err := at.Claims(&all); err != nil {
			return verificationError("access token", err)
		}
		if err := p.opts.accessPolicy(p.issuer, all); err != nil {
			return verificationError("access token", err)
		}
	} else {
		if err := p.checkIssuer(at.Issuer, at.Claims); err != nil {
			return verificationError("access token", err)
		}
		if s.Audience != "" && !slices.Contains(at.Audience, s.Audience) {
			return verificationError("access token", fmt.Errorf("audience %q not in %q", s.Audience, at.Audience))
		}
	}
	if len(s.RequiredScopes) > 0 {
		var claims struct {
			Scope any `json:"scope"`
			SCP   any `json:"scp"`
		}
		if err := at.Claims(&claims); err != nil {
			return verificationError("access token", err)
		}
		granted := p.opts.localScopes(append(scopeList(claims.Scope), scopeList(claims.SCP)...))
		if missing := missingScopes(s.RequiredScopes, granted); len(missing) > 0 {
			return verificationError("access token", fmt.Errorf("scope lacks %v", missing))
		}
	}
	return nil
}

// scopeList reads a scope claim: a space-separated string (RFC 9068) or an
// array of strings (Okta, Azure's scp in some forms).
func scopeList(v any) []string {
	switch t := v.(type) {
	case string:
		return strings.Fields(t)
	case []any:
		var out []string
		for _, e := range t {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func missingScopes(required, granted []string) []string {
	var missing []string
	for _, r := range required {
		if !slices.Contains(granted, r) {
			missing = append(missing, r)
		}
	}
	return missing
}

// identityFrom maps the claims of a verified ID token to a domain.Identity.
func identityFrom(subject, issuer string, all map[string]any) domain.Identity {
	id := domain.Identity{Subject: subject, Issuer: issuer}
	id.Email, _ = all["email"].(string)
	id.Name, _ = all["name"].(string)
	switch v := all["email_verified"].(type) {
	case bool:
		id.EmailVerified = v
	case string: // AWS Cognito and others send "true"
		id.EmailVerified = v == "true"
	}
	domain.KeepScalarClaims(&id, all, protocolClaims)
	return id
}

// subjectOf returns the sub of an ID token oidcproxy verified earlier (it
// comes from our own sealed store), or "" if it cannot be read.
func subjectOf(raw string) string {
	if raw == "" {
		return ""
	}
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{
		jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.ES512,
		jose.PS256, jose.PS384, jose.PS512, jose.EdDSA,
	})
	if err != nil {
		return ""
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &claims); err != nil {
		return ""
	}
	return claims.Sub
}

func upstreamTokens(tok *oauth2.Token, idToken, scope string) domain.UpstreamTokens {
	return domain.UpstreamTokens{
		AccessToken:  tok.AccessToken,
		TokenType:    tok.TokenType,
		RefreshToken: tok.RefreshToken,
		IDToken:      idToken,
		Expiry:       tok.Expiry, // zero when the IdP sent no expires_in
		Scope:        scope,
	}
}

// verificationError reports an upstream answer that failed verification.
// The cause names what failed; go-oidc's messages carry no token material.
func verificationError(what string, cause error) *domain.Error {
	return domain.ErrAccessDenied(what + " verification failed").
		WithCause(fmt.Errorf("oidc: verify %s: %w", what, cause))
}

// asInvalidGrant turns a verification failure during refresh into
// invalid_grant, the code /token can report for a refresh.
func asInvalidGrant(err error) error {
	if e, ok := domain.AsError(err); ok && e.Code == domain.CodeAccessDenied {
		return &domain.Error{Code: domain.CodeInvalidGrant, Description: e.Description, Err: e.Err}
	}
	return err
}

// tokenError maps a token endpoint failure to a domain error. Unreachable,
// timed out, 5xx, 429 and the IdP's own temporarily_unavailable/server_error
// are temporarily_unavailable; any other OAuth error is refusal. The IdP's
// error code and (shortened) description go into the private cause only;
// x/oauth2's own error text is not kept because it can quote the raw body.
func tokenError(op string, err error, refusal *domain.Error) *domain.Error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		cause := fmt.Errorf("oidc: %s: token endpoint answered HTTP %d, error %q, description %q",
			op, status, truncate(re.ErrorCode, 64), truncate(re.ErrorDescription, maxDescriptionEcho))
		switch {
		case status >= 500, status == http.StatusTooManyRequests,
			re.ErrorCode == "temporarily_unavailable", re.ErrorCode == "server_error":
			return domain.ErrTemporarilyUnavailable("identity provider unavailable", cause)
		case re.ErrorCode == "" && status >= 200 && status < 300:
			return domain.ErrAccessDenied("identity provider returned an invalid token response").WithCause(cause)
		}
		return refusal.WithCause(cause)
	}
	if isTimeout(err) || errors.Is(err, context.Canceled) || isTransport(err) {
		return domain.ErrTemporarilyUnavailable("identity provider unavailable", fmt.Errorf("oidc: %s: %w", op, err))
	}
	// x/oauth2 could not use a 2xx answer (no access_token, bad JSON).
	return domain.ErrAccessDenied("identity provider returned an invalid token response").
		WithCause(fmt.Errorf("oidc: %s: %w", op, err))
}

// isTransport reports whether err came from the HTTP round trip itself
// (connection refused or reset, TLS, a body cut short).
func isTransport(err error) bool {
	var ue *url.Error
	return errors.As(err, &ue)
}

// truncate shortens IdP-supplied text before it enters a log line.
func truncate(s string, n int) string {
	if len(s) > n {
		return strings.ToValidUTF8(s[:n], "") + "…"
	}
	return s
}

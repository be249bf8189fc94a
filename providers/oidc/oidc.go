package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// Name is the registry name of the generic provider.
const Name = "oidc"

// DefaultTimeout bounds each upstream call when Settings.Timeout is zero, so
// that a silent IdP can never hang start-up or a login.
const DefaultTimeout = 10 * time.Second

// wellKnownSuffix is the path go-oidc appends to an issuer to find its
// discovery document (OpenID Connect Discovery 1.0, section 4).
const wellKnownSuffix = "/.well-known/openid-configuration"

// Token endpoint authentication methods toward the upstream IdP.
const (
	AuthMethodClientSecretBasic = "client_secret_basic"
	AuthMethodClientSecretPost  = "client_secret_post"
	AuthMethodNone              = "none"
)

// Settings are what every provider shares, because every provider is
// OpenID Connect underneath: the client, the callback, discovery, timeouts
// and the access token checks. A preset's own settings (a tenant, a domain)
// live in its own section type, never here; presets derive what their IdP
// fixes (the discovery URL, parameters) and pass the result to New. Settings
// stay a plain value with no behaviour of their own.
type Settings struct {
	// ConfigURL is the discovery document URL; it must end with
	// /.well-known/openid-configuration, and the issuer is the part before
	// it (with or without a trailing slash, as the document says). Presets
	// derive it when it is empty.
	ConfigURL    string
	ClientID     string
	ClientSecret string
	// RedirectURL is oidcproxy's callback, BASE_URL + REDIRECT_PATH, sent
	// byte for byte as the redirect_uri.
	RedirectURL string
	// Strict additionally requires response_types_supported to list "code"
	// and, when code_challenge_methods_supported is present, "S256".
	Strict bool
	// Audience, when set, is the audience the upstream ACCESS token must
	// carry: the access token must then be a JWT signed with a key of the
	// IdP's JWKS.
	Audience string
	// Timeout bounds each upstream call, discovery included; DefaultTimeout
	// when zero.
	Timeout time.Duration
	// Algorithm, when set, is the only JWS algorithm accepted for upstream
	// access tokens; discovery must offer it.
	Algorithm string
	// RequiredScopes are requested upstream and required on the upstream
	// access token when it can be verified (see Provider.Exchange).
	RequiredScopes []string
	// TokenEndpointAuthMethod is client_secret_basic (the default when
	// empty), client_secret_post or none.
	TokenEndpointAuthMethod string
	// ExtraAuthorizeParams are added to the authorization request; they may
	// not name a parameter the protocol owns (state, nonce, PKCE, ...).
	ExtraAuthorizeParams map[string]string
	// ExtraTokenParams are added to the code exchange (not to refreshes);
	// they may not name a parameter the protocol owns.
	ExtraTokenParams map[string]string
	// ForwardResource sends the MCP client's RFC 8707 resource upstream.
	// Off by default: most IdPs reject resources they do not know.
	ForwardResource bool
	// Policy is the access policy in force. At every sign-in, and every
	// refresh that brings a new ID token, the provider asks it which
	// claims carry groups or roles and keeps those with the identity
	// (lists and nested objects, which are otherwise dropped; bounded by
	// policy.ClaimPath.Keep). Asking each time lets a reloaded policy name
	// other claims. Nil keeps only the small scalar claims.
	Policy ports.PolicySource
	// UserinfoClaims asks the userinfo endpoint as well, whenever an
	// identity is built, for the IdPs that put groups or roles there and
	// not in the ID token. What the ID token holds wins; the userinfo
	// answer fills in the claims it lacks.
	UserinfoClaims bool
}

// SettingError is one problem with one setting, found by a provider's
// Validate before any request. Setting is the name the operator sets,
// without the OIDC_PROXY_ prefix (AUDIENCE, AZURE_TENANT_ID): the same name
// as the env tag of the field that holds it, so that the configuration can
// report the problem next to every other one, under that setting.
type SettingError struct {
	Setting string
	// Problem completes a sentence whose subject is the setting ("is
	// required for provider auth0: ..."); it never quotes a secret.
	Problem string
}

func (e *SettingError) Error() string { return e.Setting + " " + e.Problem }

// Config is the generic provider's own settings section. It has no fields:
// the one setting it needs, CONFIG_URL, is shared with the presets (which
// may derive it instead), so it lives in Settings.
type Config struct{}

// Validate requires the discovery URL, which the generic provider cannot
// derive from anything else.
func (Config) Validate(s Settings) error {
	if s.ConfigURL == "" {
		return &SettingError{Setting: "CONFIG_URL", Problem: "is required for provider oidc: the upstream's discovery URL, " +
			"such as https://idp.example.com/.well-known/openid-configuration"}
	}
	return nil
}

// Open validates s and builds the generic provider (see New).
func (c Config) Open(ctx context.Context, s Settings, client *http.Client) (ports.IdentityProvider, error) {
	if err := c.Validate(s); err != nil {
		return nil, fmt.Errorf("oidc: %w", err)
	}
	p, err := New(ctx, s, client)
	if err != nil {
		return nil, err // a nil interface, not a typed nil inside it
	}
	return p, nil
}

// reservedAuthorizeParams are set by AuthCodeURL itself or change how the
// answer comes back. An extra parameter with one of these names could defeat
// CSRF protection (state), replay protection (nonce), PKCE, send the code
// elsewhere (redirect_uri, request objects) or where the callback does not
// read it (response_mode=form_post), so New refuses them. Scopes belong in
// RequiredScopes.
var reservedAuthorizeParams = []string{
	"response_type", "client_id", "redirect_uri", "scope", "state", "nonce",
	"code_challenge", "code_challenge_method", "resource", "request", "request_uri",
	"response_mode",
}

// reservedTokenParams are set by the code exchange itself.
var reservedTokenParams = []string{
	"grant_type", "code", "code_verifier", "redirect_uri", "client_id", "client_secret",
	"client_assertion", "client_assertion_type", "refresh_token",
}

// discoveryDocument holds the discovery fields go-oidc does not expose.
type discoveryDocument struct {
	AuthorizationEndpoint            string   `json:"authorization_endpoint"`
	TokenEndpoint                    string   `json:"token_endpoint"`
	JWKSURI                          string   `json:"jwks_uri"`
	RevocationEndpoint               string   `json:"revocation_endpoint"`
	ResponseTypesSupported           []string `json:"response_types_supported"`
	CodeChallengeMethodsSupported    []string `json:"code_challenge_methods_supported"`
	ScopesSupported                  []string `json:"scopes_supported"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported"`
	AuthorizationResponseISS         bool     `json:"authorization_response_iss_parameter_supported"`
}

// Provider is the generic OpenID Connect provider. It is immutable after New
// and safe for concurrent use.
type Provider struct {
	settings  Settings
	client    *http.Client
	provider  *gooidc.Provider
	doc       discoveryDocument
	issuer    string
	oauth     oauth2.Config
	idTokens  *gooidc.IDTokenVerifier
	accessJWT *gooidc.IDTokenVerifier // nil unless access tokens are checked and may be JWTs
	offline   bool                    // discovery lists offline_access
	opts      options                 // the preset's quirks
}

// Compile-time checks that Provider offers every capability.
var (
	_ ports.IdentityProvider = (*Provider)(nil)
	_ ports.Refresher        = (*Provider)(nil)
	_ ports.Revoker          = (*Provider)(nil)
	_ ports.ReadinessChecker = (*Provider)(nil)
	_ ports.EmailVerifier    = (*Provider)(nil)
)

// New fetches and validates the IdP's discovery document and returns a
// provider. Every upstream call, now and later, goes through client; a copy
// of client that shares its Transport is used, with Timeout set to
// s.Timeout when client has none, so that even go-oidc's background JWKS
// refreshes are bounded. Discovery must answer within s.Timeout. Presets
// pass opts to adapt the provider to their IdP's quirks.
func New(ctx context.Context, s Settings, client *http.Client, opts ...Option) (*Provider, error) {
	if client == nil {
		return nil, errors.New("oidc: new provider: nil http client")
	}
	if s.Timeout <= 0 {
		s.Timeout = DefaultTimeout
	}
	if s.TokenEndpointAuthMethod == "" {
		s.TokenEndpointAuthMethod = AuthMethodClientSecretBasic
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	issuer, err := checkSettings(s)
	if err = errors.Join(err, o.check(s)); err != nil {
		return nil, fmt.Errorf("oidc: new provider: %w", err)
	}
	c := *client
	if c.Timeout == 0 {
		c.Timeout = s.Timeout
	}
	p := &Provider{settings: s, client: &c, opts: o}

	dctx, cancel := context.WithTimeout(gooidc.ClientContext(ctx, p.client), s.Timeout)
	defer cancel()
	provider, err := gooidc.NewProvider(dctx, issuer)
	var mismatch *gooidc.IssuerMismatchError
	switch {
	case !errors.As(err, &mismatch):
	case mismatch.Discovered == issuer+"/":
		// The issuer carries a trailing slash (Auth0 does this); its
		// discovery URL is still the one configured, so fetching again
		// with the slash keeps go-oidc's exact issuer check.
		provider, err = gooidc.NewProvider(dctx, mismatch.Discovered)
	case o.issuer != nil && o.issuer.AcceptDiscovery(issuer, mismatch.Discovered):
		// The preset vouches for this issuer (Entra's {tenantid}
		// template). go-oidc then skips its comparison, so the document
		// fetched this time must name the issuer the policy accepted.
		provider, err = gooidc.NewProvider(gooidc.InsecureIssuerURLContext(dctx, mismatch.Discovered), issuer)
		if err == nil && issuerOf(provider) != mismatch.Discovered {
			err = fmt.Errorf("issuer changed between two fetches to %q", issuerOf(provider))
		}
	}
	if err != nil {
		if isTimeout(err) {
			return nil, fmt.Errorf("oidc: discovery at %s did not answer within %s: %w", s.ConfigURL, s.Timeout, err)
		}
		return nil, fmt.Errorf("oidc: discovery at %s: %w", s.ConfigURL, err)
	}
	if err := provider.Claims(&p.doc); err != nil {
		return nil, fmt.Errorf("oidc: discovery at %s: decode: %w", s.ConfigURL, err)
	}
	if err := checkDiscovery(p.doc, s); err != nil {
		return nil, fmt.Errorf("oidc: discovery at %s: %w", s.ConfigURL, err)
	}
	p.provider = provider
	p.issuer = issuerOf(provider)
	p.offline = slices.Contains(p.doc.ScopesSupported, gooidc.ScopeOfflineAccess)
	p.oauth = oauth2.Config{
		ClientID:     s.ClientID,
		ClientSecret: s.ClientSecret,
		RedirectURL:  s.RedirectURL,
		Endpoint: oauth2.Endpoint{
			AuthURL:   p.doc.AuthorizationEndpoint,
			TokenURL:  p.doc.TokenEndpoint,
			AuthStyle: oauth2.AuthStyleInHeader,
		},
	}
	if s.TokenEndpointAuthMethod != AuthMethodClientSecretBasic {
		p.oauth.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	}
	if s.TokenEndpointAuthMethod == AuthMethodNone {
		// A public client sends client_id in the body and no secret, even
		// if one was configured by mistake.
		p.oauth.ClientSecret = ""
	}
	// One key set for both verifiers; it fetches through the injected
	// client. ID tokens are accepted with the algorithms discovery lists
	// in id_token_signing_alg_values_supported (go-oidc falls back to
	// RS256, the spec's mandatory one, only when the list is absent).
	keys := keySet{remote: gooidc.NewRemoteKeySet(gooidc.ClientContext(context.Background(), p.client), p.doc.JWKSURI)}
	var algs []string
	for _, a := range p.doc.IDTokenSigningAlgValuesSupported {
		if supportedAlgorithm(a) {
			algs = append(algs, a)
		}
	}
	// With an issuer policy go-oidc's exact comparison is replaced by
	// checkIssuer, run on every verified token; an access token policy
	// judges the issuer of access tokens itself.
	skipIssuer := o.issuer != nil
	p.idTokens = gooidc.NewVerifier(p.issuer, keys, &gooidc.Config{ClientID: s.ClientID, SupportedSigningAlgs: algs, SkipIssuerCheck: skipIssuer})
	if p.checksAccessToken() && !o.opaque {
		cfg := &gooidc.Config{SkipClientIDCheck: true, SupportedSigningAlgs: algs, SkipIssuerCheck: skipIssuer || o.accessPolicy != nil}
		if s.Algorithm != "" {
			cfg.SupportedSigningAlgs = []string{s.Algorithm}
		}
		p.accessJWT = gooidc.NewVerifier(p.issuer, keys, cfg)
	}
	return p, nil
}

// checkSettings validates s and returns the issuer its ConfigURL names.
func checkSettings(s Settings) (string, error) {
	var errs []error
	issuer, ok := strings.CutSuffix(s.ConfigURL, wellKnownSuffix)
	u, err := url.Parse(s.ConfigURL)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "":
		errs = append(errs, errors.New("config URL must be an absolute URL"))
	case u.Scheme != "https" && u.Scheme != "http":
		errs = append(errs, errors.New("config URL must use https or http"))
	case !ok || u.RawQuery != "" || u.Fragment != "":
		errs = append(errs, fmt.Errorf("config URL must end with %s", wellKnownSuffix))
	}
	if s.ClientID == "" {
		errs = append(errs, errors.New("client id is required"))
	}
	if r, err := url.Parse(s.RedirectURL); err != nil || !r.IsAbs() || r.Host == "" || r.Fragment != "" {
		errs = append(errs, errors.New("redirect URL must be an absolute URL without fragment"))
	}
	switch s.TokenEndpointAuthMethod {
	case AuthMethodClientSecretBasic, AuthMethodClientSecretPost:
		if s.ClientSecret == "" {
			errs = append(errs, fmt.Errorf("token endpoint auth method %s needs a client secret", s.TokenEndpointAuthMethod))
		}
	case AuthMethodNone:
	default:
		errs = append(errs, fmt.Errorf("unknown token endpoint auth method %q (known: %s, %s, %s)",
			s.TokenEndpointAuthMethod, AuthMethodClientSecretBasic, AuthMethodClientSecretPost, AuthMethodNone))
	}
	if s.Algorithm != "" && !supportedAlgorithm(s.Algorithm) {
		errs = append(errs, fmt.Errorf("algorithm %q is not an asymmetric JWS algorithm", s.Algorithm))
	}
	for k := range s.ExtraAuthorizeParams {
		if slices.Contains(reservedAuthorizeParams, strings.ToLower(k)) {
			errs = append(errs, fmt.Errorf("extra authorize parameter %q is reserved", k))
		}
	}
	for k := range s.ExtraTokenParams {
		if slices.Contains(reservedTokenParams, strings.ToLower(k)) {
			errs = append(errs, fmt.Errorf("extra token parameter %q is reserved", k))
		}
	}
	for _, sc := range s.RequiredScopes {
		if sc == "" || strings.ContainsAny(sc, " \t\r\n\"\\") {
			errs = append(errs, fmt.Errorf("required scope %q is malformed", sc))
		}
	}
	return issuer, errors.Join(errs...)
}

// supportedAlgorithm reports whether alg is an asymmetric JWS algorithm
// go-oidc can verify. "none" and the HMAC family are never acceptable: an
// HMAC key would be the client secret, which the IdP is not the only one
// to know.
func supportedAlgorithm(alg string) bool {
	switch alg {
	case gooidc.RS256, gooidc.RS384, gooidc.RS512, gooidc.ES256, gooidc.ES384, gooidc.ES512,
		gooidc.PS256, gooidc.PS384, gooidc.PS512, gooidc.EdDSA:
		return true
	}
	return false
}

// checkDiscovery validates the discovery document beyond go-oidc's issuer
// check. The three endpoints are required in every mode because nothing
// works without them; Strict adds the lists a conforming IdP must publish.
func checkDiscovery(d discoveryDocument, s Settings) error {
	var errs []error
	for _, e := range []struct{ name, value string }{
		{"authorization_endpoint", d.AuthorizationEndpoint},
		{"token_endpoint", d.TokenEndpoint},
		{"jwks_uri", d.JWKSURI},
	} {
		if u, err := url.Parse(e.value); e.value == "" || err != nil || !u.IsAbs() {
			errs = append(errs, fmt.Errorf("%s is missing or not an absolute URL", e.name))
		}
	}
	if d.RevocationEndpoint != "" {
		if u, err := url.Parse(d.RevocationEndpoint); err != nil || !u.IsAbs() {
			errs = append(errs, errors.New("revocation_endpoint is not an absolute URL"))
		}
	}
	if s.Strict {
		if !slices.Contains(d.ResponseTypesSupported, "code") {
			errs = append(errs, errors.New(`response_types_supported does not list "code" (strict)`))
		}
		if d.CodeChallengeMethodsSupported != nil && !slices.Contains(d.CodeChallengeMethodsSupported, "S256") {
			errs = append(errs, errors.New(`code_challenge_methods_supported does not list "S256" (strict)`))
		}
	}
	if s.Algorithm != "" && d.IDTokenSigningAlgValuesSupported != nil &&
		!slices.Contains(d.IDTokenSigningAlgValuesSupported, s.Algorithm) {
		errs = append(errs, fmt.Errorf("configured algorithm %s is not offered (id_token_signing_alg_values_supported)", s.Algorithm))
	}
	return errors.Join(errs...)
}

// issuerOf returns the issuer go-oidc validated. go-oidc keeps it private,
// but it is the discovery document's issuer, which Claims exposes.
func issuerOf(p *gooidc.Provider) string {
	var v struct {
		Issuer string `json:"issuer"`
	}
	_ = p.Claims(&v) // cannot fail: NewProvider decoded the same bytes
	return v.Issuer
}

// Name returns the registry name, "oidc".
func (p *Provider) Name() string { return Name }

// TrustsEmail reports whether the preset declared that its IdP verifies
// every address it returns (WithVerifiedEmails).
func (p *Provider) TrustsEmail() bool { return p.opts.trustEmail }

// Issuer returns the IdP's issuer as validated by discovery, for the RFC
// 9207 iss check at the callback.
func (p *Provider) Issuer() string { return p.issuer }

// SupportsAuthorizationResponseIssuer reports whether the IdP announced
// authorization_response_iss_parameter_supported (RFC 9207): its callbacks
// then must carry an iss equal to Issuer.
func (p *Provider) SupportsAuthorizationResponseIssuer() bool {
	return p.doc.AuthorizationResponseISS
}

// RevocationEndpoint returns the IdP's RFC 7009 endpoint, or "" when
// discovery names none.
func (p *Provider) RevocationEndpoint() string { return p.doc.RevocationEndpoint }

// Scopes returns the scope list sent upstream for the client's scopes:
// "openid", "offline_access" when the IdP lists it, the required scopes,
// then the client's, without duplicates, mapped by the preset's
// ScopeMapper when it has one.
func (p *Provider) Scopes(requested []string) []string {
	out := []string{gooidc.ScopeOpenID}
	if p.offline {
		out = append(out, gooidc.ScopeOfflineAccess)
	}
	for _, group := range [][]string{p.settings.RequiredScopes, requested} {
		for _, sc := range group {
			if sc != "" && !slices.Contains(out, sc) {
				out = append(out, sc)
			}
		}
	}
	return p.opts.upstreamScopes(out)
}

// AuthCodeURL returns the IdP's authorization URL for req: the code flow
// with our exact redirect URI, state, nonce and S256 PKCE challenge, the
// operator's extra parameters, and the resource only when ForwardResource is
// on. Extra parameters cannot replace the protocol's (New refuses them).
func (p *Provider) AuthCodeURL(req ports.AuthCodeRequest) string {
	opts := make([]oauth2.AuthCodeOption, 0, len(p.settings.ExtraAuthorizeParams)+5)
	for k, v := range p.settings.ExtraAuthorizeParams {
		opts = append(opts, oauth2.SetAuthURLParam(k, v))
	}
	// Protocol parameters come after the extras, so even an extra that slipped
	// past New would be overwritten.
	opts = append(opts,
		oauth2.SetAuthURLParam("scope", strings.Join(p.Scopes(req.Scopes), " ")),
		oauth2.SetAuthURLParam("nonce", req.Nonce),
		oauth2.SetAuthURLParam("code_challenge", req.CodeChallenge),
		oauth2.SetAuthURLParam("code_challenge_method", "S256"),
	)
	if p.settings.ForwardResource && req.Resource != "" {
		opts = append(opts, oauth2.SetAuthURLParam("resource", req.Resource))
	}
	return p.oauth.AuthCodeURL(req.State, opts...)
}

// Ready fetches the IdP's JWKS and reports an error when it cannot be read:
// without keys no login can be verified.
func (p *Provider) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.settings.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.doc.JWKSURI, nil)
	if err != nil {
		return fmt.Errorf("oidc: ready: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("oidc: ready: fetch jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("oidc: ready: fetch jwks: HTTP %d", resp.StatusCode)
	}
	// Only the shape is checked: go-oidc skips key types it does not know,
	// so a strict decode here could fail on a set that verifies fine.
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return fmt.Errorf("oidc: ready: decode jwks: %w", err)
	}
	if len(set.Keys) == 0 {
		return errors.New("oidc: ready: jwks has no keys")
	}
	return nil
}

// keySet is go-oidc's RemoteKeySet, reporting key-fetch failures on the
// side. go-oidc's verifier flattens key-set errors into text, which would
// make an unreachable JWKS look like a bad signature (access_denied) instead
// of an unavailable IdP; so the failure is also stored in the keyFetch that
// the caller put in the context.
type keySet struct{ remote gooidc.KeySet }

// keyFetch receives a key-fetch failure during one verification.
type keyFetch struct{ err error }

type keyFetchKey struct{}

// VerifySignature implements gooidc.KeySet.
func (k keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	payload, err := k.remote.VerifySignature(ctx, jwt)
	// RemoteKeySet wraps a failed fetch ("fetching keys %w") and returns a
	// bare error when the signature matches no key.
	if err != nil && errors.Unwrap(err) != nil {
		if f, ok := ctx.Value(keyFetchKey{}).(*keyFetch); ok {
			f.err = err
		}
	}
	return payload, err
}

// verify runs v with key-fetch failures reported as temporarily_unavailable
// and every other failure as access_denied.
func verify(ctx context.Context, v *gooidc.IDTokenVerifier, what, raw string) (*gooidc.IDToken, error) {
	f := &keyFetch{}
	t, err := v.Verify(context.WithValue(ctx, keyFetchKey{}, f), raw)
	switch {
	case err == nil:
		return t, nil
	case f.err != nil:
		return nil, domain.ErrTemporarilyUnavailable("identity provider unavailable",
			fmt.Errorf("oidc: verify %s: %w", what, f.err))
	}
	return nil, verificationError(what, err)
}

// checksAccessToken reports whether the operator asked for upstream access
// token checks.
func (p *Provider) checksAccessToken() bool {
	s := p.settings
	return s.Audience != "" || s.Algorithm != "" || len(s.RequiredScopes) > 0
}

// isTimeout reports whether err is a deadline or a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

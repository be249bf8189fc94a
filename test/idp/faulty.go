package idp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Key ids in the Faulty IdP's JWKS.
const (
	ECKeyID  = "ec-1"  // ES256, the default signing key
	RSAKeyID = "rsa-1" // RS256, published too, so only algorithm checks reject it
)

// Defaults of FaultyOptions.
const (
	DefaultClientID     = "faulty-client"
	DefaultClientSecret = "faulty-secret-0123456789abcdef-0123456789" // ≥ 32 bytes, so it can key HS256
	DefaultSubject      = "faulty-user"
	DefaultEmail        = "user@faulty.example"
	DefaultName         = "Faulty User"
)

// FaultyOptions fix what a Faulty IdP is; Faults (changeable at run time)
// say how it misbehaves.
type FaultyOptions struct {
	// IssuerPath is appended to the server URL to form the issuer
	// ("/tenant/v2.0" for an Azure-like issuer); every endpoint lives under
	// it. Empty: the issuer is the bare server URL.
	IssuerPath string
	// ClientID and ClientSecret of the one registered client. When a
	// request presents a secret it must match; a request with none is
	// accepted (a public client).
	ClientID, ClientSecret string
	// Subject, Email and Name of the one user.
	Subject, Email, Name string
	// Quirks make the IdP behave like a real one (see emulate.go).
	Quirks Quirks
}

// Quirks make a Faulty IdP behave like one real IdP, the way the
// emulations in emulate.go (NewAuth0, NewGoogle, NewAzure, NewKeycloak)
// configure it. They are fixed when the IdP starts; Faults still apply on
// top of them. The zero value adds no quirk.
type Quirks struct {
	// IssuerTrailingSlash makes the issuer end with "/" (Auth0).
	IssuerTrailingSlash bool
	// TenantID is the tenant of the one user (Microsoft Entra). The first
	// segment of IssuerPath is then the tenant as the client named it;
	// tokens carry tid = TenantID and an iss with TenantID in that
	// segment. Discovery names that issuer too, unless TenantTemplate puts
	// "{tenantid}" there instead, as Entra's common, organizations and
	// consumers endpoints do.
	TenantID       string
	TenantTemplate bool
	// SigningAlgorithm signs ID tokens and JWT access tokens and is the
	// one discovery lists: ES256 (the default) or RS256.
	SigningAlgorithm string
	// Discovery is merged into the discovery document before
	// Faults.DiscoveryExtra (a nil value removes a field).
	Discovery map[string]any
	// Authorize vets an authorization request: a non-empty error code sends
	// the browser back with it and the description instead of a code, the
	// way the IdP refuses scopes or parameters it does not accept.
	Authorize func(query url.Values) (code, description string)
	// RefreshTokenIf, when set, issues refresh tokens only to grants whose
	// authorization request it accepts (offline_access, access_type=offline).
	RefreshTokenIf func(authorize url.Values) bool
	// AccessToken shapes the access token of a grant from its authorization
	// request, its granted scope and the issuer the token will name;
	// Faults.AccessToken, when set, wins.
	AccessToken func(authorize url.Values, scope, issuer string) AccessTokenShape
	// EchoScope turns the granted scope into the scope the token response
	// reports (the IdP's own spelling of it).
	EchoScope func(scope string) string
	// IDTokenClaims are merged into every ID token before Faults apply.
	IDTokenClaims map[string]any
	// TokenExtra is merged into successful token responses before
	// Faults.TokenExtra.
	TokenExtra map[string]any
}

// IDTokenFault selects how the ID token is broken.
type IDTokenFault int

// The ID-token faults. IDTokenValid is the zero value.
const (
	IDTokenValid         IDTokenFault = iota
	IDTokenWrongAudience              // aud is another client
	IDTokenWrongIssuer                // iss is another issuer
	IDTokenWrongNonce                 // nonce differs from the request's
	IDTokenExpired                    // exp an hour ago
	IDTokenBadSignature               // signed by a key that is not in JWKS, with a published kid
	IDTokenAlgNone                    // alg "none", no signature
	IDTokenRS256                      // signed with the published RSA key (discovery says ES256 only)
	IDTokenHS256                      // HMAC-signed with the client secret
	IDTokenForeignAZP                 // azp names another client
	IDTokenWrongAtHash                // at_hash does not match the access token
)

// AccessTokenShape selects the access token the token endpoint issues. The
// zero value is an opaque random string.
type AccessTokenShape struct {
	// Prefix starts an opaque token ("ya29." for Google).
	Prefix string
	// Dotted makes an opaque token exactly three dot-separated parts (the
	// prefix's dot included), shaped like a JWT without being one, to
	// prove that nothing parses it.
	Dotted bool
	// Claims are merged into a JWT's claims (tid, azp, ver).
	Claims map[string]any
	// Unpublished signs a JWT with a key the JWKS does not publish, like a
	// token meant for another resource (a Microsoft Graph token), which
	// only that resource can verify.
	Unpublished bool
	// JWT issues a signed JWT instead of an opaque random string.
	JWT bool
	// Audience is the JWT's aud; nil means the client id.
	Audience []string
	// Scope overrides the JWT's scope claim; empty means the granted scope.
	Scope string
	// ScopeClaim names the claim that carries the scope: "scope" (default)
	// or "scp".
	ScopeClaim string
	// Algorithm signs the JWT: "ES256" (default) or "RS256".
	Algorithm string
	// Issuer overrides the JWT's iss; empty means the IdP's issuer.
	Issuer string
}

// Faults are the misbehaviours of a Faulty IdP. The zero value is a healthy
// IdP: ES256 ID tokens, opaque access tokens, refresh tokens that are not
// rotated, expires_in 3600.
type Faults struct {
	// DiscoveryIssuer replaces the issuer in the discovery document.
	DiscoveryIssuer string
	// DiscoveryHang makes discovery never answer.
	DiscoveryHang bool
	// DiscoveryStatus, when set, answers discovery with that status.
	DiscoveryStatus int
	// DiscoveryExtra is merged into the discovery document; a nil value
	// removes the field.
	DiscoveryExtra map[string]any

	// JWKSHang makes the JWKS endpoint never answer; JWKSStatus, when set,
	// answers it with that status.
	JWKSHang   bool
	JWKSStatus int

	// AuthorizeError sends the browser back with this error (and
	// AuthorizeErrorDescription) instead of a code.
	AuthorizeError            string
	AuthorizeErrorDescription string
	// AuthorizeIssuer adds the RFC 9207 iss parameter to the redirect.
	AuthorizeIssuer bool

	// TokenHang makes the token endpoint never answer.
	TokenHang bool
	// TokenStatus answers the token endpoint with this status: with
	// TokenError as the OAuth error, or server_error when that is empty.
	TokenStatus int
	// TokenError answers the token endpoint with this OAuth error (status
	// 400 unless TokenStatus is set) and TokenErrorDescription.
	TokenError            string
	TokenErrorDescription string

	// IDToken breaks the ID token; IDTokenClaims are merged into its claims
	// (a nil value removes one); OmitIDToken leaves it out of the code
	// exchange, OmitRefreshIDToken out of refreshes.
	IDToken            IDTokenFault
	IDTokenClaims      map[string]any
	OmitIDToken        bool
	OmitRefreshIDToken bool

	// AccessToken shapes the access token.
	AccessToken AccessTokenShape
	// GrantedScope replaces the scope the token response reports.
	GrantedScope string

	// RotateRefreshTokens issues a new refresh token on each refresh and
	// invalidates the old one; otherwise the response has no refresh_token
	// and the old one stays valid.
	RotateRefreshTokens bool
	// OmitRefreshToken issues no refresh token at all.
	OmitRefreshToken bool
	// OmitExpiresIn leaves expires_in out of token responses.
	OmitExpiresIn bool
	// TokenExtra is merged into successful token responses (a nil value
	// removes a field), e.g. Keycloak's refresh_expires_in: 0.
	TokenExtra map[string]any

	// UserInfo, when not nil, makes discovery list a userinfo endpoint that
	// answers with the user's sub, email, email_verified and name merged
	// with these claims (a nil value removes one). UserInfoStatus, when
	// set, answers it with that status instead; UserInfoHang makes it never
	// answer. Set UserInfo before discovery is fetched.
	UserInfo       map[string]any
	UserInfoStatus int
	UserInfoHang   bool

	// RevocationStatus answers the revocation endpoint with this status and
	// the OAuth error RevocationError ("invalid_request" when empty).
	RevocationStatus int
	RevocationError  string
}

// Request is a recorded token or revocation request.
type Request struct {
	Form url.Values
	// AuthMethod is how the client authenticated: client_secret_basic,
	// client_secret_post or none.
	AuthMethod   string
	ClientID     string
	ClientSecret string
}

// Calls counts the requests each endpoint received.
type Calls struct {
	Discovery, JWKS, Authorize, Token, Revocation, UserInfo int
}

// Faulty is a hand-written OpenID provider that misbehaves on demand, for the
// quirks and failures no real IdP produces when asked. Its faults can be
// changed between requests (Update), so one IdP can serve a sequence of
// cases. Keys are generated per IdP; tokens are signed with go-jose.
type Faulty struct {
	// URL is the server's base URL; Issuer is the issuer discovery names,
	// URL + IssuerPath unless Quirks change it; ConfigURL is the discovery
	// document URL, URL + IssuerPath + /.well-known/openid-configuration.
	URL, Issuer, ConfigURL string
	// TokenIssuer is the iss of the tokens it issues and of the RFC 9207
	// iss parameter: Issuer, except under a {tenantid} template.
	TokenIssuer string
	// ClientID, ClientSecret, Subject, Email and Name are the effective
	// options (defaults filled in).
	ClientID, ClientSecret, Subject, Email, Name string

	ec, rogue     *ecdsa.PrivateKey
	rsa, rogueRSA *rsa.PrivateKey
	closed        chan struct{}
	quirks        Quirks
	base          string // the endpoints live under it
	alg           jose.SignatureAlgorithm

	mu            sync.Mutex
	faults        Faults
	codes         map[string]issuedCode
	refresh       map[string]grantInfo // refresh token → its grant
	revoked       map[string]bool
	calls         Calls
	lastAuthorize url.Values
	lastToken     Request
	lastRevoke    Request
	issued        []string
}

type issuedCode struct {
	nonce, challenge, challengeMethod, redirectURI string
	grantInfo
}

// pkceVerifier is the form of an RFC 7636 4.1 code_verifier.
var pkceVerifier = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// pkceMatches is the IdP's own RFC 7636 4.6 check, written here rather
// than borrowed from the proxy, whose PKCE code the tests exercise: the
// verifier must have its form and, transformed by the method of the
// authorization request (S256, or plain when none was named, 4.3), equal
// the challenge.
func pkceMatches(challenge, method, verifier string) bool {
	if challenge == "" || !pkceVerifier.MatchString(verifier) {
		return false
	}
	switch method {
	case "S256":
		sum := sha256.Sum256([]byte(verifier))
		return subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(challenge)) == 1
	case "", "plain":
		return subtle.ConstantTimeCompare([]byte(verifier), []byte(challenge)) == 1
	}
	return false
}

// grantInfo is what a code or refresh token stands for.
type grantInfo struct {
	scope     string
	authorize url.Values // the authorization request it started with
}

// rsaKey and rogueRSAKey are generated once per test binary: RSA generation
// is slow under the race detector, and sharing a test key between IdPs
// changes nothing.
var (
	rsaKey      = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) })
	rogueRSAKey = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) })
)

// NewFaulty starts a Faulty IdP on a random loopback port; it is closed by
// t.Cleanup (hanging requests are released first).
func NewFaulty(t testing.TB, opts FaultyOptions) *Faulty {
	t.Helper()
	f := &Faulty{
		ClientID: opts.ClientID, ClientSecret: opts.ClientSecret,
		Subject: opts.Subject, Email: opts.Email, Name: opts.Name,
		closed:  make(chan struct{}),
		quirks:  opts.Quirks,
		alg:     jose.ES256,
		codes:   map[string]issuedCode{},
		refresh: map[string]grantInfo{},
		revoked: map[string]bool{},
	}
	if opts.Quirks.SigningAlgorithm != "" {
		f.alg = jose.SignatureAlgorithm(opts.Quirks.SigningAlgorithm)
	}
	defaults := []struct {
		v *string
		d string
	}{
		{&f.ClientID, DefaultClientID}, {&f.ClientSecret, DefaultClientSecret},
		{&f.Subject, DefaultSubject}, {&f.Email, DefaultEmail}, {&f.Name, DefaultName},
	}
	for _, d := range defaults {
		if *d.v == "" {
			*d.v = d.d
		}
	}
	var err error
	if f.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatalf("idp: generate key: %v", err)
	}
	if f.rogue, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatalf("idp: generate key: %v", err)
	}
	if f.rsa, err = rsaKey(); err != nil {
		t.Fatalf("idp: generate key: %v", err)
	}
	if f.alg == jose.RS256 {
		if f.rogueRSA, err = rogueRSAKey(); err != nil {
			t.Fatalf("idp: generate key: %v", err)
		}
	}

	path := strings.TrimSuffix(opts.IssuerPath, "/")
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+path+"/.well-known/openid-configuration", f.discovery)
	mux.HandleFunc("GET "+path+"/jwks", f.jwks)
	mux.HandleFunc(path+"/authorize", f.authorize)
	mux.HandleFunc("POST "+path+"/token", f.token)
	mux.HandleFunc("POST "+path+"/revoke", f.revoke)
	mux.HandleFunc(path+"/userinfo", f.userinfo)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		close(f.closed)
		srv.Close()
	})
	f.URL = srv.URL
	f.base = srv.URL + path
	f.Issuer, f.TokenIssuer = f.base, f.base
	if q := opts.Quirks; q.TenantID != "" {
		// The tenant is the first segment of the path: /common/v2.0.
		rest := ""
		if _, after, ok := strings.Cut(strings.TrimPrefix(path, "/"), "/"); ok {
			rest = "/" + after
		}
		f.TokenIssuer = srv.URL + "/" + q.TenantID + rest
		f.Issuer = f.TokenIssuer
		if q.TenantTemplate {
			f.Issuer = srv.URL + "/{tenantid}" + rest
		}
	}
	if opts.Quirks.IssuerTrailingSlash {
		f.Issuer += "/"
		f.TokenIssuer += "/"
	}
	f.ConfigURL = f.base + "/.well-known/openid-configuration"
	return f
}

// Update changes the faults under the lock; fn sees the current ones.
func (f *Faulty) Update(fn func(*Faults)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.faults)
}

// Set replaces all faults.
func (f *Faulty) Set(faults Faults) { f.Update(func(cur *Faults) { *cur = faults }) }

// Faults returns a copy of the current faults.
func (f *Faulty) Faults() Faults {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.copyFaultsLocked()
}

// LastAuthorize returns the query of the last authorization request.
func (f *Faulty) LastAuthorize() url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return cloneValues(f.lastAuthorize)
}

// LastToken returns the last token request.
func (f *Faulty) LastToken() Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.lastToken
	r.Form = cloneValues(r.Form)
	return r
}

// LastRevocation returns the last revocation request.
func (f *Faulty) LastRevocation() Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.lastRevoke
	r.Form = cloneValues(r.Form)
	return r
}

// Calls returns how many requests each endpoint received.
func (f *Faulty) Calls() Calls {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// Revoked reports whether token was revoked at the revocation endpoint.
func (f *Faulty) Revoked(token string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.revoked[token]
}

// Login plays the browser at the authorization endpoint, which answers at
// once with a redirect to the client: it returns that redirect URL. c must
// not follow redirects.
func (f *Faulty) Login(ctx context.Context, c *http.Client, authURL string) (*url.URL, error) {
	return login(ctx, c, authURL, f.URL, "", "")
}

func (f *Faulty) discovery(w http.ResponseWriter, r *http.Request) {
	faults := f.snapshot(func(c *Calls) { c.Discovery++ })
	if faults.DiscoveryHang {
		f.hang(r)
		return
	}
	if faults.DiscoveryStatus != 0 {
		http.Error(w, "discovery failure", faults.DiscoveryStatus)
		return
	}
	doc := map[string]any{
		"issuer":                                f.Issuer,
		"authorization_endpoint":                f.base + "/authorize",
		"token_endpoint":                        f.base + "/token",
		"jwks_uri":                              f.base + "/jwks",
		"revocation_endpoint":                   f.base + "/revoke",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{string(f.alg)},
		"scopes_supported":                      []string{"openid", "email", "profile", "offline_access"},
		"code_challenge_methods_supported":      []string{"S256"},
		"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post", "none"},
	}
	if faults.UserInfo != nil {
		doc["userinfo_endpoint"] = f.base + "/userinfo"
	}
	if faults.DiscoveryIssuer != "" {
		doc["issuer"] = faults.DiscoveryIssuer
	}
	merge(doc, f.quirks.Discovery)
	merge(doc, faults.DiscoveryExtra)
	writeJSON(w, http.StatusOK, doc)
}

func (f *Faulty) jwks(w http.ResponseWriter, r *http.Request) {
	faults := f.snapshot(func(c *Calls) { c.JWKS++ })
	if faults.JWKSHang {
		f.hang(r)
		return
	}
	if faults.JWKSStatus != 0 {
		http.Error(w, "jwks failure", faults.JWKSStatus)
		return
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: f.ec.Public(), KeyID: ECKeyID, Algorithm: string(jose.ES256), Use: "sig"},
		{Key: f.rsa.Public(), KeyID: RSAKeyID, Algorithm: string(jose.RS256), Use: "sig"},
	}}
	writeJSON(w, http.StatusOK, set)
}

func (f *Faulty) authorize(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.calls.Authorize++
	f.lastAuthorize = cloneValues(r.Form)
	faults := f.copyFaultsLocked()
	f.mu.Unlock()

	target, err := url.Parse(r.Form.Get("redirect_uri"))
	if err != nil || !target.IsAbs() || r.Form.Get("client_id") != f.ClientID {
		// Never redirect to an unknown place: an error page, as RFC 6749 4.1.2.1 says.
		http.Error(w, "invalid client or redirect_uri", http.StatusBadRequest)
		return
	}
	q := target.Query()
	errCode, errDescription := faults.AuthorizeError, faults.AuthorizeErrorDescription
	if errCode == "" && f.quirks.Authorize != nil {
		errCode, errDescription = f.quirks.Authorize(cloneValues(r.Form))
	}
	if errCode != "" {
		q.Set("error", errCode)
		if errDescription != "" {
			q.Set("error_description", errDescription)
		}
	} else {
		code := rand.Text()
		f.mu.Lock()
		f.codes[code] = issuedCode{
			nonce:           r.Form.Get("nonce"),
			challenge:       r.Form.Get("code_challenge"),
			challengeMethod: r.Form.Get("code_challenge_method"),
			redirectURI:     r.Form.Get("redirect_uri"),
			grantInfo:       grantInfo{scope: r.Form.Get("scope"), authorize: cloneValues(r.Form)},
		}
		f.mu.Unlock()
		q.Set("code", code)
	}
	if s := r.Form.Get("state"); s != "" {
		q.Set("state", s)
	}
	if faults.AuthorizeIssuer {
		q.Set("iss", f.TokenIssuer)
	}
	target.RawQuery = q.Encode()
	http.Redirect(w, r, target.String(), http.StatusFound)
}

func (f *Faulty) token(w http.ResponseWriter, r *http.Request) {
	req, ok := f.readClientRequest(w, r)
	f.mu.Lock()
	f.calls.Token++
	f.lastToken = req
	faults := f.copyFaultsLocked()
	f.mu.Unlock()
	if !ok {
		return
	}
	switch {
	case faults.TokenHang:
		f.hang(r)
		return
	case faults.TokenError != "" || faults.TokenStatus != 0:
		status, code := faults.TokenStatus, faults.TokenError
		if status == 0 {
			status = http.StatusBadRequest
		}
		if code == "" {
			code = "server_error"
		}
		writeOAuthError(w, status, code, faults.TokenErrorDescription)
		return
	}
	if req.ClientID != f.ClientID || (req.AuthMethod != "none" && req.ClientSecret != f.ClientSecret) {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}

	var (
		grant      grantInfo
		nonce      string
		refreshing bool
	)
	switch req.Form.Get("grant_type") {
	case "authorization_code":
		f.mu.Lock()
		code, found := f.codes[req.Form.Get("code")]
		delete(f.codes, req.Form.Get("code")) // single use
		f.mu.Unlock()
		switch {
		case !found:
			writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "unknown code")
			return
		case code.redirectURI != req.Form.Get("redirect_uri"):
			writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri mismatch")
			return
		case !pkceMatches(code.challenge, code.challengeMethod, req.Form.Get("code_verifier")):
			writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "PKCE verification failed")
			return
		}
		grant, nonce = code.grantInfo, code.nonce
	case "refresh_token":
		old := req.Form.Get("refresh_token")
		f.mu.Lock()
		granted, found := f.refresh[old]
		if found && faults.RotateRefreshTokens {
			delete(f.refresh, old)
		}
		f.mu.Unlock()
		if !found {
			writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "unknown refresh token")
			return
		}
		grant, refreshing = granted, true
	default:
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", "")
		return
	}
	if faults.GrantedScope != "" {
		grant.scope = faults.GrantedScope
	}
	scope := grant.scope

	echo := scope
	if f.quirks.EchoScope != nil && faults.GrantedScope == "" {
		echo = f.quirks.EchoScope(scope)
	}
	resp := map[string]any{"token_type": "Bearer", "scope": echo}
	shape := faults.AccessToken
	if reflect.ValueOf(shape).IsZero() && f.quirks.AccessToken != nil {
		shape = f.quirks.AccessToken(cloneValues(grant.authorize), scope, f.TokenIssuer)
	}
	access, err := f.accessToken(shape, scope)
	if err != nil {
		writeOAuthError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	resp["access_token"] = access
	if !faults.OmitExpiresIn {
		resp["expires_in"] = 3600
	}
	offline := f.quirks.RefreshTokenIf == nil || f.quirks.RefreshTokenIf(cloneValues(grant.authorize))
	if !faults.OmitRefreshToken && offline && (!refreshing || faults.RotateRefreshTokens) {
		rt := rand.Text() + rand.Text()
		f.mu.Lock()
		f.refresh[rt] = grant
		f.mu.Unlock()
		resp["refresh_token"] = rt
	}
	if (!refreshing && !faults.OmitIDToken) || (refreshing && !faults.OmitRefreshIDToken) {
		if refreshing {
			nonce = "" // OpenID Connect Core 12.2: no nonce on refresh
		}
		id, err := f.idToken(faults, nonce, access)
		if err != nil {
			writeOAuthError(w, http.StatusInternalServerError, "server_error", err.Error())
			return
		}
		resp["id_token"] = id
	}
	merge(resp, f.quirks.TokenExtra)
	merge(resp, faults.TokenExtra)
	f.mu.Lock()
	for _, k := range []string{"access_token", "refresh_token", "id_token"} {
		if v, ok := resp[k].(string); ok {
			f.issued = append(f.issued, v)
		}
	}
	f.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, resp)
}

// Issued returns every token the token endpoint has handed out (access,
// refresh and ID tokens), so tests can check none of them leaks.
func (f *Faulty) Issued() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.issued)
}

func (f *Faulty) revoke(w http.ResponseWriter, r *http.Request) {
	req, ok := f.readClientRequest(w, r)
	f.mu.Lock()
	f.calls.Revocation++
	f.lastRevoke = req
	faults := f.copyFaultsLocked()
	f.mu.Unlock()
	if !ok {
		return
	}
	if faults.RevocationStatus != 0 {
		code := faults.RevocationError
		if code == "" {
			code = "invalid_request"
		}
		writeOAuthError(w, faults.RevocationStatus, code, "revocation failure")
		return
	}
	if req.ClientID != f.ClientID || (req.AuthMethod != "none" && req.ClientSecret != f.ClientSecret) {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	token := req.Form.Get("token")
	f.mu.Lock()
	delete(f.refresh, token)
	f.revoked[token] = true
	f.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (f *Faulty) userinfo(w http.ResponseWriter, r *http.Request) {
	faults := f.snapshot(func(c *Calls) { c.UserInfo++ })
	if faults.UserInfo == nil {
		http.NotFound(w, r)
		return
	}
	if faults.UserInfoHang {
		f.hang(r)
		return
	}
	if faults.UserInfoStatus != 0 {
		writeOAuthError(w, faults.UserInfoStatus, "invalid_token", "userinfo failure")
		return
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeOAuthError(w, http.StatusUnauthorized, "invalid_token", "no bearer token")
		return
	}
	claims := map[string]any{"sub": f.Subject, "email": f.Email, "email_verified": true, "name": f.Name}
	for k, v := range faults.UserInfo {
		if v == nil {
			delete(claims, k)
		} else {
			claims[k] = v
		}
	}
	writeJSON(w, http.StatusOK, claims)
}

// readClientRequest parses a form POST and tells how the client
// authenticated.
func (f *Faulty) readClientRequest(w http.ResponseWriter, r *http.Request) (Request, bool) {
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "malformed form")
		return Request{}, false
	}
	req := Request{Form: cloneValues(r.PostForm)}
	if id, secret, ok := r.BasicAuth(); ok {
		// RFC 6749 2.3.1: form-encoded before Basic.
		uid, err1 := url.QueryUnescape(id)
		usecret, err2 := url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "malformed credentials")
			return req, false
		}
		req.AuthMethod, req.ClientID, req.ClientSecret = "client_secret_basic", uid, usecret
	} else if r.PostForm.Has("client_secret") {
		req.AuthMethod, req.ClientID, req.ClientSecret = "client_secret_post", r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	} else {
		req.AuthMethod, req.ClientID = "none", r.PostForm.Get("client_id")
	}
	return req, true
}

func (f *Faulty) accessToken(shape AccessTokenShape, scope string) (string, error) {
	if !shape.JWT {
		prefix := shape.Prefix
		if prefix == "" {
			prefix = "opaque-"
		}
		token := prefix + rand.Text()
		for shape.Dotted && strings.Count(token, ".") < 2 {
			token += "." + rand.Text()
		}
		return token, nil
	}
	now := time.Now()
	claims := map[string]any{
		"iss": f.TokenIssuer, "sub": f.Subject, "client_id": f.ClientID,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": rand.Text(),
	}
	if shape.Issuer != "" {
		claims["iss"] = shape.Issuer
	}
	if shape.Audience != nil {
		claims["aud"] = shape.Audience
	} else {
		claims["aud"] = f.ClientID
	}
	claimName := shape.ScopeClaim
	if claimName == "" {
		claimName = "scope"
	}
	claims[claimName] = scope
	if shape.Scope != "" {
		claims[claimName] = shape.Scope
	}
	merge(claims, shape.Claims)
	alg := jose.SignatureAlgorithm(shape.Algorithm)
	if alg == "" {
		alg = f.alg
	}
	if shape.Unpublished {
		return f.signRogue(claims, alg, "at+jwt")
	}
	return f.sign(claims, alg, "at+jwt")
}

func (f *Faulty) idToken(faults Faults, nonce, accessToken string) (string, error) {
	now := time.Now()
	sum := sha256.Sum256([]byte(accessToken))
	claims := map[string]any{
		"iss": f.TokenIssuer, "sub": f.Subject, "aud": f.ClientID,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"email": f.Email, "email_verified": true, "name": f.Name,
		"at_hash": base64.RawURLEncoding.EncodeToString(sum[:16]),
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	if f.quirks.TenantID != "" {
		claims["tid"] = f.quirks.TenantID
	}
	merge(claims, f.quirks.IDTokenClaims)
	alg := f.alg
	switch faults.IDToken {
	case IDTokenWrongAudience:
		claims["aud"] = "someone-else"
	case IDTokenWrongIssuer:
		claims["iss"] = "https://evil.example"
	case IDTokenWrongNonce:
		claims["nonce"] = "not-the-nonce"
	case IDTokenExpired:
		claims["iat"] = now.Add(-2 * time.Hour).Unix()
		claims["exp"] = now.Add(-time.Hour).Unix()
	case IDTokenRS256:
		alg = jose.RS256
	case IDTokenHS256:
		alg = jose.HS256
	case IDTokenForeignAZP:
		claims["aud"] = []string{f.ClientID, "someone-else"}
		claims["azp"] = "someone-else"
	case IDTokenWrongAtHash:
		claims["at_hash"] = base64.RawURLEncoding.EncodeToString(make([]byte, 16))
	}
	merge(claims, faults.IDTokenClaims)
	switch faults.IDToken {
	case IDTokenAlgNone:
		return unsignedJWT(claims)
	case IDTokenBadSignature:
		return f.signRogue(claims, alg, "JWT")
	}
	return f.sign(claims, alg, "JWT")
}

// signRogue signs with a key the JWKS does not publish, under the kid of
// the published key for alg, so that only the signature check fails.
func (f *Faulty) signRogue(claims map[string]any, alg jose.SignatureAlgorithm, typ string) (string, error) {
	if alg == jose.RS256 && f.rogueRSA != nil {
		return signWith(claims, jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: f.rogueRSA, KeyID: RSAKeyID}}, typ)
	}
	return signWith(claims, jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: f.rogue, KeyID: ECKeyID}}, typ)
}

// merge copies extra into m; a nil value removes the key.
func merge(m, extra map[string]any) {
	for k, v := range extra {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
}

// sign signs claims with the IdP's key for alg (HS256: the client secret).
func (f *Faulty) sign(claims map[string]any, alg jose.SignatureAlgorithm, typ string) (string, error) {
	var key jose.SigningKey
	switch alg {
	case jose.ES256:
		key = jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: f.ec, KeyID: ECKeyID}}
	case jose.RS256:
		key = jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: f.rsa, KeyID: RSAKeyID}}
	case jose.HS256:
		key = jose.SigningKey{Algorithm: alg, Key: []byte(f.ClientSecret)}
	default:
		return "", fmt.Errorf("idp: no key for %s", alg)
	}
	return signWith(claims, key, typ)
}

func signWith(claims map[string]any, key jose.SigningKey, typ string) (string, error) {
	signer, err := jose.NewSigner(key, (&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
	if err != nil {
		return "", fmt.Errorf("idp: signer: %w", err)
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}

// unsignedJWT builds an alg "none" token. go-jose refuses to produce one (as
// it should), so this attack token is assembled by hand: a header, the
// claims, and an empty signature.
func unsignedJWT(claims map[string]any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("idp: unsigned jwt: %w", err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc.EncodeToString(payload) + ".", nil
}

// snapshot counts a call and returns the current faults.
func (f *Faulty) snapshot(count func(*Calls)) Faults {
	f.mu.Lock()
	defer f.mu.Unlock()
	count(&f.calls)
	return f.copyFaultsLocked()
}

// copyFaultsLocked copies the faults, maps included, so that a handler can
// read them after unlocking while a test updates them.
func (f *Faulty) copyFaultsLocked() Faults {
	faults := f.faults
	faults.DiscoveryExtra = maps.Clone(faults.DiscoveryExtra)
	faults.IDTokenClaims = maps.Clone(faults.IDTokenClaims)
	faults.UserInfo = maps.Clone(faults.UserInfo)
	faults.TokenExtra = maps.Clone(faults.TokenExtra)
	faults.AccessToken.Audience = slices.Clone(faults.AccessToken.Audience)
	faults.AccessToken.Claims = maps.Clone(faults.AccessToken.Claims)
	return faults
}

// hang holds the request until the client gives up or the IdP closes.
func (f *Faulty) hang(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-f.closed:
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeOAuthError(w http.ResponseWriter, status int, code, description string) {
	body := map[string]string{"error": code}
	if description != "" {
		body["error_description"] = description
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, body)
}

func cloneValues(v url.Values) url.Values {
	if v == nil {
		return nil
	}
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

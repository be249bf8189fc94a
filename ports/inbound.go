package ports

import (
	"context"
	"encoding/json"
	"time"

	"github.com/oidcproxy/oidcproxy/domain"
)

// ClientAuth is how a client authenticated at /token, /revoke or
// /introspect, as the HTTP adapter parsed it.
type ClientAuth struct {
	// ClientID is the client_id the request named; with an assertion it
	// may be empty (the assertion's sub names the client).
	ClientID string
	Secret   string
	// Assertion is the client_assertion of private_key_jwt (RFC 7523 2.2).
	Assertion string
	// Method is how the credentials arrived: none, basic, post or
	// private_key_jwt.
	Method domain.AuthMethod
}

// RegisterClientCommand is an RFC 7591 registration request.
type RegisterClientCommand struct {
	RedirectURIs            []string
	TokenEndpointAuthMethod string
	GrantTypes              []string
	ResponseTypes           []string
	ApplicationType         string
	ClientName              string
	ClientURI               string
	LogoURI                 string
	Scope                   string
	Contacts                []string
	SoftwareID              string
	SoftwareVersion         string
	// JWKS is the client's public key set, as the JSON value it sent;
	// JWKSURI is where it publishes one (for private_key_jwt).
	JWKS    json.RawMessage
	JWKSURI string
}

// RegisterClientResult is the registered client and, for a confidential
// client, its secret (shown this once).
type RegisterClientResult struct {
	Client       domain.Client
	ClientSecret string
}

// RegisterClient handles dynamic client registration.
type RegisterClient interface {
	Handle(ctx context.Context, cmd RegisterClientCommand) (RegisterClientResult, error)
}

// StartAuthorizationCommand is an authorization request at /authorize.
type StartAuthorizationCommand struct {
	ClientID            string
	RedirectURI         string
	ResponseType        string
	State               string
	Scope               string
	CodeChallenge       string
	CodeChallengeMethod string
	Resource            []string
	// RememberedConsent lists the clients (and scopes) this browser approved
	// before, as read from a verified cookie; used in ConsentRemember mode.
	RememberedConsent []RememberedConsent
}

// RememberedConsent is one earlier approval by this browser.
type RememberedConsent struct {
	ClientID string
	Scopes   []string
}

// UpstreamRedirect sends the browser to the IdP after consent. The adapter
// must set BindingSecret in a cookie scoped to this flow and present it at
// the callback.
type UpstreamRedirect struct {
	URL           string
	BindingSecret string
	// BindingName distinguishes concurrent flows in one browser; derived
	// from the upstream state, safe to use in a cookie name.
	BindingName string
}

// StartAuthorizationResult says where the browser goes next. On error,
// RedirectURI and State are set when the error may be sent to the client's
// redirect URI (the client and redirect URI were validated).
type StartAuthorizationResult struct {
	// TransactionID is the raw id for the consent page, when consent is
	// required.
	TransactionID string
	// Upstream is set instead when no consent page is needed.
	Upstream *UpstreamRedirect

	RedirectURI string
	State       string
}

// StartAuthorization validates an authorization request and opens a
// transaction.
type StartAuthorization interface {
	Handle(ctx context.Context, cmd StartAuthorizationCommand) (StartAuthorizationResult, error)
}

// ConsentView is what the consent page shows. Every string is client
// supplied or derived and must be escaped by the renderer.
type ConsentView struct {
	TransactionID string
	CSRFToken     string
	ClientID      string
	ClientName    string
	ClientURI     string
	// DocumentHost is the host of the client_id URL when the client
	// identified itself with a client ID metadata document, "" for
	// registered clients.
	DocumentHost string
	RedirectURI  string
	RedirectHost string
	Scopes       []string
	Resource     string
	ExpiresAt    time.Time
}

// ConsentDecisionCommand is the user's answer on the consent page.
type ConsentDecisionCommand struct {
	TransactionID string
	CSRFToken     string
	Approve       bool
}

// ConsentDecisionResult: on approval the browser goes upstream. On denial
// Decide returns access_denied with RedirectURI and State set, like every
// error that may go back to the client.
type ConsentDecisionResult struct {
	Upstream *UpstreamRedirect
	// ClientID and Scopes of the approved transaction, for the remember
	// cookie.
	ClientID string
	Scopes   []string

	RedirectURI string
	State       string
}

// Consent renders and decides the consent step.
type Consent interface {
	Show(ctx context.Context, transactionID string) (ConsentView, error)
	Decide(ctx context.Context, cmd ConsentDecisionCommand) (ConsentDecisionResult, error)
}

// CompleteCallbackCommand is what the IdP sent back to the callback.
type CompleteCallbackCommand struct {
	State         string
	Code          string
	Error         string // the upstream error code, if any; its text is never used
	Issuer        string // RFC 9207 iss from the IdP, if sent
	BindingSecret string // from the flow's cookie
}

// CompleteCallbackResult is the final redirect to the client. On error,
// RedirectURI and State are set when the error may go to the client.
type CompleteCallbackResult struct {
	RedirectURI string
	Code        string
	State       string
}

// CompleteCallback finishes the upstream login and mints our code.
type CompleteCallback interface {
	Handle(ctx context.Context, cmd CompleteCallbackCommand) (CompleteCallbackResult, error)
}

// TokenResult is a successful token response. ClientID, Subject, GrantID
// and Retried are not sent to the client; they are for the audit log.
type TokenResult struct {
	AccessToken  string
	TokenType    string
	ExpiresIn    int64
	RefreshToken string
	Scope        string

	ClientID string
	Subject  string
	GrantID  string
	// Retried reports a refresh that presented an already rotated token
	// within the retry window (domain.RefreshRetry): the client most likely
	// lost the previous response, and its unused successor was withdrawn.
	Retried bool
}

// ExchangeTokenCommand is an authorization_code token request.
type ExchangeTokenCommand struct {
	Client       ClientAuth
	Code         string
	RedirectURI  string
	CodeVerifier string
	Resource     []string
}

// ExchangeToken handles grant_type=authorization_code.
type ExchangeToken interface {
	Handle(ctx context.Context, cmd ExchangeTokenCommand) (TokenResult, error)
}

// RefreshTokenCommand is a refresh_token token request.
type RefreshTokenCommand struct {
	Client       ClientAuth
	RefreshToken string
	Scope        string
	Resource     []string
}

// RefreshToken handles grant_type=refresh_token.
type RefreshToken interface {
	Handle(ctx context.Context, cmd RefreshTokenCommand) (TokenResult, error)
}

// ClientCredentialsCommand is a client_credentials token request (RFC 6749
// 4.4): a machine client asking for a token for itself.
type ClientCredentialsCommand struct {
	Client   ClientAuth
	Scope    string
	Resource []string
}

// ClientCredentials handles grant_type=client_credentials.
type ClientCredentials interface {
	Handle(ctx context.Context, cmd ClientCredentialsCommand) (TokenResult, error)
}

// JWTBearerCommand is a jwt-bearer token request (RFC 7523 2.1) carrying an
// Identity Assertion JWT Authorization Grant from an enterprise IdP.
type JWTBearerCommand struct {
	Client    ClientAuth
	Assertion string
	Scope     string
	Resource  []string
}

// JWTBearer handles grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer.
type JWTBearer interface {
	Handle(ctx context.Context, cmd JWTBearerCommand) (TokenResult, error)
}

// RevokeCommand is an RFC 7009 revocation request.
type RevokeCommand struct {
	Client        ClientAuth
	Token         string
	TokenTypeHint string
}

// Revoke handles token revocation.
type Revoke interface {
	Handle(ctx context.Context, cmd RevokeCommand) error
}

// VerifyAccessTokenCommand asks whether a bearer token grants access to a
// resource.
type VerifyAccessTokenCommand struct {
	Token          string
	Resource       string
	RequiredScopes []string
	// WithUpstream asks for the upstream IdP's access token of the grant
	// as well, for a resource server configured to forward it. It costs a
	// decryption, so callers that do not forward it leave it false.
	WithUpstream bool
}

// VerifiedAccess is a valid bearer token and the grant behind it.
type VerifiedAccess struct {
	Token domain.AccessToken
	Grant domain.Grant
	// UpstreamAccessToken is the upstream IdP's access token, opened from
	// the grant's sealed tokens when the command asked WithUpstream; empty
	// otherwise. It is a credential: never log it.
	UpstreamAccessToken string
}

// VerifyAccessToken checks a bearer token.
type VerifyAccessToken interface {
	Handle(ctx context.Context, cmd VerifyAccessTokenCommand) (VerifiedAccess, error)
}

// IntrospectCommand is an RFC 7662 introspection request. The caller is
// either a registered confidential client (Client) or a resource server
// presenting the operator-configured introspection secret (Secret).
type IntrospectCommand struct {
	Client        ClientAuth
	Secret        string
	Token         string
	TokenTypeHint string
}

// IntrospectResult is the RFC 7662 answer; only Active is set for a token
// that is not active (or not the caller's business).
type IntrospectResult struct {
	Active    bool
	TokenType string // "Bearer" for access tokens, "refresh_token"
	Scope     string
	ClientID  string
	Subject   string
	Audience  string
	Issuer    string
	JTI       string
	ExpiresAt time.Time
	IssuedAt  time.Time
	NotBefore time.Time
}

// Introspect answers RFC 7662 introspection.
type Introspect interface {
	Handle(ctx context.Context, cmd IntrospectCommand) (IntrospectResult, error)
}

// SweepExpired removes expired records.
type SweepExpired interface {
	Handle(ctx context.Context) (int, error)
}

// Application groups the inbound ports the adapters drive. The composition
// root builds it from domain/usecase and may wrap each handler in a
// decorator (tracing, metrics) without the adapters noticing.
type Application struct {
	RegisterClient     RegisterClient
	StartAuthorization StartAuthorization
	Consent            Consent
	CompleteCallback   CompleteCallback
	ExchangeToken      ExchangeToken
	RefreshToken       RefreshToken
	// ClientCredentials and JWTBearer are nil when the grant is off.
	ClientCredentials ClientCredentials
	JWTBearer         JWTBearer
	Revoke            Revoke
	VerifyAccessToken VerifyAccessToken
	Introspect        Introspect
	SweepExpired      SweepExpired
}

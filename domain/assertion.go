package domain

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Names of the JWT assertions oidcproxy accepts from other parties.
const (
	// ClientAssertionType is the client_assertion_type of RFC 7523 2.2: the
	// client authenticates with a JWT it signed (private_key_jwt).
	ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	// IDJAGType is the JWT typ of an Identity Assertion JWT Authorization
	// Grant (draft-ietf-oauth-identity-assertion-authz-grant 3).
	IDJAGType = "oauth-id-jag+jwt"
)

// Bounds on assertions. The times in an assertion were stamped by another
// party's clock, so unlike our own tokens (AccessToken.ExpiredAt) they are
// judged with a leeway: a client or an enterprise IdP whose clock is a few
// seconds ahead must not be locked out.
const (
	// AssertionLeeway is the clock skew forgiven on exp, nbf and iat: one
	// minute, go-jose's and most JWT libraries' default. An assertion is
	// accepted until its exp plus the leeway, and its jti is remembered at
	// least that long.
	AssertionLeeway = time.Minute
	// MaxClientAssertionLifetime bounds how far in the future a client
	// assertion's exp may lie. A client signs a fresh assertion for each
	// request; a long-lived one would be a bearer credential, and its jti
	// would have to be remembered for as long.
	MaxClientAssertionLifetime = 5 * time.Minute
	// MaxIDJAGLifetime bounds an ID-JAG's lifetime (exp - iat) and how
	// far in the future its exp may lie: enterprise IdPs issue them for a
	// few minutes (the draft's examples say 300 seconds).
	MaxIDJAGLifetime = 5 * time.Minute
	// MaxJTILength bounds the jti remembered against replay.
	MaxJTILength = 256
)

// AssertionAlgorithms are the JWS algorithms accepted on assertions: the
// asymmetric algorithms clients and IdPs actually use. Never "none" and
// never an HMAC (HS256 keyed with a public key is the classic confusion
// attack); a key's own alg and kty must agree with the one used.
var AssertionAlgorithms = []string{"ES256", "RS256", "EdDSA"}

// Assertion is a JWT another party signed (a client assertion or an
// ID-JAG), as the verifier read it: its header, its registered claims and
// the claims the rules below need. Claims holds every claim of the payload,
// for the identity an ID-JAG carries.
type Assertion struct {
	// Type is the header's typ; Algorithm its alg; KeyID its kid.
	Type, Algorithm, KeyID string

	Issuer  string
	Subject string
	// Audience holds aud's values; AudienceArray reports that aud was a
	// JSON array rather than a string.
	Audience      []string
	AudienceArray bool
	ExpiresAt     time.Time // zero when exp is absent
	IssuedAt      time.Time // zero when iat is absent
	NotBefore     time.Time // zero when nbf is absent
	JTI           string

	// ClientID is the client_id claim (ID-JAG).
	ClientID string
	// Resource holds the resource claim's values (ID-JAG).
	Resource []string
	// Scope is the scope claim, HasScope whether it was present.
	Scope    string
	HasScope bool

	Claims map[string]any
}

// ErrBadAssertion marks every refusal of an assertion by the rules below
// (errors.Is finds it in an *AssertionError).
var ErrBadAssertion = errors.New("assertion refused")

// AssertionError is an assertion the rules refused. Reason names the rule
// it broke and never quotes the assertion's values, so it may be shown to
// the client and logged.
type AssertionError struct{ Reason string }

// Error implements error.
func (e *AssertionError) Error() string { return ErrBadAssertion.Error() + ": " + e.Reason }

// Is makes errors.Is(err, ErrBadAssertion) hold.
func (e *AssertionError) Is(target error) bool { return target == ErrBadAssertion }

func badAssertion(format string, args ...any) error {
	return &AssertionError{Reason: fmt.Sprintf(format, args...)}
}

// checkTimes applies the time rules: exp required, not past (with the
// leeway) and at most maxLifetime ahead; nbf and iat, when present, not in
// the future beyond the leeway; iat, when present, not older than
// maxLifetime (plus the leeway) and not after exp.
func (a Assertion) checkTimes(now time.Time, maxLifetime time.Duration) error {
	switch {
	case a.ExpiresAt.IsZero():
		return badAssertion("exp is missing")
	case !now.Before(a.ExpiresAt.Add(AssertionLeeway)):
		return badAssertion("it has expired")
	case a.ExpiresAt.After(now.Add(maxLifetime + AssertionLeeway)):
		return badAssertion("exp is more than %s in the future", maxLifetime)
	case !a.NotBefore.IsZero() && a.NotBefore.After(now.Add(AssertionLeeway)):
		return badAssertion("it is not valid yet (nbf)")
	}
	if !a.IssuedAt.IsZero() {
		switch {
		case a.IssuedAt.After(now.Add(AssertionLeeway)):
			return badAssertion("iat is in the future")
		case a.IssuedAt.Before(now.Add(-maxLifetime - AssertionLeeway)):
			return badAssertion("iat is more than %s in the past", maxLifetime)
		case a.IssuedAt.After(a.ExpiresAt):
			return badAssertion("iat is after exp")
		}
	}
	return nil
}

// checkJTI requires a jti the replay cache can remember.
func (a Assertion) checkJTI() error {
	switch {
	case a.JTI == "":
		return badAssertion("jti is missing")
	case len(a.JTI) > MaxJTILength:
		return badAssertion("jti is longer than %d bytes", MaxJTILength)
	}
	return nil
}

// soleAudience reports whether aud names exactly one value and it is one
// of accepted. draft-ietf-oauth-rfc7523bis makes the authorization server
// reject an assertion that does not carry its identifier as its sole
// audience: an assertion meant for several servers (or for a server that
// merely shares an endpoint URL with us) can be replayed at each of them.
func (a Assertion) soleAudience(accepted ...string) bool {
	return len(a.Audience) == 1 && a.Audience[0] != "" && slices.Contains(accepted, a.Audience[0])
}

// ReplayExpiry is how long the assertion's jti must be remembered: as long
// as the assertion could still be accepted.
func (a Assertion) ReplayExpiry() time.Time { return a.ExpiresAt.Add(AssertionLeeway) }

// ClientAssertionJWTType is the explicit typ of a client assertion that
// draft-ietf-oauth-rfc7523bis defines. A client that sends it follows the
// draft, so its assertion must name our issuer identifier and nothing
// else.
const ClientAssertionJWTType = "client-authentication+jwt"

// ClientAssertionAudience is what a client assertion's aud may name.
type ClientAssertionAudience struct {
	// Issuer is our issuer identifier: the value draft-ietf-oauth-rfc7523bis
	// requires clients to send, as the sole audience.
	Issuer string
	// TokenEndpoint is our token endpoint URL, accepted from assertions
	// without the explicit typ: RFC 7523 3 allowed it, OpenID Connect Core 9
	// recommends it, and most client libraries still send it (for /revoke
	// and /introspect too). Empty accepts the issuer alone.
	TokenEndpoint string
}

// CheckClientAssertion applies RFC 7523 3, as updated by
// draft-ietf-oauth-rfc7523bis, to a client assertion whose signature was
// verified with the client's keys:
//   - typ, when present, is JWT or client-authentication+jwt: a JWT of
//     another kind (an ID-JAG, an access token) is not a client assertion
//     (RFC 8725 3.11);
//   - iss and sub both equal clientID (RFC 7523 3, items 1 and 2.B);
//   - aud names exactly one value, as a string or a one-element array:
//     our issuer identifier or, unless typ is client-authentication+jwt,
//     our token endpoint URL. An assertion for several audiences could be
//     replayed at each of them, so it is refused however it names us;
//   - exp is present, not past and at most MaxClientAssertionLifetime
//     ahead; nbf and iat, when present, are not in the future (all with
//     AssertionLeeway, since the client's clock stamped them);
//   - jti is present (the caller then consumes it against replay).
//
// Errors are *AssertionError.
func CheckClientAssertion(a Assertion, clientID string, aud ClientAssertionAudience, now time.Time) error {
	explicit := typMatches(a.Type, ClientAssertionJWTType)
	accepted := []string{aud.Issuer}
	if !explicit && aud.TokenEndpoint != "" {
		accepted = append(accepted, aud.TokenEndpoint)
	}
	switch {
	case a.Type != "" && !explicit && !typMatches(a.Type, "jwt"):
		return badAssertion("typ is not that of a client assertion")
	case a.Issuer != clientID:
		return badAssertion("iss is not the client_id")
	case a.Subject != clientID:
		return badAssertion("sub is not the client_id")
	case !a.soleAudience(accepted...):
		return badAssertion("aud is not this authorization server's issuer identifier (or token endpoint) as the sole audience")
	}
	if err := a.checkTimes(now, MaxClientAssertionLifetime); err != nil {
		return err
	}
	return a.checkJTI()
}

// IDJAGPolicy is what an ID-JAG must name to be accepted here.
type IDJAGPolicy struct {
	// Issuer is our issuer identifier: the ID-JAG's sole audience.
	Issuer string
	// Resource is our MCP server's canonical resource URI.
	Resource string
	// TrustedIssuers are the enterprise IdPs whose ID-JAGs are accepted.
	TrustedIssuers []string
}

// typMatches compares a JWT typ with a media type as RFC 7515 4.1.9 and
// RFC 8725 3.11 allow: case-insensitively, with or without "application/".
func typMatches(typ, want string) bool {
	typ = strings.ToLower(typ)
	return typ == want || typ == "application/"+want
}

// CheckIDJAG applies the processing rules of an Identity Assertion JWT
// Authorization Grant (draft-ietf-oauth-identity-assertion-authz-grant 4.4,
// RFC 7521 5.2, and the MCP enterprise-managed authorization profile) to an
// ID-JAG whose signature was verified with its issuer's keys:
//   - typ is oauth-id-jag+jwt;
//   - iss is one of the trusted issuers;
//   - aud is our issuer identifier, as the sole audience;
//   - client_id is the client that authenticated at the token endpoint;
//   - resource is present and names our MCP server and nothing else (the
//     access token is bound to it);
//   - sub is present;
//   - exp and iat are present and within MaxIDJAGLifetime (with
//     AssertionLeeway), nbf when present not in the future;
//   - jti is present (the caller consumes it against replay).
//
// Errors are *AssertionError.
func CheckIDJAG(a Assertion, p IDJAGPolicy, clientID string, now time.Time) error {
	switch {
	case !typMatches(a.Type, IDJAGType):
		return badAssertion("typ is not %s", IDJAGType)
	case !slices.Contains(p.TrustedIssuers, a.Issuer):
		return badAssertion("iss is not a trusted issuer")
	case !a.soleAudience(p.Issuer):
		return badAssertion("aud is not this authorization server's issuer identifier as the sole audience")
	case a.ClientID == "":
		return badAssertion("client_id is missing")
	case a.ClientID != clientID:
		return badAssertion("client_id is not the authenticated client")
	case len(a.Resource) == 0:
		return badAssertion("resource is missing")
	case a.Subject == "":
		return badAssertion("sub is missing")
	case a.IssuedAt.IsZero():
		return badAssertion("iat is missing")
	}
	for _, r := range a.Resource {
		if c, err := CanonicalResource(r); err != nil || c != p.Resource {
			return badAssertion("resource is not this MCP server")
		}
	}
	if err := a.checkTimes(now, MaxIDJAGLifetime); err != nil {
		return err
	}
	if a.ExpiresAt.Sub(a.IssuedAt) > MaxIDJAGLifetime {
		return badAssertion("its lifetime exceeds %s", MaxIDJAGLifetime)
	}
	return a.checkJTI()
}

// IDJAGScopes decides the scopes of the access token issued for an ID-JAG.
// The enterprise IdP decided what the user may delegate (the scope claim).
// Every scope it names must be one this server knows (supported), or the
// grant is refused: a scope meant for another server is the sign of a
// confused token (the MCP profile's audience and resource binding).
// Without a scope claim the IdP delegated nothing in particular and the
// server's defaults apply, as at /authorize. The client may ask for less
// (requested): it gets the intersection of what it asked for and what the
// ID-JAG grants (RFC 6749 3.3 lets the server issue less than asked, and
// the MCP profile asks for the intersection); an intersection that is
// empty is invalid_scope.
func IDJAGScopes(a Assertion, requested, supported, defaults []string) ([]string, error) {
	granted := defaults
	if a.HasScope {
		s, err := ParseScope(a.Scope)
		if err != nil {
			return nil, ErrInvalidGrant("the assertion's scope is malformed")
		}
		if !IsSubset(s, supported) {
			return nil, ErrInvalidGrant("the assertion names a scope this server does not know")
		}
		granted = s
	}
	if len(requested) == 0 {
		return slices.Clone(granted), nil
	}
	var out []string
	for _, s := range requested {
		if slices.Contains(granted, s) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, ErrInvalidScope("the requested scope is not granted by the assertion")
	}
	return out, nil
}

// IDJAGSubject maps the user an ID-JAG names to the subject of the grant
// made from it, so that the same person gets the same identity whether
// they signed in through the browser or their enterprise IdP vouched for
// them. A browser login's grant subject is the upstream IdP's sub, and
// iss+sub is what identifies a user (OpenID Connect Core 2); so:
//   - an ID-JAG issued by the upstream IdP itself (iss equals
//     upstreamIssuer, byte for byte) maps to its sub unchanged: the same
//     grant subject, the same X-Forwarded-User, the same policy entries;
//   - an ID-JAG from any other trusted issuer maps to iss + "#" + sub, so
//     that its subjects can never pass for the upstream IdP's (two IdPs
//     may both have a user "alice" who are different people). An issuer
//     identifier has no fragment (RFC 8414 2), so the first "#" separates
//     the two unambiguously.
func IDJAGSubject(iss, sub, upstreamIssuer string) string {
	if iss == upstreamIssuer {
		return sub
	}
	return iss + "#" + sub
}

// idjagSkipped are the claims of an ID-JAG IDJAGIdentity does not keep
// among the identity's claims: those that describe the assertion rather
// than the user, and those the Identity holds in its own fields.
var idjagSkipped = []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "resource", "scope", "typ",
	"email", "email_verified", "name"}

// IDJAGIdentity is the user an accepted ID-JAG names, as a browser login
// would have produced it from an ID token, with its subject mapped by
// IDJAGSubject. It applies Identity.Validate.
//
// What else of the user counts depends on who vouches for them. An ID-JAG
// of the upstream IdP itself carries what its ID tokens carry: the email
// (counted verified only when email_verified is true), the name, and the
// small scalar user claims (auth_time, acr...) a browser login keeps too,
// within the same bounds (KeepScalarClaims); the group claims a policy
// names are kept by the caller, which knows the policy, with the same
// rule as at sign-in (policy.ClaimPath.Keep). Another trusted issuer vouches for its own users only:
// its email is kept but never counted verified, and its other claims are
// dropped, so that a partner IdP's "groups: [admins]" or verified
// "alice@example.com" can never satisfy an email, domain or group rule
// written for the upstream IdP's users. Such users are admitted by their
// mapped subject (iss#sub) or a condition on it.
func IDJAGIdentity(a Assertion, upstreamIssuer string) (Identity, error) {
	id := Identity{Subject: IDJAGSubject(a.Issuer, a.Subject, upstreamIssuer), Issuer: a.Issuer}
	id.Email, _ = a.Claims["email"].(string)
	id.Name, _ = a.Claims["name"].(string)
	if a.Issuer == upstreamIssuer {
		id.EmailVerified, _ = a.Claims["email_verified"].(bool)
		KeepScalarClaims(&id, a.Claims, idjagSkipped)
	}
	if err := id.Validate(); err != nil {
		return Identity{}, err
	}
	return id, nil
}

// AssertionReplayKey is the store key under which a used jti is
// remembered: scope names who vouches for the jti (the client of a client
// assertion, the issuer of an ID-JAG), since jti values are unique only
// per issuer (RFC 7519 4.1.7). Hashing bounds the key and keeps it out of
// any index as readable text; the length prefix keeps ("a", "bc") apart
// from ("ab", "c").
func AssertionReplayKey(scope, jti string) string {
	return HashToken(strconv.Itoa(len(scope)) + ":" + scope + jti)
}

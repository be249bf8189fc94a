package pgstore

import (
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/oidcproxy/oidcproxy/domain"
)

// Times are stored as bigint nanoseconds since the Unix epoch, so that
// every time round-trips exactly and SQL compares expiries to the
// nanosecond (see the migration's header). The int64 range spans the
// years 1677 to 2262; a time outside it is clamped to the nearest end,
// which keeps its order against any real "now" (every time oidcproxy
// stores is a now plus a bounded lifetime).

// unsetNS stands for the zero time in NOT NULL time columns; nothing real
// is that old, so it reads back as the zero time.
const unsetNS = math.MinInt64

var (
	minNS = time.Unix(0, math.MinInt64+1)
	maxNS = time.Unix(0, math.MaxInt64)
)

// ns maps t to its column value: unsetNS for the zero time, else unix
// nanoseconds clamped to the representable range.
func ns(t time.Time) int64 {
	switch {
	case t.IsZero():
		return unsetNS
	case t.Before(minNS):
		return minNS.UnixNano()
	case t.After(maxNS):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// fromNS is the inverse of ns, in UTC.
func fromNS(n int64) time.Time {
	if n == unsetNS {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// nullNS maps an optional time to a nullable column: NULL for the zero time.
func nullNS(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	n := ns(t)
	return &n
}

// fromNullNS is the inverse of nullNS.
func fromNullNS(n *int64) time.Time {
	if n == nil {
		return time.Time{}
	}
	return fromNS(*n)
}

// validKey reports whether key can be a record's key: not empty, within
// maxKeyLen, and text PostgreSQL accepts (valid UTF-8 without NUL). A
// lookup by an invalid key is a lookup of something that cannot exist —
// not found — rather than a query the server refuses: a client_id is
// whatever a request says.
func validKey(key string) bool {
	return key != "" && len(key) <= maxKeyLen && utf8.ValidString(key) && !strings.ContainsRune(key, 0)
}

// maxKeyLen bounds ids and hashes, as boltstore does: real ones are
// 43-byte hashes or short ids (a client id may be a URL).
const maxKeyLen = 4096

// identityRecord is the json form of a grant's identity: explicit names,
// so renaming a domain field cannot silently change what is stored.
type identityRecord struct {
	Subject       string         `json:"sub,omitempty"`
	Issuer        string         `json:"iss,omitempty"`
	Email         string         `json:"email,omitempty"`
	EmailVerified bool           `json:"email_verified,omitempty"`
	Name          string         `json:"name,omitempty"`
	Claims        map[string]any `json:"claims"`
}

func toIdentityRecord(id domain.Identity) identityRecord {
	return identityRecord{
		Subject:       id.Subject,
		Issuer:        id.Issuer,
		Email:         id.Email,
		EmailVerified: id.EmailVerified,
		Name:          id.Name,
		Claims:        id.Claims,
	}
}

func (r identityRecord) domain() domain.Identity {
	return domain.Identity{
		Subject:       r.Subject,
		Issuer:        r.Issuer,
		Email:         r.Email,
		EmailVerified: r.EmailVerified,
		Name:          r.Name,
		Claims:        r.Claims,
	}
}

// The row types below hold one table's columns as scanned; dest lists
// pointers to their fields in the order of the matching column list in
// sql.go, so that a query joining two tables scans into both.

type clientRow struct {
	c          domain.Client
	appType    string
	method     string
	created    int64
	firstGrant *int64
}

func (r *clientRow) dest() []any {
	return []any{&r.c.ID, &r.c.SecretHash, &r.c.Name, &r.c.RedirectURIs, &r.appType, &r.method,
		&r.c.GrantTypes, &r.c.ResponseTypes, &r.c.Scope, &r.c.ClientURI, &r.c.LogoURI, &r.c.Contacts,
		&r.c.SoftwareID, &r.c.SoftwareVersion, &r.c.JWKS, &r.c.JWKSURI, &r.c.Operator, &r.created, &r.firstGrant}
}

func (r *clientRow) domain() domain.Client {
	c := r.c
	c.ApplicationType = domain.ApplicationType(r.appType)
	c.TokenEndpointAuthMethod = domain.AuthMethod(r.method)
	c.CreatedAt = fromNS(r.created)
	c.FirstGrantAt = fromNullNS(r.firstGrant)
	return c
}

func clientArgs(c domain.Client) []any {
	return []any{c.ID, c.SecretHash, c.Name, c.RedirectURIs, string(c.ApplicationType), string(c.TokenEndpointAuthMethod),
		c.GrantTypes, c.ResponseTypes, c.Scope, c.ClientURI, c.LogoURI, c.Contacts,
		c.SoftwareID, c.SoftwareVersion, c.JWKS, c.JWKSURI, c.Operator, ns(c.CreatedAt), nullNS(c.FirstGrantAt)}
}

type transactionRow struct {
	t                domain.Transaction
	state            []byte
	created, expires int64
}

func (r *transactionRow) dest() []any {
	return []any{&r.t.ID, &r.t.ClientID, &r.t.RedirectURI, &r.state, &r.t.CodeChallenge, &r.t.Scopes,
		&r.t.Resource, &r.t.UpstreamVerifier, &r.t.Nonce, &r.t.CSRFHash, &r.t.Approved, &r.t.BindingHash,
		&r.created, &r.expires}
}

func (r *transactionRow) domain() domain.Transaction {
	t := r.t
	t.State = string(r.state)
	t.CreatedAt = fromNS(r.created)
	t.ExpiresAt = fromNS(r.expires)
	return t
}

func transactionArgs(t domain.Transaction) []any {
	return []any{t.ID, t.ClientID, t.RedirectURI, []byte(t.State), t.CodeChallenge, t.Scopes,
		t.Resource, t.UpstreamVerifier, t.Nonce, t.CSRFHash, t.Approved, t.BindingHash,
		ns(t.CreatedAt), ns(t.ExpiresAt)}
}

type grantRow struct {
	g                domain.Grant
	identity         identityRecord
	upstreamExpiry   *int64
	created, expires int64
	lastUsed         *int64
}

func (r *grantRow) dest() []any {
	return []any{&r.g.ID, &r.g.ClientID, &r.g.Subject, &r.identity, &r.g.Scopes, &r.g.Resource,
		&r.g.SealedUpstream, &r.upstreamExpiry, &r.g.HasUpstreamRefresh, &r.created, &r.expires, &r.lastUsed, &r.g.Machine}
}

func (r *grantRow) domain() domain.Grant {
	g := r.g
	g.Identity = r.identity.domain()
	g.UpstreamExpiry = fromNullNS(r.upstreamExpiry)
	g.CreatedAt = fromNS(r.created)
	g.ExpiresAt = fromNS(r.expires)
	g.LastUsedAt = fromNullNS(r.lastUsed)
	return g
}

func grantArgs(g domain.Grant) []any {
	return []any{g.ID, g.ClientID, g.Subject, toIdentityRecord(g.Identity), g.Scopes, g.Resource,
		g.SealedUpstream, nullNS(g.UpstreamExpiry), g.HasUpstreamRefresh, ns(g.CreatedAt), ns(g.ExpiresAt), nullNS(g.LastUsedAt), g.Machine}
}

type codeRow struct {
	c               domain.AuthorizationCode
	issued, expires int64
	redeemed        *int64
}

func (r *codeRow) dest() []any {
	return []any{&r.c.Hash, &r.c.GrantID, &r.c.ClientID, &r.c.RedirectURI, &r.c.CodeChallenge, &r.c.Scopes,
		&r.c.Resource, &r.issued, &r.expires, &r.redeemed}
}

func (r *codeRow) domain() domain.AuthorizationCode {
	c := r.c
	c.IssuedAt = fromNS(r.issued)
	c.ExpiresAt = fromNS(r.expires)
	c.RedeemedAt = fromNullNS(r.redeemed)
	return c
}

func codeArgs(c domain.AuthorizationCode) []any {
	return []any{c.Hash, c.GrantID, c.ClientID, c.RedirectURI, c.CodeChallenge, c.Scopes,
		c.Resource, ns(c.IssuedAt), ns(c.ExpiresAt), nullNS(c.RedeemedAt)}
}

type refreshRow struct {
	t               domain.RefreshToken
	issued, expires int64
	rotated         *int64
}

func (r *refreshRow) dest() []any {
	return []any{&r.t.Hash, &r.t.GrantID, &r.t.ClientID, &r.t.Scopes, &r.issued, &r.expires,
		&r.rotated, &r.t.SuccessorHash}
}

func (r *refreshRow) domain() domain.RefreshToken {
	t := r.t
	t.IssuedAt = fromNS(r.issued)
	t.ExpiresAt = fromNS(r.expires)
	t.RotatedAt = fromNullNS(r.rotated)
	return t
}

func refreshArgs(t domain.RefreshToken) []any {
	return []any{t.Hash, t.GrantID, t.ClientID, t.Scopes, ns(t.IssuedAt), ns(t.ExpiresAt),
		nullNS(t.RotatedAt), t.SuccessorHash}
}

type keyRow struct {
	k                     domain.SigningKey
	created               int64
	notAfter, removeAfter *int64
}

func (r *keyRow) dest() []any {
	return []any{&r.k.ID, &r.k.Algorithm, &r.k.SealedPrivate, &r.k.PublicJWK, &r.created, &r.notAfter, &r.removeAfter}
}

func (r *keyRow) domain() domain.SigningKey {
	k := r.k
	k.CreatedAt = fromNS(r.created)
	k.NotAfter = fromNullNS(r.notAfter)
	k.RemoveAfter = fromNullNS(r.removeAfter)
	return k
}

func keyArgs(k domain.SigningKey) []any {
	return []any{k.ID, k.Algorithm, k.SealedPrivate, k.PublicJWK, ns(k.CreatedAt), nullNS(k.NotAfter), nullNS(k.RemoveAfter)}
}

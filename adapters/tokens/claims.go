package tokens

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/oidcproxy/oidcproxy/domain"
)

// machineGrantType is the gty of a token a machine client got for itself.
// gty ("grant type") is the claim Auth0 and others use for it; with sub
// equal to client_id and no user claims it tells a resource server that
// reads our JWTs itself that no person is behind the token.
const machineGrantType = "client_credentials"

// claims is the JWT payload of an access token: the RFC 9068 claims plus gid,
// the grant the token hangs on (the gateway checks the grant still exists),
// and gty for a machine's token.
type claims struct {
	Issuer    string          `json:"iss"`
	Subject   string          `json:"sub"`
	Audience  json.RawMessage `json:"aud"`
	ClientID  string          `json:"client_id"`
	Scope     *string         `json:"scope,omitempty"`
	ExpiresAt *int64          `json:"exp"`
	IssuedAt  *int64          `json:"iat"`
	NotBefore *int64          `json:"nbf,omitempty"`
	JTI       string          `json:"jti"`
	GrantID   string          `json:"gid"`
	GrantType string          `json:"gty,omitempty"`
}

// encodeClaims renders t as a JWT payload. It refuses tokens that Verify
// would refuse, so a bug upstream shows at issuance and not at every use.
func encodeClaims(t domain.AccessToken) ([]byte, error) {
	if err := requireClaims(t); err != nil {
		return nil, err
	}
	aud, err := json.Marshal(t.Audience)
	if err != nil {
		return nil, err
	}
	c := claims{
		Issuer:    t.Issuer,
		Subject:   t.Subject,
		Audience:  aud,
		ClientID:  t.ClientID,
		ExpiresAt: unix(t.ExpiresAt),
		IssuedAt:  unix(t.IssuedAt),
		NotBefore: unix(t.NotBefore),
		JTI:       t.JTI,
		GrantID:   t.GrantID,
	}
	if t.Machine {
		c.GrantType = machineGrantType
	}
	if len(t.Scopes) > 0 {
		scope := domain.JoinScope(t.Scopes)
		c.Scope = &scope
	}
	return json.Marshal(c)
}

// decodeClaims parses a verified payload. Verification proved the payload is
// ours, so a malformed one means a bug or a key compromise: refuse it rather
// than guess.
func decodeClaims(payload []byte) (domain.AccessToken, error) {
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return domain.AccessToken{}, fmt.Errorf("malformed claims: %w", err)
	}
	aud, err := decodeAudience(c.Audience)
	if err != nil {
		return domain.AccessToken{}, err
	}
	t := domain.AccessToken{
		Issuer:    c.Issuer,
		Subject:   c.Subject,
		Audience:  aud,
		ClientID:  c.ClientID,
		GrantID:   c.GrantID,
		JTI:       c.JTI,
		ExpiresAt: fromUnix(c.ExpiresAt),
		IssuedAt:  fromUnix(c.IssuedAt),
		NotBefore: fromUnix(c.NotBefore),
		Machine:   c.GrantType == machineGrantType,
	}
	if c.Scope != nil {
		t.Scopes = strings.Fields(*c.Scope)
	}
	if err := requireClaims(t); err != nil {
		return domain.AccessToken{}, err
	}
	if t.Machine && t.Subject != t.ClientID {
		return domain.AccessToken{}, errors.New("malformed claims: a machine token's sub is not its client_id")
	}
	return t, nil
}

// decodeAudience accepts aud as a string or as an array holding exactly one
// string (RFC 7519 allows both); a token for several audiences is not one
// oidcproxy issues.
func decodeAudience(raw json.RawMessage) (string, error) {
	if len(raw) == 0 {
		return "", errors.New("malformed claims: missing aud")
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return one, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return "", errors.New("malformed claims: aud is neither a string nor an array of strings")
	}
	if len(many) != 1 {
		return "", fmt.Errorf("malformed claims: aud has %d values, want 1", len(many))
	}
	return many[0], nil
}

// requireClaims checks the claims RFC 9068 2.2 makes mandatory, plus gid.
func requireClaims(t domain.AccessToken) error {
	var missing []string
	for _, f := range []struct {
		name    string
		present bool
	}{
		{"iss", t.Issuer != ""},
		{"sub", t.Subject != ""},
		{"aud", t.Audience != ""},
		{"client_id", t.ClientID != ""},
		{"jti", t.JTI != ""},
		{"gid", t.GrantID != ""},
		{"exp", !t.ExpiresAt.IsZero()},
		{"iat", !t.IssuedAt.IsZero()},
	} {
		if !f.present {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("malformed claims: missing %s", strings.Join(missing, ", "))
	}
	return nil
}

func unix(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	n := t.Unix()
	return &n
}

func fromUnix(n *int64) time.Time {
	if n == nil {
		return time.Time{}
	}
	return time.Unix(*n, 0).UTC()
}

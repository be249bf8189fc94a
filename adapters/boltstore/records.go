package boltstore

import (
	"time"

	"github.com/oidcproxy/oidcproxy/domain"
)

// The record types are the on-disk JSON form, kept apart from the domain
// types so that renaming a domain field cannot silently change the file
// format: a format change is a schemaVersion bump. Slices and maps have no
// omitempty so that nil and empty survive a round trip; times are stored in
// UTC with nanoseconds (RFC 3339) and omitted when zero.

type clientRecord struct {
	ID                      string    `json:"id"`
	SecretHash              []byte    `json:"secret_hash"`
	Name                    string    `json:"name,omitempty"`
	RedirectURIs            []string  `json:"redirect_uris"`
	ApplicationType         string    `json:"application_type,omitempty"`
	TokenEndpointAuthMethod string    `json:"token_endpoint_auth_method,omitempty"`
	GrantTypes              []string  `json:"grant_types"`
	ResponseTypes           []string  `json:"response_types"`
	Scope                   string    `json:"scope,omitempty"`
	ClientURI               string    `json:"client_uri,omitempty"`
	LogoURI                 string    `json:"logo_uri,omitempty"`
	Contacts                []string  `json:"contacts"`
	SoftwareID              string    `json:"software_id,omitempty"`
	SoftwareVersion         string    `json:"software_version,omitempty"`
	JWKS                    []byte    `json:"jwks,omitempty"`
	JWKSURI                 string    `json:"jwks_uri,omitempty"`
	Operator                bool      `json:"operator,omitempty"`
	CreatedAt               time.Time `json:"created_at,omitzero"`
	FirstGrantAt            time.Time `json:"first_grant_at,omitzero"`
}

func toClientRecord(c domain.Client) clientRecord {
	return clientRecord{
		ID:                      c.ID,
		SecretHash:              c.SecretHash,
		Name:                    c.Name,
		RedirectURIs:            c.RedirectURIs,
		ApplicationType:         string(c.ApplicationType),
		TokenEndpointAuthMethod: string(c.TokenEndpointAuthMethod),
		GrantTypes:              c.GrantTypes,
		ResponseTypes:           c.ResponseTypes,
		Scope:                   c.Scope,
		ClientURI:               c.ClientURI,
		LogoURI:                 c.LogoURI,
		Contacts:                c.Contacts,
		SoftwareID:              c.SoftwareID,
		SoftwareVersion:         c.SoftwareVersion,
		JWKS:                    c.JWKS,
		JWKSURI:                 c.JWKSURI,
		Operator:                c.Operator,
		CreatedAt:               c.CreatedAt.UTC(),
		FirstGrantAt:            c.FirstGrantAt.UTC(),
	}
}

func (r clientRecord) domain() domain.Client {
	return domain.Client{
		ID:                      r.ID,
		SecretHash:              r.SecretHash,
		Name:                    r.Name,
		RedirectURIs:            r.RedirectURIs,
		ApplicationType:         domain.ApplicationType(r.ApplicationType),
		TokenEndpointAuthMethod: domain.AuthMethod(r.TokenEndpointAuthMethod),
		GrantTypes:              r.GrantTypes,
		ResponseTypes:           r.ResponseTypes,
		Scope:                   r.Scope,
		ClientURI:               r.ClientURI,
		LogoURI:                 r.LogoURI,
		Contacts:                r.Contacts,
		SoftwareID:              r.SoftwareID,
		SoftwareVersion:         r.SoftwareVersion,
		JWKS:                    r.JWKS,
		JWKSURI:                 r.JWKSURI,
		Operator:                r.Operator,
		CreatedAt:               r.CreatedAt,
		FirstGrantAt:            r.FirstGrantAt,
	}
}

type transactionRecord struct {
	ID               string    `json:"id"`
	ClientID         string    `json:"client_id,omitempty"`
	RedirectURI      string    `json:"redirect_uri,omitempty"`
	State            string    `json:"state,omitempty"`
	CodeChallenge    string    `json:"code_challenge,omitempty"`
	Scopes           []string  `json:"scopes"`
	Resource         string    `json:"resource,omitempty"`
	UpstreamVerifier string    `json:"upstream_verifier,omitempty"`
	Nonce            string    `json:"nonce,omitempty"`
	CSRFHash         string    `json:"csrf_hash,omitempty"`
	Approved         bool      `json:"approved,omitempty"`
	BindingHash      string    `json:"binding_hash,omitempty"`
	CreatedAt        time.Time `json:"created_at,omitzero"`
	ExpiresAt        time.Time `json:"expires_at,omitzero"`
}

func toTransactionRecord(t domain.Transaction) transactionRecord {
	return transactionRecord{
		ID:               t.ID,
		ClientID:         t.ClientID,
		RedirectURI:      t.RedirectURI,
		State:            t.State,
		CodeChallenge:    t.CodeChallenge,
		Scopes:           t.Scopes,
		Resource:         t.Resource,
		UpstreamVerifier: t.UpstreamVerifier,
		Nonce:            t.Nonce,
		CSRFHash:         t.CSRFHash,
		Approved:         t.Approved,
		BindingHash:      t.BindingHash,
		CreatedAt:        t.CreatedAt.UTC(),
		ExpiresAt:        t.ExpiresAt.UTC(),
	}
}

func (r transactionRecord) domain() domain.Transaction {
	return domain.Transaction{
		ID:               r.ID,
		ClientID:         r.ClientID,
		RedirectURI:      r.RedirectURI,
		State:            r.State,
		CodeChallenge:    r.CodeChallenge,
		Scopes:           r.Scopes,
		Resource:         r.Resource,
		UpstreamVerifier: r.UpstreamVerifier,
		Nonce:            r.Nonce,
		CSRFHash:         r.CSRFHash,
		Approved:         r.Approved,
		BindingHash:      r.BindingHash,
		CreatedAt:        r.CreatedAt,
		ExpiresAt:        r.ExpiresAt,
	}
}

type identityRecord struct {
	Subject       string         `json:"sub,omitempty"`
	Issuer        string         `json:"iss,omitempty"`
	Email         string         `json:"email,omitempty"`
	EmailVerified bool           `json:"email_verified,omitempty"`
	Name          string         `json:"name,omitempty"`
	Claims        map[string]any `json:"claims"`
}

type grantRecord struct {
	ID                 string         `json:"id"`
	ClientID           string         `json:"client_id,omitempty"`
	Subject            string         `json:"subject,omitempty"`
	Identity           identityRecord `json:"identity"`
	Scopes             []string       `json:"scopes"`
	Resource           string         `json:"resource,omitempty"`
	SealedUpstream     []byte         `json:"sealed_upstream"`
	UpstreamExpiry     time.Time      `json:"upstream_expiry,omitzero"`
	HasUpstreamRefresh bool           `json:"has_upstream_refresh,omitempty"`
	Machine            bool           `json:"machine,omitempty"`
	CreatedAt          time.Time      `json:"created_at,omitzero"`
	LastUsedAt         time.Time      `json:"last_used_at,omitzero"`
	ExpiresAt          time.Time      `json:"expires_at,omitzero"`
}

func toGrantRecord(g domain.Grant) grantRecord {
	return grantRecord{
		ID:       g.ID,
		ClientID: g.ClientID,
		Subject:  g.Subject,
		Identity: identityRecord{
			Subject:       g.Identity.Subject,
			Issuer:        g.Identity.Issuer,
			Email:         g.Identity.Email,
			EmailVerified: g.Identity.EmailVerified,
			Name:          g.Identity.Name,
			Claims:        g.Identity.Claims,
		},
		Scopes:             g.Scopes,
		Resource:           g.Resource,
		SealedUpstream:     g.SealedUpstream,
		UpstreamExpiry:     g.UpstreamExpiry.UTC(),
		HasUpstreamRefresh: g.HasUpstreamRefresh,
		Machine:            g.Machine,
		CreatedAt:          g.CreatedAt.UTC(),
		LastUsedAt:         g.LastUsedAt.UTC(),
		ExpiresAt:          g.ExpiresAt.UTC(),
	}
}

func (r grantRecord) domain() domain.Grant {
	return domain.Grant{
		ID:       r.ID,
		ClientID: r.ClientID,
		Subject:  r.Subject,
		Identity: domain.Identity{
			Subject:       r.Identity.Subject,
			Issuer:        r.Identity.Issuer,
			Email:         r.Identity.Email,
			EmailVerified: r.Identity.EmailVerified,
			Name:          r.Identity.Name,
			Claims:        r.Identity.Claims,
		},
		Scopes:             r.Scopes,
		Resource:           r.Resource,
		SealedUpstream:     r.SealedUpstream,
		UpstreamExpiry:     r.UpstreamExpiry,
		HasUpstreamRefresh: r.HasUpstreamRefresh,
		Machine:            r.Machine,
		CreatedAt:          r.CreatedAt,
		LastUsedAt:         r.LastUsedAt,
		ExpiresAt:          r.ExpiresAt,
	}
}

type codeRecord struct {
	Hash          string    `json:"hash"`
	ClientID      string    `json:"client_id,omitempty"`
	RedirectURI   string    `json:"redirect_uri,omitempty"`
	CodeChallenge string    `json:"code_challenge,omitempty"`
	GrantID       string    `json:"grant_id"`
	Scopes        []string  `json:"scopes"`
	Resource      string    `json:"resource,omitempty"`
	IssuedAt      time.Time `json:"issued_at,omitzero"`
	ExpiresAt     time.Time `json:"expires_at,omitzero"`
	RedeemedAt    time.Time `json:"redeemed_at,omitzero"`
}

func toCodeRecord(c domain.AuthorizationCode) codeRecord {
	return codeRecord{
		Hash:          c.Hash,
		ClientID:      c.ClientID,
		RedirectURI:   c.RedirectURI,
		CodeChallenge: c.CodeChallenge,
		GrantID:       c.GrantID,
		Scopes:        c.Scopes,
		Resource:      c.Resource,
		IssuedAt:      c.IssuedAt.UTC(),
		ExpiresAt:     c.ExpiresAt.UTC(),
		RedeemedAt:    c.RedeemedAt.UTC(),
	}
}

func (r codeRecord) domain() domain.AuthorizationCode {
	return domain.AuthorizationCode{
		Hash:          r.Hash,
		ClientID:      r.ClientID,
		RedirectURI:   r.RedirectURI,
		CodeChallenge: r.CodeChallenge,
		GrantID:       r.GrantID,
		Scopes:        r.Scopes,
		Resource:      r.Resource,
		IssuedAt:      r.IssuedAt,
		ExpiresAt:     r.ExpiresAt,
		RedeemedAt:    r.RedeemedAt,
	}
}

type refreshRecord struct {
	Hash          string    `json:"hash"`
	GrantID       string    `json:"grant_id"`
	ClientID      string    `json:"client_id,omitempty"`
	Scopes        []string  `json:"scopes"`
	IssuedAt      time.Time `json:"issued_at,omitzero"`
	ExpiresAt     time.Time `json:"expires_at,omitzero"`
	RotatedAt     time.Time `json:"rotated_at,omitzero"`
	SuccessorHash string    `json:"successor_hash,omitempty"`
}

func toRefreshRecord(t domain.RefreshToken) refreshRecord {
	return refreshRecord{
		Hash:          t.Hash,
		GrantID:       t.GrantID,
		ClientID:      t.ClientID,
		Scopes:        t.Scopes,
		IssuedAt:      t.IssuedAt.UTC(),
		ExpiresAt:     t.ExpiresAt.UTC(),
		RotatedAt:     t.RotatedAt.UTC(),
		SuccessorHash: t.SuccessorHash,
	}
}

func (r refreshRecord) domain() domain.RefreshToken {
	return domain.RefreshToken{
		Hash:          r.Hash,
		GrantID:       r.GrantID,
		ClientID:      r.ClientID,
		Scopes:        r.Scopes,
		IssuedAt:      r.IssuedAt,
		ExpiresAt:     r.ExpiresAt,
		RotatedAt:     r.RotatedAt,
		SuccessorHash: r.SuccessorHash,
	}
}

type keyRecord struct {
	ID            string    `json:"id"`
	Algorithm     string    `json:"alg,omitempty"`
	SealedPrivate []byte    `json:"sealed_private"`
	PublicJWK     []byte    `json:"public_jwk"`
	CreatedAt     time.Time `json:"created_at,omitzero"`
	NotAfter      time.Time `json:"not_after,omitzero"`
	RemoveAfter   time.Time `json:"remove_after,omitzero"`
}

func toKeyRecord(k domain.SigningKey) keyRecord {
	return keyRecord{
		ID:            k.ID,
		Algorithm:     k.Algorithm,
		SealedPrivate: k.SealedPrivate,
		PublicJWK:     k.PublicJWK,
		CreatedAt:     k.CreatedAt.UTC(),
		NotAfter:      k.NotAfter.UTC(),
		RemoveAfter:   k.RemoveAfter.UTC(),
	}
}

func (r keyRecord) domain() domain.SigningKey {
	return domain.SigningKey{
		ID:            r.ID,
		Algorithm:     r.Algorithm,
		SealedPrivate: r.SealedPrivate,
		PublicJWK:     r.PublicJWK,
		CreatedAt:     r.CreatedAt,
		NotAfter:      r.NotAfter,
		RemoveAfter:   r.RemoveAfter,
	}
}

package usecase

import (
	"context"
	"errors"
	"fmt"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// Clients finds the client behind a client_id and authenticates it: the
// one place every use case that meets a client goes through. Registered
// clients come from the store; a client_id that is a URL is resolved
// through its client ID metadata document (CIMD) when a fetcher is
// configured. So the two kinds of client differ only in where their
// metadata comes from; transactions, codes and grants are bound to the
// client_id string either way.
type Clients struct {
	store ports.ClientStore
	// documents fetches client ID metadata documents; nil turns CIMD off,
	// and URL client_ids are then unknown clients.
	documents ports.MetadataFetcher
	policy    ClientPolicy
	// assertions authenticates private_key_jwt clients; nil turns the
	// method off.
	assertions *clientAssertions
}

// NewClients builds the client directory; documents may be nil.
func NewClients(store ports.ClientStore, documents ports.MetadataFetcher, policy ClientPolicy) (*Clients, error) {
	if err := need("NewClients", dep("client store", store)); err != nil {
		return nil, err
	}
	if isNil(documents) {
		documents = nil // a typed nil would pass the "CIMD is off" check below
	}
	return &Clients{store: store, documents: documents, policy: policy}, nil
}

// lookup finds the client behind clientID.
//
// Errors: domain.ErrNotFound (wrapped) for an unknown client, an
// invalid_client *domain.Error when a document client cannot be used (its
// description is safe to show and names no internal detail), the fetcher's
// temporarily_unavailable *domain.Error when it cannot fetch right now,
// anything else for a store failure.
func (c *Clients) lookup(ctx context.Context, clientID string) (domain.Client, error) {
	if !domain.IsClientIDURL(clientID) {
		client, err := c.store.GetClient(ctx, clientID)
		if err != nil {
			return domain.Client{}, fmt.Errorf("get client: %w", err)
		}
		return client, nil
	}
	if c.documents == nil {
		// CIMD is off: a URL is just an id nobody registered.
		return domain.Client{}, fmt.Errorf("client metadata documents are disabled: %w", domain.ErrNotFound)
	}
	u, err := domain.ValidateClientIDURL(clientID, c.policy.AllowIPLiteral)
	if err != nil {
		return domain.Client{}, domain.ErrInvalidClient("the client_id is not an acceptable client metadata document URL: " + err.Error())
	}
	doc, err := c.documents.FetchClientMetadata(ctx, clientID)
	if e, ok := domain.AsError(err); ok && e.Code == domain.CodeTemporarilyUnavailable {
		// The fetcher's limits refused the fetch (too many at once): the
		// client may be fine, so it must not be told it is invalid.
		return domain.Client{}, e
	}
	if err != nil {
		return domain.Client{}, domain.ErrInvalidClient("the application's client metadata document could not be retrieved, or is not a JSON document").WithCause(err)
	}
	return clientFromDocument(clientID, u.Host, doc, c.policy, c.keyChecker())
}

// authenticate checks the credentials presented at /token, /revoke or
// /introspect. Every failure is the same invalid_client, so the answer
// does not tell an attacker whether the client exists.
func (c *Clients) authenticate(ctx context.Context, a ports.ClientAuth) (domain.Client, error) {
	if a.Method == domain.AuthPrivateKeyJWT {
		return c.authenticateAssertion(ctx, a)
	}
	if a.ClientID == "" {
		return domain.Client{}, authFailed(errors.New("no client_id"))
	}
	client, err := c.find(ctx, a.ClientID)
	if err != nil {
		return domain.Client{}, err
	}
	if client.UsesKeys() {
		// Its registration says how it proves itself; a secret (or
		// nothing) is not that.
		return domain.Client{}, authFailed(errors.New("a private_key_jwt client sent no client assertion"))
	}
	if client.IsPublic() {
		// Some SDKs send "Authorization: Basic base64(id:)" for public
		// clients; an empty secret is harmless, a non-empty one is a
		// confused client.
		if a.Secret != "" {
			return domain.Client{}, authFailed(errors.New("secret presented by a public client"))
		}
		return client, nil
	}
	if a.Method == domain.AuthNone || a.Secret == "" {
		return domain.Client{}, authFailed(errors.New("confidential client sent no secret"))
	}
	if !domain.EqualHash(a.Secret, string(client.SecretHash)) {
		return domain.Client{}, authFailed(errors.New("wrong client secret"))
	}
	return client, nil
}

// authFailed is the one answer to failed client authentication.
func authFailed(cause error) error {
	return domain.ErrInvalidClient("client authentication failed").WithCause(cause)
}

// find looks up the client a request authenticates as, with the answers
// of authenticate: invalid_client for an unknown client, the document's
// own invalid_client or temporarily_unavailable for a document client,
// server_error for a store failure.
func (c *Clients) find(ctx context.Context, clientID string) (domain.Client, error) {
	client, err := c.lookup(ctx, clientID)
	if errors.Is(err, domain.ErrNotFound) {
		return domain.Client{}, authFailed(errors.New("unknown client"))
	}
	if e, ok := domain.AsError(err); ok {
		// A client metadata document that cannot be used: still
		// invalid_client, with the document's problem as the description
		// (the document is public, so this tells an attacker nothing).
		return domain.Client{}, e
	}
	if err != nil {
		return domain.Client{}, serverError(fmt.Errorf("authenticate client: %w", err))
	}
	return client, nil
}

// clientFromDocument judges a fetched document: the client_id must match
// the URL, no shared secret may be involved, and the registration rules
// (redirect URIs, application type, grant types, text fields, keys) apply
// as they would to POST /register.
func clientFromDocument(clientID, host string, doc ports.ClientMetadataDocument, policy ClientPolicy, keys keyChecker) (domain.Client, error) {
	invalid := func(reason string) error {
		// The cause names the host, for the operator's log; never the
		// document itself.
		return domain.ErrInvalidClient("the application's client metadata document is invalid: " + reason).
			WithCause(fmt.Errorf("client metadata document at %s: %s", host, reason))
	}
	if doc.ClientID == "" {
		return domain.Client{}, invalid("client_id is missing")
	}
	// Simple string comparison (RFC 3986 6.2.1): no normalisation, or two
	// spellings of one URL would name different documents.
	if doc.ClientID != clientID {
		return domain.Client{}, invalid("its client_id does not equal the URL it was fetched from")
	}
	if doc.DeclaresSecret {
		return domain.Client{}, invalid("a published document must not contain a client secret")
	}
	md := doc.Metadata
	switch domain.AuthMethod(md.TokenEndpointAuthMethod) {
	case "", domain.AuthNone:
		md.TokenEndpointAuthMethod = string(domain.AuthNone)
	case domain.AuthPrivateKeyJWT:
		// The document publishes the client's public keys (jwks or
		// jwks_uri): the one way a document client can be confidential.
	case domain.AuthClientSecretBasic, domain.AuthClientSecretPost, "client_secret_jwt":
		return domain.Client{}, invalid("a shared-secret token_endpoint_auth_method cannot be used with a published document")
	default:
		return domain.Client{}, invalid(`token_endpoint_auth_method must be "none" or "private_key_jwt"`)
	}
	c, err := buildClient(md, policy, keys)
	if err != nil {
		if e, ok := domain.AsError(err); ok {
			return domain.Client{}, invalid(e.Description)
		}
		return domain.Client{}, invalid("its metadata is not acceptable")
	}
	c.ID = clientID
	return c, nil
}

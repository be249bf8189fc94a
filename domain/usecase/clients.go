package usecase

import (
	"context"
	"fmt"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// lookupClient finds the client behind a client_id: registered clients come
// from the store, and a client_id that is a URL is resolved through its
// client ID metadata document (CIMD) when the fetcher is configured. Every
// use case that needs a client goes through here, so the two kinds of client
// differ only in where their metadata comes from; transactions, codes and
// grants are bound to the client_id string either way.
//
// Errors: domain.ErrNotFound (wrapped) for an unknown client, an
// invalid_client *domain.Error when a document client cannot be used (its
// description is safe to show and names no internal detail), the fetcher's
// temporarily_unavailable *domain.Error when it cannot fetch right now,
// anything else for a store failure.
func lookupClient(ctx context.Context, d Deps, clientID string) (domain.Client, error) {
	if !domain.IsClientIDURL(clientID) {
		c, err := d.Store.GetClient(ctx, clientID)
		if err != nil {
			return domain.Client{}, fmt.Errorf("get client: %w", err)
		}
		return c, nil
	}
	if d.ClientMetadata == nil {
		// CIMD is off: a URL is just an id nobody registered.
		return domain.Client{}, fmt.Errorf("client metadata documents are disabled: %w", domain.ErrNotFound)
	}
	u, err := domain.ValidateClientIDURL(clientID, d.Settings.ClientIDURLAllowIPLiteral)
	if err != nil {
		return domain.Client{}, domain.ErrInvalidClient("the client_id is not an acceptable client metadata document URL: " + err.Error())
	}
	doc, err := d.ClientMetadata.FetchClientMetadata(ctx, clientID)
	if e, ok := domain.AsError(err); ok && e.Code == domain.CodeTemporarilyUnavailable {
		// The fetcher's limits refused the fetch (too many at once): the
		// client may be fine, so it must not be told it is invalid.
		return domain.Client{}, e
	}
	if err != nil {
		return domain.Client{}, domain.ErrInvalidClient("the application's client metadata document could not be retrieved, or is not a JSON document").WithCause(err)
	}
	c, err := clientFromDocument(clientID, u.Host, doc, d.Settings.RedirectPatterns)
	if err != nil {
		return domain.Client{}, err
	}
	return c, nil
}

// clientFromDocument judges a fetched document: the client_id must match
// the URL, no shared secret may be involved, and the registration rules
// (redirect URIs, application type, grant types, text fields) apply as they
// would to POST /register.
func clientFromDocument(clientID, host string, doc ports.ClientMetadataDocument, patterns []domain.RedirectPattern) (domain.Client, error) {
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
	switch domain.AuthMethod(doc.Metadata.TokenEndpointAuthMethod) {
	case "", domain.AuthNone:
	case domain.AuthClientSecretBasic, domain.AuthClientSecretPost, "client_secret_jwt":
		return domain.Client{}, invalid("a shared-secret token_endpoint_auth_method cannot be used with a published document")
	default:
		return domain.Client{}, invalid(`token_endpoint_auth_method must be "none"`)
	}
	md := doc.Metadata
	md.TokenEndpointAuthMethod = string(domain.AuthNone)
	c, err := buildClient(md, patterns)
	if err != nil {
		if e, ok := domain.AsError(err); ok {
			return domain.Client{}, invalid(e.Description)
		}
		return domain.Client{}, invalid("its metadata is not acceptable")
	}
	c.ID = clientID
	return c, nil
}

package usecase

import (
	"errors"
	"log/slog"
	"time"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// Settings are the policy knobs of the authorization server, resolved from
// configuration by the composition root.
type Settings struct {
	// Issuer is our issuer identifier, byte-equal to the metadata's issuer.
	Issuer string
	// Resource is the canonical URI of the protected MCP server: the default
	// and only accepted RFC 8707 resource, and the audience of our tokens.
	Resource string
	// SupportedScopes are the scopes a client may request.
	SupportedScopes []string
	// DefaultScopes are granted when a client requests none.
	DefaultScopes []string
	// AccessTokenTTL and RefreshTokenTTL bound our tokens.
	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	// RefreshReuseGrace is how long after a rotation a second use of the
	// rotated token by its client, while the successor is unused, counts
	// as a retry after a lost response instead of theft; zero is strict.
	RefreshReuseGrace time.Duration
	// Consent decides when the consent page is shown.
	Consent domain.ConsentMode
	// RedirectPatterns, when non-empty, restrict the redirect URIs clients
	// may register.
	RedirectPatterns []domain.RedirectPattern
	// ForwardResource sends the client's resource indicator upstream.
	ForwardResource bool
	// ClientIDURLAllowIPLiteral lets client_id URLs (client ID metadata
	// documents) name IP literals: the private-network allowance of
	// development and tests, which the fetcher mirrors for the addresses it
	// connects to.
	ClientIDURLAllowIPLiteral bool
	// IntrospectionSecretHash, when set, is the hash (domain.HashToken) of
	// the secret resource servers present at /introspect.
	IntrospectionSecretHash string
}

func (s Settings) validate() error {
	var errs []error
	if s.Issuer == "" {
		errs = append(errs, errors.New("usecase: issuer is empty"))
	}
	if s.Resource == "" {
		errs = append(errs, errors.New("usecase: resource is empty"))
	}
	if s.AccessTokenTTL <= 0 || s.RefreshTokenTTL <= 0 {
		errs = append(errs, errors.New("usecase: token lifetimes must be positive"))
	}
	if s.RefreshReuseGrace < 0 {
		errs = append(errs, errors.New("usecase: the refresh reuse grace must not be negative"))
	}
	if !s.Consent.Valid() {
		errs = append(errs, errors.New("usecase: unknown consent mode"))
	}
	return errors.Join(errs...)
}

// Deps are the outbound ports every handler draws from. Constructors reject
// nil dependencies immediately, so a wiring mistake fails at start-up.
type Deps struct {
	Store    ports.Store
	Provider ports.IdentityProvider
	Tokens   ports.TokenIssuer
	Sealer   ports.Sealer
	Clock    ports.Clock
	Random   ports.Random
	// ClientMetadata fetches client ID metadata documents; nil turns CIMD
	// off, and URL client_ids are then unknown clients.
	ClientMetadata ports.MetadataFetcher
	Settings       Settings
	// Logger receives best-effort failures that do not change the answer
	// (an upstream revocation that failed after the local one succeeded).
	Logger *slog.Logger
}

// Check reports missing dependencies and invalid settings.
func (d Deps) Check() error {
	var errs []error
	if d.Store == nil {
		errs = append(errs, errors.New("usecase: nil store"))
	}
	if d.Provider == nil {
		errs = append(errs, errors.New("usecase: nil identity provider"))
	}
	if d.Tokens == nil {
		errs = append(errs, errors.New("usecase: nil token issuer"))
	}
	if d.Sealer == nil {
		errs = append(errs, errors.New("usecase: nil sealer"))
	}
	if d.Clock == nil {
		errs = append(errs, errors.New("usecase: nil clock"))
	}
	if d.Random == nil {
		errs = append(errs, errors.New("usecase: nil random source"))
	}
	if d.Logger == nil {
		errs = append(errs, errors.New("usecase: nil logger"))
	}
	errs = append(errs, d.Settings.validate())
	return errors.Join(errs...)
}

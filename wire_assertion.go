package oidcproxy

import (
	"net/http"

	"github.com/google/wire"

	"github.com/oidcproxy/oidcproxy/adapters/assertion"
	"github.com/oidcproxy/oidcproxy/adapters/config"
	"github.com/oidcproxy/oidcproxy/ports"
)

// assertionSet verifies client assertions (private_key_jwt) and, when
// TRUSTED_ID_JAG_ISSUERS names some, holds the trusted issuers' keys for
// the jwt-bearer grant.
var assertionSet = wire.NewSet(
	assertion.ProviderSet,
	ProvideIssuerKeys,
)

// ProvideIssuerKeys is the key source of the trusted ID-JAG issuers, or
// nil when TRUSTED_ID_JAG_ISSUERS is empty. It fetches with the upstream
// client: the operator chose these IdPs, as it chose the upstream one.
func ProvideIssuerKeys(cfg config.Config, client *http.Client, clock ports.Clock) (ports.IssuerKeys, error) {
	if len(cfg.TrustedIDJAGIssuers) == 0 {
		return nil, nil
	}
	keys, err := assertion.NewIssuers(assertion.IssuerOptions{Issuers: cfg.TrustedIDJAGIssuers, Client: client, Now: clock.Now})
	if err != nil {
		return nil, err
	}
	return keys, nil
}

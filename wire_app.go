package oidcproxy

import (
	"github.com/google/wire"

	"github.com/oidcproxy/oidcproxy/ports"
)

// How the App is built: one provider set per part, each declared in the
// file named for it (wire_<part>.go) beside the functions that map the
// configuration onto its adapter's options. An adapter whose constructor
// takes its own options and ports offers its own ProviderSet (seal,
// tokens, cimd, assertion, httpapi), which that file includes; adding an
// adapter is its package, its file here, and one line below.
var appSet = wire.NewSet(
	telemetrySet, // wire_telemetry.go: telemetry, the logger, the upstream HTTP client
	storeSet,     // wire_store.go: the store, observed
	keySet,       // wire_keys.go: the master key, the sealer and cookie key, the signing key ring
	policySet,    // wire_policy.go: the access policy file
	identitySet,  // wire_provider.go: the upstream identity provider, from the registry
	limitsSet,    // wire_limits.go: the abuse limits and the client address
	cimdSet,      // wire_cimd.go: the client metadata document and jwks_uri fetcher
	assertionSet, // wire_assertion.go: client assertions, the ID-JAG issuers' keys
	useCaseSet,   // wire_usecase.go: the settings and the use cases
	gatewaySet,   // wire_gateway.go: the MCP gateway, when MCP_UPSTREAM is set
	httpAPISet,   // wire_httpapi.go: the HTTP API
	NewApp,
)

// productionSet is what production supplies and tests replace: the store
// from DATABASE_URL or STORE_PATH, the wall clock, standard error,
// telemetry from the OTEL_* environment, the system's root CAs.
var productionSet = wire.NewSet(
	ProvideStore,
	clockSet,
	ProvideLogOutput,
	ProvideTelemetryOptions,
	wire.Value(CIMDRootCAs{}),
)

// clockSet is the wall clock.
var clockSet = wire.NewSet(wire.Value(SystemClock{}), wire.Bind(new(ports.Clock), new(SystemClock)))

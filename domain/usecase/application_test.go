package usecase_test

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/memstore"
	"github.com/oidcproxy/oidcproxy/adapters/seal"
	"github.com/oidcproxy/oidcproxy/adapters/tokens"
	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/domain/usecase"
)

// Wiring mistakes fail at construction, with every gap named, not at the
// first request.
func TestConstructorsRejectMissingDependencies(t *testing.T) {
	store := memstore.New()
	key := make([]byte, seal.KeySize)
	_, _ = rand.Read(key)
	sealer, err := seal.New(key)
	require.NoError(t, err)
	c := &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	iss, err := tokens.Open(t.Context(), store, sealer, c)
	require.NoError(t, err)
	settings := usecase.Settings{Issuer: issuer, Resource: resource, AccessTokenTTL: time.Hour, RefreshTokenTTL: time.Hour, Consent: domain.ConsentAlways}

	_, err = usecase.NewApplication(store, newScriptedIdP(), iss, sealer, c, random{}, nil, nil, nil, usecase.Settings{Resource: resource, Consent: "sometimes"})
	require.ErrorContains(t, err, "nil logger")
	require.ErrorContains(t, err, "issuer is empty")
	require.ErrorContains(t, err, "token lifetimes must be positive")
	require.ErrorContains(t, err, "unknown consent mode")

	var typedNil *memstore.Store
	_, err = usecase.NewApplication(typedNil, newScriptedIdP(), iss, sealer, c, random{}, nil, nil, discardLogger(), settings)
	require.ErrorContains(t, err, "nil store", "a typed nil is nil")

	clients, err := usecase.NewClients(store, nil, usecase.ClientPolicy{})
	require.NoError(t, err)
	_, err = usecase.NewExchangeToken(clients, store, nil, c, nil, settings.Tokens())
	require.ErrorContains(t, err, "NewExchangeToken: nil token issuer")
	require.ErrorContains(t, err, "NewExchangeToken: nil random source")
	_, err = usecase.NewRefreshToken(clients, store, newScriptedIdP(), nil, sealer, iss, c, random{}, usecase.TokenPolicy{Issuer: issuer, AccessTokenTTL: time.Hour, RefreshTokenTTL: time.Hour, RefreshReuseGrace: -time.Second})
	require.ErrorContains(t, err, "grace must not be negative")
	_, err = usecase.NewVerifyAccessToken(iss, store, nil, c, "")
	require.ErrorContains(t, err, "issuer is empty")
	require.ErrorContains(t, err, "NewVerifyAccessToken: nil sealer")
	_, err = usecase.NewSweepExpired(nil, nil, c, usecase.SweepPolicy{})
	require.ErrorContains(t, err, "NewSweepExpired: nil store")

	// A handler built alone, with only what it declares, works.
	verify, err := usecase.NewVerifyAccessToken(iss, store, sealer, c, issuer)
	require.NoError(t, err)
	require.NotNil(t, verify)
}

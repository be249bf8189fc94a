package usecase_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/domain/usecase"
	"github.com/oidcproxy/oidcproxy/ports"
)

func TestRegistrationBeyondTheBoundIsRefusedAsTemporarilyUnavailable(t *testing.T) {
	h := newHarness(t, func(s *usecase.Settings) { s.MaxClients = 2 })
	h.register(t)
	h.register(t)
	_, err := h.app.RegisterClient.Handle(t.Context(), ports.RegisterClientCommand{RedirectURIs: []string{"http://127.0.0.1:7777/cb"}})
	e, ok := domain.AsError(err)
	require.True(t, ok, "%v", err)
	require.Equal(t, domain.CodeTemporarilyUnavailable, e.Code)
	require.Contains(t, e.Description, "no more client registrations")
	require.ErrorIs(t, err, domain.ErrLimitReached)
}

func TestANeverUsedRegistrationIsSweptAfterItsLifetimeAndAUsedOneStays(t *testing.T) {
	const ttl = 24 * time.Hour
	h := newHarness(t, func(s *usecase.Settings) { s.UnusedClientTTL = ttl; s.MaxClients = 2 })
	unused := h.register(t)
	used := h.register(t)
	h.login(t, used)

	h.clock.Advance(ttl - time.Second)
	_, err := h.app.SweepExpired.Handle(t.Context())
	require.NoError(t, err)
	_, err = h.store.GetClient(t.Context(), unused.id)
	require.NoError(t, err, "a client younger than the lifetime stays")

	h.clock.Advance(2 * time.Second)
	_, err = h.app.SweepExpired.Handle(t.Context())
	require.NoError(t, err)
	_, err = h.store.GetClient(t.Context(), unused.id)
	require.ErrorIs(t, err, domain.ErrNotFound)
	_, err = h.store.GetClient(t.Context(), used.id)
	require.NoError(t, err)
	h.login(t, used) // and it still signs in

	// The swept client made room under the bound.
	h.register(t)
}

func TestWithoutALifetimeUnusedRegistrationsStay(t *testing.T) {
	h := newHarness(t, nil)
	c := h.register(t)
	h.clock.Advance(10 * 365 * 24 * time.Hour)
	_, err := h.app.SweepExpired.Handle(t.Context())
	require.NoError(t, err)
	_, err = h.store.GetClient(t.Context(), c.id)
	require.NoError(t, err)
}

func TestNegativeHygieneSettingsAreRefused(t *testing.T) {
	for _, edit := range []func(*usecase.Settings){
		func(s *usecase.Settings) { s.MaxClients = -1 },
		func(s *usecase.Settings) { s.UnusedClientTTL = -time.Hour },
	} {
		s := usecase.Settings{
			Issuer: issuer, Resource: resource, AccessTokenTTL: time.Hour, RefreshTokenTTL: time.Hour, Consent: domain.ConsentOff,
		}
		edit(&s)
		_, err := usecase.NewApplication(nil, nil, nil, nil, nil, nil, nil, nil, nil, s)
		require.ErrorContains(t, err, "must not be negative")
	}
}

package usecase

import (
	"context"
	"fmt"
	"time"

	"github.com/oidcproxy/oidcproxy/ports"
)

// SweepPolicy is what the sweeper removes besides expired records.
type SweepPolicy struct {
	// UnusedClientTTL is how long a self-registered client that never
	// completed a grant is kept; zero keeps it forever.
	UnusedClientTTL time.Duration
}

// SweepExpiredHandler removes expired records from the store, and the
// self-registered clients nobody ever signed in through.
type SweepExpiredHandler struct {
	store   ports.Sweeper
	clients ports.RegistrationStore
	clock   ports.Clock
	policy  SweepPolicy
}

var _ ports.SweepExpired = (*SweepExpiredHandler)(nil)

// NewSweepExpired builds the sweeper use case.
func NewSweepExpired(store ports.Sweeper, clients ports.RegistrationStore, clock ports.Clock, policy SweepPolicy) (*SweepExpiredHandler, error) {
	if err := need("NewSweepExpired", dep("store", store), dep("client store", clients), dep("clock", clock)); err != nil {
		return nil, err
	}
	return &SweepExpiredHandler{store: store, clients: clients, clock: clock, policy: policy}, nil
}

// Handle sweeps everything that expired before now, then the unused
// clients older than the policy's lifetime, and reports how many records
// went. Abandoned authorizations need no rule of their own: a transaction
// expires (TransactionTTL) and goes with the expired records.
func (h *SweepExpiredHandler) Handle(ctx context.Context) (int, error) {
	now := h.clock.Now().UTC()
	n, err := h.store.Sweep(ctx, now)
	if err != nil {
		return n, fmt.Errorf("sweep: %w", err)
	}
	if h.policy.UnusedClientTTL <= 0 {
		return n, nil
	}
	m, err := h.clients.SweepUnusedClients(ctx, now.Add(-h.policy.UnusedClientTTL))
	if err != nil {
		return n + m, fmt.Errorf("sweep unused clients: %w", err)
	}
	return n + m, nil
}

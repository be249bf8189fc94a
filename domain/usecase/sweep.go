package usecase

import (
	"context"
	"fmt"

	"github.com/oidcproxy/oidcproxy/ports"
)

// SweepExpiredHandler removes expired records from the store.
type SweepExpiredHandler struct {
	store ports.Sweeper
	clock ports.Clock
}

var _ ports.SweepExpired = (*SweepExpiredHandler)(nil)

// NewSweepExpired builds the sweeper use case.
func NewSweepExpired(store ports.Sweeper, clock ports.Clock) (*SweepExpiredHandler, error) {
	if err := need("NewSweepExpired", dep("store", store), dep("clock", clock)); err != nil {
		return nil, err
	}
	return &SweepExpiredHandler{store: store, clock: clock}, nil
}

// Handle sweeps everything that expired before now.
func (h *SweepExpiredHandler) Handle(ctx context.Context) (int, error) {
	n, err := h.store.Sweep(ctx, h.clock.Now().UTC())
	if err != nil {
		return n, fmt.Errorf("sweep: %w", err)
	}
	return n, nil
}

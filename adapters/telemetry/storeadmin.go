package telemetry

import (
	"context"
	"time"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// The store's operator methods (ports.ClientAdmin, ports.GrantAdmin), each
// one span and one latency measurement like every other write.

// ListClients implements ports.ClientAdmin.
func (s *store) ListClients(ctx context.Context, page ports.Page) ([]domain.Client, error) {
	return call(ctx, s, "ListClients", func(ctx context.Context) ([]domain.Client, error) { return s.next.ListClients(ctx, page) })
}

// DeleteClient implements ports.ClientAdmin.
func (s *store) DeleteClient(ctx context.Context, id string) (int, error) {
	return call(ctx, s, "DeleteClient", func(ctx context.Context) (int, error) { return s.next.DeleteClient(ctx, id) })
}

// ListGrants implements ports.GrantAdmin.
func (s *store) ListGrants(ctx context.Context, filter ports.GrantFilter, page ports.Page, now time.Time) ([]domain.Grant, error) {
	return call(ctx, s, "ListGrants", func(ctx context.Context) ([]domain.Grant, error) {
		return s.next.ListGrants(ctx, filter, page, now)
	})
}

// RevokeGrants implements ports.GrantAdmin.
func (s *store) RevokeGrants(ctx context.Context, filter ports.GrantFilter) (int, error) {
	return call(ctx, s, "RevokeGrants", func(ctx context.Context) (int, error) { return s.next.RevokeGrants(ctx, filter) })
}

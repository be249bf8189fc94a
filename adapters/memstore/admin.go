package memstore

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// The operator's methods. A memory store serves development and tests, so
// they scan the maps instead of keeping indexes of their own: sorting a
// few thousand ids is instant, and an index would be one more thing every
// write must keep right.

// errEmptyFilter refuses a revocation that would select every grant.
var errEmptyFilter = errors.New("a revocation needs a subject, a client or a grant id")

// errBadLimit refuses a page without a positive size.
var errBadLimit = errors.New("page limit must be positive")

// ListClients returns up to page.Limit clients whose id sorts after
// page.After, in id order.
func (s *Store) ListClients(ctx context.Context, page ports.Page) ([]domain.Client, error) {
	const op = "list clients"
	if page.Limit <= 0 {
		return nil, fail(op, errBadLimit)
	}
	if err := s.lock(ctx, op); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.clients))
	for id := range s.clients {
		if id > page.After {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	out := make([]domain.Client, 0, min(page.Limit, len(ids)))
	for _, id := range ids[:min(page.Limit, len(ids))] {
		out = append(out, cloneClient(s.clients[id]))
	}
	return out, nil
}

// DeleteClient deletes a client and every grant of it under one lock.
func (s *Store) DeleteClient(ctx context.Context, id string) (int, error) {
	const op = "delete client"
	if err := s.lock(ctx, op); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return 0, fail(op, domain.ErrNotFound)
	}
	delete(s.clients, id)
	if !c.Operator {
		s.registered-- // the registration bound counts self-registered clients
	}
	return s.revokeMatching(ports.GrantFilter{ClientID: id}), nil
}

// ListGrants returns up to page.Limit live grants that match filter and
// whose id sorts after page.After, in id order.
func (s *Store) ListGrants(ctx context.Context, filter ports.GrantFilter, page ports.Page, now time.Time) ([]domain.Grant, error) {
	const op = "list grants"
	if page.Limit <= 0 {
		return nil, fail(op, errBadLimit)
	}
	if err := s.lock(ctx, op); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var ids []string
	for id, g := range s.grants {
		if id > page.After && matches(g, filter) && !g.Expired(now) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	out := make([]domain.Grant, 0, min(page.Limit, len(ids)))
	for _, id := range ids[:min(page.Limit, len(ids))] {
		out = append(out, cloneGrant(s.grants[id]))
	}
	return out, nil
}

// RevokeGrants deletes every grant that matches filter, with its codes and
// refresh tokens, under one lock.
func (s *Store) RevokeGrants(ctx context.Context, filter ports.GrantFilter) (int, error) {
	const op = "revoke grants"
	if filter.IsEmpty() {
		return 0, fail(op, errEmptyFilter)
	}
	if err := s.lock(ctx, op); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	return s.revokeMatching(filter), nil
}

// revokeMatching deletes the grants filter selects and reports how many.
// The caller holds the mutex.
func (s *Store) revokeMatching(filter ports.GrantFilter) int {
	n := 0
	for id, g := range s.grants {
		if matches(g, filter) {
			s.deleteGrant(id)
			n++
		}
	}
	return n
}

// matches reports whether g is selected by filter.
func matches(g domain.Grant, f ports.GrantFilter) bool {
	return (f.Subject == "" || g.Subject == f.Subject) &&
		(f.ClientID == "" || g.ClientID == f.ClientID) &&
		(f.GrantID == "" || g.ID == f.GrantID)
}

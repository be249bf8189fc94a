package memstore

import (
	"context"
	"time"

	"github.com/oidcproxy/oidcproxy/domain"
)

// insertClient stores a new client and counts it when it registered
// itself; max, when positive, bounds those. The caller holds the mutex.
func (s *Store) insertClient(op string, c domain.Client, max int) error {
	if _, ok := s.clients[c.ID]; ok {
		return fail(op, domain.ErrAlreadyExists)
	}
	if !c.Operator {
		if max > 0 && s.registered >= max {
			return fail(op, domain.ErrLimitReached)
		}
		s.registered++
	}
	s.clients[c.ID] = cloneClient(c)
	return nil
}

// RegisterClient stores a client that registered itself, unless max
// (when positive) such clients are stored already.
func (s *Store) RegisterClient(ctx context.Context, c domain.Client, max int) error {
	const op = "register client"
	if c.ID == "" {
		return fail(op, errEmptyKey)
	}
	if err := s.lock(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	return s.insertClient(op, c, max)
}

// markClientUsed records the first grant of a stored client. The caller
// holds the mutex.
func (s *Store) markClientUsed(id string, at time.Time) {
	c, ok := s.clients[id]
	if !ok || !c.FirstGrantAt.IsZero() {
		return
	}
	c.FirstGrantAt = utc(at)
	s.clients[id] = c
}

// SweepUnusedClients deletes the self-registered clients that never
// completed a grant and were created before createdBefore. It scans every
// client: this store holds a development deployment's handful.
func (s *Store) SweepUnusedClients(ctx context.Context, createdBefore time.Time) (int, error) {
	const op = "sweep unused clients"
	if err := s.lock(ctx, op); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	n := 0
	for id, c := range s.clients {
		if !c.Operator && c.FirstGrantAt.IsZero() && c.CreatedAt.Before(createdBefore) {
			delete(s.clients, id)
			s.registered--
			n++
		}
	}
	return n, nil
}

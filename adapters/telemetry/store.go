package telemetry

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// Store outcomes: the oidcproxy.store.outcome attribute and label. Only
// "error" is a failure of the store; the others are answers the use cases
// expect and act on.
const (
	outcomeOK              = "ok"
	outcomeNotFound        = "not_found"
	outcomeAlreadyExists   = "already_exists"
	outcomeAlreadyConsumed = "already_consumed"
	outcomeRejected        = "rejected" // a closure of the use case refused the record
	outcomeLimitReached    = "limit_reached"
	outcomeCanceled        = "canceled"
	outcomeError           = "error"
)

var storeOutcomes = []string{
	outcomeOK, outcomeNotFound, outcomeAlreadyExists, outcomeAlreadyConsumed,
	outcomeRejected, outcomeLimitReached, outcomeCanceled, outcomeError,
}

// storeOutcome classifies a store error.
func storeOutcome(err error) string {
	switch {
	case err == nil:
		return outcomeOK
	case errors.Is(err, domain.ErrNotFound):
		return outcomeNotFound
	case errors.Is(err, domain.ErrAlreadyExists):
		return outcomeAlreadyExists
	case errors.Is(err, domain.ErrAlreadyConsumed):
		return outcomeAlreadyConsumed
	case errors.Is(err, domain.ErrLimitReached):
		return outcomeLimitReached
	case errors.Is(err, context.Canceled):
		return outcomeCanceled
	}
	if e, ok := domain.AsError(err); ok && !serverSide(e.Code) {
		return outcomeRejected
	}
	return outcomeError
}

// newStoreFamily describes the store decorator: a span named
// "store.<method>" with db.operation.name and the outcome, status Error
// only for a failing store, and the duration per method and outcome.
func (t *Telemetry) newStoreFamily() *family {
	return &family{
		t:        t,
		prefix:   "store.",
		duration: t.inst.storeDuration,
		classify: func(err error) (string, attribute.KeyValue) {
			o := storeOutcome(err)
			return o, keyStoreOutcome.String(o)
		},
		labels: storeOutcomes,
		fault:  func(label string) bool { return label == outcomeError },
		static: func(name string) []attribute.KeyValue {
			return []attribute.KeyValue{semconv.DBOperationName(name)}
		},
		metricAttrs: func(name, label string) []attribute.KeyValue {
			return []attribute.KeyValue{semconv.DBOperationName(name), keyStoreOutcome.String(label)}
		},
	}
}

// Store wraps s so that every call opens a span ("store.RedeemCode") under
// the use case's span and records its latency per operation and outcome.
// It also counts what only the store sees: a rotated refresh token
// presented again (RotateRefreshToken answers ErrAlreadyConsumed, and the
// store has revoked the grant), a redeemed authorization code presented
// again, and the records the sweeper deletes. GetClient and GetGrant are
// measured without a span: they run on every token request and every
// proxied MCP request, and their spans cost more than the (cached) reads
// themselves; writes, where a transaction's latency matters when
// debugging, keep their spans. Ping passes through untraced: readiness
// probes call it every few seconds. No key, id or record content is
// recorded.
func (t *Telemetry) Store(s ports.Store) ports.Store {
	return &store{ops: t.store, next: s, inst: t.inst}
}

type store struct {
	ops  *family
	inst *instruments
	next ports.Store
}

var _ ports.Store = (*store)(nil)

// call observes a store method with a result; a new method is one line.
func call[T any](ctx context.Context, s *store, method string, fn func(context.Context) (T, error)) (T, error) {
	return observe(ctx, s.ops.op(method, ownSpan, ""), fn)
}

// exec observes a store method that returns only an error.
func exec(ctx context.Context, s *store, method string, fn func(context.Context) error) error {
	_, err := observe(ctx, s.ops.op(method, ownSpan, ""), func(ctx context.Context) (struct{}, error) {
		return struct{}{}, fn(ctx)
	})
	return err
}

// CreateClient implements ports.ClientStore.
func (s *store) CreateClient(ctx context.Context, c domain.Client) error {
	return exec(ctx, s, "CreateClient", func(ctx context.Context) error { return s.next.CreateClient(ctx, c) })
}

// GetClient implements ports.ClientStore (measured, not traced).
func (s *store) GetClient(ctx context.Context, id string) (domain.Client, error) {
	return observe(ctx, s.ops.op("GetClient", noSpan, ""), func(ctx context.Context) (domain.Client, error) {
		return s.next.GetClient(ctx, id)
	})
}

// RegisterClient implements ports.RegistrationStore.
func (s *store) RegisterClient(ctx context.Context, c domain.Client, max int) error {
	return exec(ctx, s, "RegisterClient", func(ctx context.Context) error { return s.next.RegisterClient(ctx, c, max) })
}

// SweepUnusedClients implements ports.RegistrationStore and counts the
// deleted clients with the swept records.
func (s *store) SweepUnusedClients(ctx context.Context, createdBefore time.Time) (int, error) {
	return call(ctx, s, "SweepUnusedClients", func(ctx context.Context) (int, error) {
		n, err := s.next.SweepUnusedClients(ctx, createdBefore)
		if n > 0 {
			trace.SpanFromContext(ctx).SetAttributes(keySwept.Int(n))
			s.inst.storeSwept.Add(ctx, int64(n))
		}
		return n, err
	})
}

// CreateTransaction implements ports.TransactionStore.
func (s *store) CreateTransaction(ctx context.Context, t domain.Transaction) error {
	return exec(ctx, s, "CreateTransaction", func(ctx context.Context) error { return s.next.CreateTransaction(ctx, t) })
}

// UpdateTransaction implements ports.TransactionStore.
func (s *store) UpdateTransaction(ctx context.Context, id string, now time.Time, fn func(*domain.Transaction) error) error {
	return exec(ctx, s, "UpdateTransaction", func(ctx context.Context) error { return s.next.UpdateTransaction(ctx, id, now, fn) })
}

// ConsumeTransaction implements ports.TransactionStore.
func (s *store) ConsumeTransaction(ctx context.Context, id string, now time.Time, check func(domain.Transaction) error) (domain.Transaction, error) {
	return call(ctx, s, "ConsumeTransaction", func(ctx context.Context) (domain.Transaction, error) {
		return s.next.ConsumeTransaction(ctx, id, now, check)
	})
}

// ReplaceTransaction implements ports.TransactionStore.
func (s *store) ReplaceTransaction(ctx context.Context, oldID string, now time.Time, check func(domain.Transaction) (domain.Transaction, error)) (domain.Transaction, error) {
	return call(ctx, s, "ReplaceTransaction", func(ctx context.Context) (domain.Transaction, error) {
		return s.next.ReplaceTransaction(ctx, oldID, now, check)
	})
}

// CreateGrant implements ports.GrantStore.
func (s *store) CreateGrant(ctx context.Context, g domain.Grant, code domain.AuthorizationCode) error {
	return exec(ctx, s, "CreateGrant", func(ctx context.Context) error { return s.next.CreateGrant(ctx, g, code) })
}

// CreateDirectGrant implements ports.GrantStore.
func (s *store) CreateDirectGrant(ctx context.Context, g domain.Grant) error {
	return exec(ctx, s, "CreateDirectGrant", func(ctx context.Context) error { return s.next.CreateDirectGrant(ctx, g) })
}

// ConsumeAssertionID implements ports.AssertionStore.
func (s *store) ConsumeAssertionID(ctx context.Context, issuer, jti string, now, expiresAt time.Time) error {
	return exec(ctx, s, "ConsumeAssertionID", func(ctx context.Context) error {
		return s.next.ConsumeAssertionID(ctx, issuer, jti, now, expiresAt)
	})
}

// GetGrant implements ports.GrantStore (measured, not traced).
func (s *store) GetGrant(ctx context.Context, id string, now time.Time) (domain.Grant, error) {
	return observe(ctx, s.ops.op("GetGrant", noSpan, ""), func(ctx context.Context) (domain.Grant, error) {
		return s.next.GetGrant(ctx, id, now)
	})
}

// RevokeGrant implements ports.GrantStore.
func (s *store) RevokeGrant(ctx context.Context, id string) error {
	return exec(ctx, s, "RevokeGrant", func(ctx context.Context) error { return s.next.RevokeGrant(ctx, id) })
}

// RedeemCode implements ports.GrantStore; a redeemed code presented again
// is counted as a replay.
func (s *store) RedeemCode(ctx context.Context, hash string, now time.Time, use domain.CodeUse) (domain.AuthorizationCode, domain.Grant, error) {
	var g domain.Grant
	c, err := call(ctx, s, "RedeemCode", func(ctx context.Context) (c domain.AuthorizationCode, err error) {
		c, g, err = s.next.RedeemCode(ctx, hash, now, use)
		s.detected(ctx, err, "authorization_code.replay_detected", s.inst.codeReplay)
		return c, err
	})
	return c, g, err
}

// RotateRefreshToken implements ports.GrantStore; a rotated token
// presented again is counted as reuse (the store has revoked the grant),
// and a retry within the grace window is marked on the span.
func (s *store) RotateRefreshToken(ctx context.Context, hash string, now time.Time, use domain.RefreshUse, rotate domain.Rotator) (domain.RefreshToken, domain.RefreshDecision, error) {
	var decision domain.RefreshDecision
	t, err := call(ctx, s, "RotateRefreshToken", func(ctx context.Context) (domain.RefreshToken, error) {
		var (
			t   domain.RefreshToken
			err error
		)
		t, decision, err = s.next.RotateRefreshToken(ctx, hash, now, use, rotate)
		s.detected(ctx, err, "refresh_token.reuse_detected", s.inst.refreshReuse)
		if err == nil && decision == domain.RefreshRetry {
			trace.SpanFromContext(ctx).AddEvent("refresh_token.retry_replaced_successor")
		}
		return t, err
	})
	return t, decision, err
}

// detected counts a single-use credential presented again (the store
// answers ErrAlreadyConsumed) and marks it on the span as an event.
func (s *store) detected(ctx context.Context, err error, event string, counter metric.Int64Counter) {
	if errors.Is(err, domain.ErrAlreadyConsumed) {
		trace.SpanFromContext(ctx).AddEvent(event)
		counter.Add(ctx, 1)
	}
}

// GetRefreshToken implements ports.GrantStore.
func (s *store) GetRefreshToken(ctx context.Context, hash string, now time.Time) (domain.RefreshToken, error) {
	return call(ctx, s, "GetRefreshToken", func(ctx context.Context) (domain.RefreshToken, error) {
		return s.next.GetRefreshToken(ctx, hash, now)
	})
}

// ListKeys implements ports.KeyStore.
func (s *store) ListKeys(ctx context.Context) ([]domain.SigningKey, error) {
	return call(ctx, s, "ListKeys", s.next.ListKeys)
}

// PutKey implements ports.KeyStore.
func (s *store) PutKey(ctx context.Context, k domain.SigningKey) error {
	return exec(ctx, s, "PutKey", func(ctx context.Context) error { return s.next.PutKey(ctx, k) })
}

// DeleteKey implements ports.KeyStore.
func (s *store) DeleteKey(ctx context.Context, id string) error {
	return exec(ctx, s, "DeleteKey", func(ctx context.Context) error { return s.next.DeleteKey(ctx, id) })
}

// Sweep implements ports.Sweeper and counts the deleted records.
func (s *store) Sweep(ctx context.Context, now time.Time) (int, error) {
	return call(ctx, s, "Sweep", func(ctx context.Context) (int, error) {
		n, err := s.next.Sweep(ctx, now)
		if n > 0 {
			trace.SpanFromContext(ctx).SetAttributes(keySwept.Int(n))
			s.inst.storeSwept.Add(ctx, int64(n))
		}
		return n, err
	})
}

// Ping implements ports.Pinger, untraced.
func (s *store) Ping(ctx context.Context) error { return s.next.Ping(ctx) }

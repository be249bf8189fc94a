package telemetry

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
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
	outcomeCanceled        = "canceled"
	outcomeError           = "error"
)

var storeOutcomes = []string{
	outcomeOK, outcomeNotFound, outcomeAlreadyExists, outcomeAlreadyConsumed,
	outcomeRejected, outcomeCanceled, outcomeError,
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
	case errors.Is(err, context.Canceled):
		return outcomeCanceled
	}
	if e, ok := domain.AsError(err); ok && !serverSide(e.Code) {
		return outcomeRejected
	}
	return outcomeError
}

// storeOp is one store operation with its attribute sets built once.
type storeOp struct {
	spanName string
	attr     attribute.KeyValue
	// outcomes are ready variadic arguments (see useCase.ok).
	outcomes map[string][]metric.RecordOption
	outAttr  map[string]attribute.KeyValue
}

func newStoreOp(name string) *storeOp {
	op := &storeOp{
		spanName: "store." + name,
		attr:     semconv.DBOperationName(name),
		outcomes: map[string][]metric.RecordOption{},
		outAttr:  map[string]attribute.KeyValue{},
	}
	for _, o := range storeOutcomes {
		op.outAttr[o] = keyStoreOutcome.String(o)
		op.outcomes[o] = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(op.attr, op.outAttr[o]))}
	}
	return op
}

// storeOps describe every instrumented store method.
type storeOps struct {
	createClient, getClient                                                *storeOp
	createTransaction, updateTransaction, consumeTransaction, replaceTxn   *storeOp
	createGrant, getGrant, revokeGrant, redeemCode, rotateRefresh, getRefr *storeOp
	listKeys, putKey, deleteKey, sweep                                     *storeOp
}

func newStoreOps() storeOps {
	return storeOps{
		createClient:       newStoreOp("CreateClient"),
		getClient:          newStoreOp("GetClient"),
		createTransaction:  newStoreOp("CreateTransaction"),
		updateTransaction:  newStoreOp("UpdateTransaction"),
		consumeTransaction: newStoreOp("ConsumeTransaction"),
		replaceTxn:         newStoreOp("ReplaceTransaction"),
		createGrant:        newStoreOp("CreateGrant"),
		getGrant:           newStoreOp("GetGrant"),
		revokeGrant:        newStoreOp("RevokeGrant"),
		redeemCode:         newStoreOp("RedeemCode"),
		rotateRefresh:      newStoreOp("RotateRefreshToken"),
		getRefr:            newStoreOp("GetRefreshToken"),
		listKeys:           newStoreOp("ListKeys"),
		putKey:             newStoreOp("PutKey"),
		deleteKey:          newStoreOp("DeleteKey"),
		sweep:              newStoreOp("Sweep"),
	}
}

// Store wraps s so that every call opens a span ("store.RedeemCode") under
// the use case's span and records its latency per operation and outcome.
// It also counts what only the store sees: a rotated refresh token
// presented again (RotateRefreshToken answers ErrAlreadyConsumed, and the
// store has revoked the grant), a redeemed authorization code presented
// again, and the records the sweeper deletes. Ping passes through
// untraced: readiness probes call it every few seconds. No key, id or
// record content is recorded.
func (t *Telemetry) Store(s ports.Store) ports.Store { return &store{t: t, next: s} }

type store struct {
	t    *Telemetry
	next ports.Store
}

var _ ports.Store = (*store)(nil)

func (s *store) start(ctx context.Context, op *storeOp) (context.Context, trace.Span, time.Time) {
	ctx, span := s.t.tracer.Start(ctx, op.spanName, trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(op.attr))
	return ctx, span, time.Now()
}

func (s *store) end(ctx context.Context, op *storeOp, span trace.Span, start time.Time, err error) {
	elapsed := time.Since(start).Seconds()
	outcome := storeOutcome(err)
	span.SetAttributes(op.outAttr[outcome])
	if outcome == outcomeError {
		span.SetStatus(codes.Error, outcomeError)
	}
	span.End()
	s.t.inst.storeDuration.Record(ctx, elapsed, op.outcomes[outcome]...)
}

// CreateClient implements ports.ClientStore.
func (s *store) CreateClient(ctx context.Context, c domain.Client) error {
	op := s.t.storeOps.createClient
	ctx, span, start := s.start(ctx, op)
	err := s.next.CreateClient(ctx, c)
	s.end(ctx, op, span, start, err)
	return err
}

// measure records a hot read's duration without a span: GetClient and
// GetGrant run on every token request and every proxied MCP request, and
// their spans cost more than the (cached) reads themselves. Writes, where a
// transaction's latency matters when debugging, keep their spans.
func (s *store) measure(ctx context.Context, op *storeOp, start time.Time, err error) {
	s.t.inst.storeDuration.Record(ctx, time.Since(start).Seconds(), op.outcomes[storeOutcome(err)]...)
}

// GetClient implements ports.ClientStore (measured, not traced).
func (s *store) GetClient(ctx context.Context, id string) (domain.Client, error) {
	start := time.Now()
	c, err := s.next.GetClient(ctx, id)
	s.measure(ctx, s.t.storeOps.getClient, start, err)
	return c, err
}

// CreateTransaction implements ports.TransactionStore.
func (s *store) CreateTransaction(ctx context.Context, t domain.Transaction) error {
	op := s.t.storeOps.createTransaction
	ctx, span, start := s.start(ctx, op)
	err := s.next.CreateTransaction(ctx, t)
	s.end(ctx, op, span, start, err)
	return err
}

// UpdateTransaction implements ports.TransactionStore.
func (s *store) UpdateTransaction(ctx context.Context, id string, now time.Time, fn func(*domain.Transaction) error) error {
	op := s.t.storeOps.updateTransaction
	ctx, span, start := s.start(ctx, op)
	err := s.next.UpdateTransaction(ctx, id, now, fn)
	s.end(ctx, op, span, start, err)
	return err
}

// ConsumeTransaction implements ports.TransactionStore.
func (s *store) ConsumeTransaction(ctx context.Context, id string, now time.Time, check func(domain.Transaction) error) (domain.Transaction, error) {
	op := s.t.storeOps.consumeTransaction
	ctx, span, start := s.start(ctx, op)
	t, err := s.next.ConsumeTransaction(ctx, id, now, check)
	s.end(ctx, op, span, start, err)
	return t, err
}

// ReplaceTransaction implements ports.TransactionStore.
func (s *store) ReplaceTransaction(ctx context.Context, oldID string, now time.Time, check func(domain.Transaction) (domain.Transaction, error)) (domain.Transaction, error) {
	op := s.t.storeOps.replaceTxn
	ctx, span, start := s.start(ctx, op)
	t, err := s.next.ReplaceTransaction(ctx, oldID, now, check)
	s.end(ctx, op, span, start, err)
	return t, err
}

// CreateGrant implements ports.GrantStore.
func (s *store) CreateGrant(ctx context.Context, g domain.Grant, code domain.AuthorizationCode) error {
	op := s.t.storeOps.createGrant
	ctx, span, start := s.start(ctx, op)
	err := s.next.CreateGrant(ctx, g, code)
	s.end(ctx, op, span, start, err)
	return err
}

// GetGrant implements ports.GrantStore (measured, not traced).
func (s *store) GetGrant(ctx context.Context, id string, now time.Time) (domain.Grant, error) {
	start := time.Now()
	g, err := s.next.GetGrant(ctx, id, now)
	s.measure(ctx, s.t.storeOps.getGrant, start, err)
	return g, err
}

// RevokeGrant implements ports.GrantStore.
func (s *store) RevokeGrant(ctx context.Context, id string) error {
	op := s.t.storeOps.revokeGrant
	ctx, span, start := s.start(ctx, op)
	err := s.next.RevokeGrant(ctx, id)
	s.end(ctx, op, span, start, err)
	return err
}

// RedeemCode implements ports.GrantStore; a redeemed code presented again
// is counted as a replay.
func (s *store) RedeemCode(ctx context.Context, hash string, now time.Time,
	issue func(domain.AuthorizationCode, domain.Grant) (*domain.RefreshToken, error),
) (domain.AuthorizationCode, domain.Grant, error) {
	op := s.t.storeOps.redeemCode
	ctx, span, start := s.start(ctx, op)
	c, g, err := s.next.RedeemCode(ctx, hash, now, issue)
	if errors.Is(err, domain.ErrAlreadyConsumed) {
		span.AddEvent("authorization_code.replay_detected")
		s.t.inst.codeReplay.Add(ctx, 1)
	}
	s.end(ctx, op, span, start, err)
	return c, g, err
}

// RotateRefreshToken implements ports.GrantStore; a rotated token
// presented again is counted as reuse (the store has revoked the grant),
// and a retry within the grace window is marked on the span.
func (s *store) RotateRefreshToken(ctx context.Context, hash string, now time.Time, use domain.RefreshUse,
	rotate func(domain.RefreshToken, *domain.Grant) (domain.RefreshToken, error),
) (domain.RefreshToken, domain.RefreshDecision, error) {
	op := s.t.storeOps.rotateRefresh
	ctx, span, start := s.start(ctx, op)
	t, decision, err := s.next.RotateRefreshToken(ctx, hash, now, use, rotate)
	if errors.Is(err, domain.ErrAlreadyConsumed) {
		span.AddEvent("refresh_token.reuse_detected")
		s.t.inst.refreshReuse.Add(ctx, 1)
	} else if err == nil && decision == domain.RefreshRetry {
		span.AddEvent("refresh_token.retry_replaced_successor")
	}
	s.end(ctx, op, span, start, err)
	return t, decision, err
}

// GetRefreshToken implements ports.GrantStore.
func (s *store) GetRefreshToken(ctx context.Context, hash string, now time.Time) (domain.RefreshToken, error) {
	op := s.t.storeOps.getRefr
	ctx, span, start := s.start(ctx, op)
	t, err := s.next.GetRefreshToken(ctx, hash, now)
	s.end(ctx, op, span, start, err)
	return t, err
}

// ListKeys implements ports.KeyStore.
func (s *store) ListKeys(ctx context.Context) ([]domain.SigningKey, error) {
	op := s.t.storeOps.listKeys
	ctx, span, start := s.start(ctx, op)
	keys, err := s.next.ListKeys(ctx)
	s.end(ctx, op, span, start, err)
	return keys, err
}

// PutKey implements ports.KeyStore.
func (s *store) PutKey(ctx context.Context, k domain.SigningKey) error {
	op := s.t.storeOps.putKey
	ctx, span, start := s.start(ctx, op)
	err := s.next.PutKey(ctx, k)
	s.end(ctx, op, span, start, err)
	return err
}

// DeleteKey implements ports.KeyStore.
func (s *store) DeleteKey(ctx context.Context, id string) error {
	op := s.t.storeOps.deleteKey
	ctx, span, start := s.start(ctx, op)
	err := s.next.DeleteKey(ctx, id)
	s.end(ctx, op, span, start, err)
	return err
}

// Sweep implements ports.Sweeper and counts the deleted records.
func (s *store) Sweep(ctx context.Context, now time.Time) (int, error) {
	op := s.t.storeOps.sweep
	ctx, span, start := s.start(ctx, op)
	n, err := s.next.Sweep(ctx, now)
	if n > 0 {
		span.SetAttributes(keySwept.Int(n))
		s.t.inst.storeSwept.Add(ctx, int64(n))
	}
	s.end(ctx, op, span, start, err)
	return n, err
}

// Ping implements ports.Pinger, untraced.
func (s *store) Ping(ctx context.Context) error { return s.next.Ping(ctx) }

package telemetry

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// spanMode says what an operation does with spans.
type spanMode int

const (
	// ownSpan opens a span per call, a child of the caller's.
	ownSpan spanMode = iota
	// parentSpan opens none and records the outcome on the caller's span:
	// for a call that runs on every proxied request, where a child span
	// cost more than the call (VerifyAccessToken).
	parentSpan
	// noSpan only measures the duration: for hot reads whose outcome says
	// nothing about the request they serve (GetClient, GetGrant).
	noSpan
)

// outcome is what an operation records for one class of result, built once
// so that a call allocates no attribute set.
type outcome struct {
	// attr goes on the span; unset (an empty key) means none.
	attr attribute.KeyValue
	// fault marks the span Error: a failure on our side or a dependency's,
	// never a client's mistake or an answer the caller expects.
	fault bool
	// record is the duration's attribute set, as a ready variadic argument.
	record []metric.RecordOption
	// failed, when set, is the attribute set of a failed flow step.
	failed metric.AddOption
}

// family is a kind of operation (use cases, store calls): its span name
// prefix, its duration histogram and how it judges a call's error.
type family struct {
	t        *Telemetry
	prefix   string
	duration metric.Float64Histogram
	// classify maps a call's error (nil on success) onto one of labels
	// and, for the span, the attribute that names the outcome (an empty
	// key adds none).
	classify func(err error) (label string, attr attribute.KeyValue)
	labels   []string
	// fault says which labels mark a span Error.
	fault func(label string) bool
	// static are the span attributes of every call of an operation.
	static func(name string) []attribute.KeyValue
	// metricAttrs are the duration's attributes of an operation and label.
	metricAttrs func(name, label string) []attribute.KeyValue
	// failedAttrs, when set, are the flow-failure attributes of a step and
	// label.
	failedAttrs func(step, label string) []attribute.KeyValue
	// ops caches the operations by name.
	ops sync.Map // string -> *operation
}

// operation is one decorated call site: a use case or a store method,
// with everything a call records built once.
type operation struct {
	t        *Telemetry
	fam      *family
	spanName string
	mode     spanMode
	start    []trace.SpanStartOption
	outcomes map[string]*outcome
}

// op returns the family's operation called name, creating it on first
// use, so that a new store method or use case needs no registration. The
// first call decides mode and step; step, when set, names the
// authorization-flow step whose failures the operation counts.
func (f *family) op(name string, mode spanMode, step string) *operation {
	if v, ok := f.ops.Load(name); ok {
		return v.(*operation)
	}
	o := &operation{
		t:        f.t,
		fam:      f,
		spanName: f.prefix + name,
		mode:     mode,
		start:    []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal)},
		outcomes: make(map[string]*outcome, len(f.labels)),
	}
	if f.static != nil {
		o.start = append(o.start, trace.WithAttributes(f.static(name)...))
	}
	for _, label := range f.labels {
		oc := &outcome{
			fault:  f.fault(label),
			record: []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(f.metricAttrs(name, label)...))},
		}
		if step != "" && f.failedAttrs != nil {
			if attrs := f.failedAttrs(step, label); attrs != nil {
				oc.failed = metric.WithAttributeSet(attribute.NewSet(attrs...))
			}
		}
		o.outcomes[label] = oc
	}
	actual, _ := f.ops.LoadOrStore(name, o)
	return actual.(*operation)
}

// observe runs fn as the operation op: inside a span of its own (or on the
// caller's, or none, as op's mode says), with its duration recorded under
// the bounded label of its outcome and, for a failed flow step, the
// failure counted. attrs go on op's own span. Whatever fn records on
// trace.SpanFromContext(ctx) lands on that span. Every decorator of this
// package is one call of observe.
func observe[T any](ctx context.Context, op *operation, fn func(context.Context) (T, error), attrs ...attribute.KeyValue) (T, error) {
	var span trace.Span
	if op.mode == ownSpan {
		opts := op.start
		if len(attrs) > 0 {
			opts = append(opts[:len(opts):len(opts)], trace.WithAttributes(attrs...))
		}
		ctx, span = op.t.tracer.Start(ctx, op.spanName, opts...)
	}
	start := time.Now()
	res, err := fn(ctx)
	op.finish(ctx, span, start, err)
	return res, err
}

// finish records a call's outcome on its span and its metrics. span is
// nil unless the operation opened one.
func (op *operation) finish(ctx context.Context, span trace.Span, start time.Time, err error) {
	elapsed := time.Since(start).Seconds()
	label, attr := op.fam.classify(err)
	oc := op.outcomes[label]
	if op.mode == parentSpan {
		span = trace.SpanFromContext(ctx)
	}
	if span != nil && span.IsRecording() { // the variadic slices are allocations
		if attr.Key != "" {
			span.SetAttributes(attr)
		}
		if oc.fault {
			span.SetStatus(codes.Error, label)
		}
	}
	if op.mode == ownSpan {
		span.End()
	}
	op.fam.duration.Record(ctx, elapsed, oc.record...)
	if oc.failed != nil {
		op.t.inst.flowsFailed.Add(ctx, 1, oc.failed)
	}
}

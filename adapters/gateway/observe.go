package gateway

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
)

// Observer receives what the gateway streams, for metrics. Every field is
// optional. The composition root fills it from the telemetry adapter, so
// this package needs no metrics library.
type Observer struct {
	// BytesIn and BytesOut count request bytes sent to the backend (once
	// per request, however often the transport resends it) and response
	// bytes sent back.
	BytesIn, BytesOut func(ctx context.Context, n int64)
	// StreamOpened and StreamClosed bracket every server-sent-event stream.
	StreamOpened, StreamClosed func(ctx context.Context)
	// Decided counts one decision of the policy on a JSON-RPC request:
	// method is the request's method, as the client wrote it (the
	// receiver bounds its values), and outcome one of DecisionAllowed,
	// DecisionInsufficientScope and DecisionForbidden. The tool name is
	// never passed: it is the client's input and would make the series
	// unbounded.
	Decided func(ctx context.Context, method, outcome string)
	// Hidden counts the entries that filtering left out of one list
	// answer; method is the list method (tools/list, prompts/list,
	// resources/list).
	Hidden func(ctx context.Context, method string, n int)
}

func (o Observer) active() bool {
	return o.BytesIn != nil || o.BytesOut != nil || o.StreamOpened != nil || o.StreamClosed != nil
}

// countingBody counts what is read through it and reports once, at Close
// (or EOF), so a long stream costs one metric update, not one per chunk.
type countingBody struct {
	io.ReadCloser
	ctx    context.Context
	n      atomic.Int64
	report func(ctx context.Context, n int64)
	done   func(ctx context.Context)
	once   sync.Once
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	if err == io.EOF {
		b.finish()
	}
	return n, err
}

func (b *countingBody) Close() error {
	err := b.ReadCloser.Close()
	b.finish()
	return err
}

func (b *countingBody) finish() {
	b.once.Do(func() {
		if b.report != nil {
			b.report(b.ctx, b.n.Load())
		}
		if b.done != nil {
			b.done(b.ctx)
		}
	})
}

// isEventStream reports a text/event-stream media type, parameters
// allowed, without the allocations of mime.ParseMediaType.
func isEventStream(ct string) bool {
	const mt = "text/event-stream"
	if len(ct) < len(mt) || !strings.EqualFold(ct[:len(mt)], mt) {
		return false
	}
	rest := strings.TrimLeft(ct[len(mt):], " \t")
	return rest == "" || rest[0] == ';'
}

// observeResponse wraps the backend's response body (ReverseProxy's
// ModifyResponse hook).
func (g *Gateway) observeResponse(resp *http.Response) error {
	if !g.observe.active() || resp.Body == nil {
		return nil
	}
	ctx := resp.Request.Context()
	body := &countingBody{}
	if f, ok := ctx.Value(forwardKey{}).(*forward); ok {
		body = &f.out // allocated with the request's other state
	}
	body.ReadCloser, body.ctx, body.report = resp.Body, ctx, g.observe.BytesOut
	if isEventStream(resp.Header.Get("Content-Type")) {
		if g.observe.StreamOpened != nil {
			g.observe.StreamOpened(ctx)
		}
		body.done = g.observe.StreamClosed
	}
	resp.Body = body
	return nil
}

package gateway

import (
	"context"
	"io"
	"net/http"

	"github.com/oidcproxy/oidcproxy/domain/policy"
)

// Message is what ReadMessage exposes of a read JSON-RPC message.
type Message struct {
	Kind         string // "request", "notification", "response", "" for a fault
	Method, Name string
	ID           string // as written; "" when absent
	// Fault is the JSON-RPC error code of the 400 answer, 0 for none.
	Fault int
}

// ReadMessage exposes the reading of a request body to the tests.
func ReadMessage(body []byte) Message {
	msg, fault := readMessage(body)
	out := Message{Method: msg.method, Name: msg.name, ID: string(msg.id)}
	if fault != nil {
		return Message{Fault: fault.code}
	}
	out.Kind = map[rpcKind]string{rpcRequest: "request", rpcNotification: "notification", rpcResponse: "response"}[msg.kind]
	return out
}

// CheckMirrors reads body and compares the mirrored headers with it.
func CheckMirrors(h http.Header, body []byte) string {
	msg, fault := readMessage(body)
	if fault != nil {
		return fault.message
	}
	return checkMirrors(h, &msg)
}

// ListFilter is one list answer's filtering, for the tests.
type ListFilter struct {
	Policy *policy.Policy
	Caller *policy.Input
	// Kind is the list's kind; KindOther for a resumed stream.
	Kind policy.Kind
	// ID is the list request's id as written; "" for any.
	ID string
	// Hidden receives the count of hidden entries.
	Hidden func(ctx context.Context, method string, n int)
}

func (lf ListFilter) filter(ctx context.Context) *listFilter {
	f := &listFilter{ctx: ctx, policy: lf.Policy, in: lf.Caller, kind: lf.Kind, hidden: lf.Hidden}
	if lf.ID != "" {
		f.id = []byte(lf.ID)
	}
	if lf.Kind != policy.KindOther {
		f.method = listMethod(lf.Kind)
	}
	return f
}

// Message filters one JSON-RPC message; matched is false when it is not
// the list answer.
func (lf ListFilter) Message(ctx context.Context, data []byte) (out []byte, matched bool, err error) {
	return lf.filter(ctx).filterMessage(data, make([]byte, 0, len(data)))
}

// Stream filters an event stream.
func (lf ListFilter) Stream(ctx context.Context, src io.ReadCloser) io.ReadCloser {
	return &sseFilter{src: src, f: lf.filter(ctx)}
}

// MaxListBytes is the largest list answer or event that is filtered.
const MaxListBytes = maxListBytes

// JSON filters a JSON answer of length bytes (-1: unknown) read from r,
// as the gateway does, and returns it with the function that recycles its
// buffer.
func (lf ListFilter) JSON(ctx context.Context, r io.Reader, length int64) ([]byte, func(), error) {
	out, err := lf.filter(ctx).filterJSON(r, length)
	return out, func() { putBuffer(out) }, err
}

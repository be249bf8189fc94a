package gateway

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"
)

// Request bodies are received whole before anything is sent to the backend.
// MCP requests are single JSON-RPC documents, bounded by MaxBodyBytes, so
// holding one in memory costs little, and it buys three things:
//
//   - A deadline that cuts only the body. The read deadline is set when a
//     request with a body arrives and cleared once the body is in, before
//     the backend is called: a client trickling its body (1 byte/s) loses
//     its connection after BodyTimeout, while the response, which may be a
//     Server-Sent Events stream open for hours, is never subject to it. A
//     request refused before its body was read (no token, wrong origin)
//     keeps the deadline, so the server's draining of the unread body is
//     bounded too.
//   - A body the transport can send again. net/http resends a request on a
//     new connection when a reused keep-alive connection turns out to be
//     dead before any byte of the request was written to it
//     (nothingWrittenError in transport.go), but a request with a body only
//     if Request.GetBody can produce the body again; otherwise the client
//     gets a 502 for the backend's routine closing of an idle connection.
//   - A first write that carries the whole request, or only headers.
//     The transport retries a request when its first write to a reused
//     connection fails with nothing sent (the transport had already seen
//     the backend's FIN and closed its end, or a reset had arrived). A
//     small body is handed over as an in-memory reader (*bytes.Reader):
//     the transport then buffers it with the headers and sends both in
//     one write at the end, so a dead connection fails that write and the
//     request is retried. A larger body would not fit in the transport's
//     4 KiB write buffer with the headers, and a write failing in the
//     middle of copying the body is taken for a failure to read the body,
//     which is never retried; so a larger body stays behind ReverseProxy's
//     own reader, for which the transport writes the headers first, on
//     their own, and a failure of that write is retried too.
//
// Once a write has succeeded, bytes of the request have gone out, and a
// failure after that ("readfrom tcp ...: use of closed network
// connection", or an EOF instead of a response) reaches the client as a
// 502: a POST that the backend may have received is never sent again,
// and the gateway adds no Idempotency-Key to make the transport do so.
//
// Dead reused connections are also made rare at the source: the transport
// closes idle connections after BackendIdleTimeout, below the keep-alive
// timeouts of common MCP servers, so that it is the gateway, not the
// backend, that ends an idle connection.

// singleWriteBodyBytes is the largest body handed to the transport as an
// in-memory reader: with the request line and headers (usually well under
// 1 KiB, more with a forwarded upstream token) it fits the transport's
// 4 KiB write buffer.
const singleWriteBodyBytes = 2 << 10

// preallocBodyBytes is the largest declared body length allocated before
// the body arrives: JSON-RPC messages are small, and a client declaring
// megabytes must send them before it costs that much memory.
const preallocBodyBytes = 64 << 10

// bodyError is why a request body could not be received.
type bodyError int

const (
	bodyOK       bodyError = iota
	bodyTimedOut           // the body did not arrive within BodyTimeout
	bodyTooLong            // a body of unknown length went past MaxBodyBytes
	bodyBroken             // the client sent a short body or went away
)

// startBodyDeadline bounds the time the client may take to send the body of
// r. Requests without a body get no deadline: for them the server is already
// reading in the background to notice a client that goes away, and a
// deadline there would cut a long-lived event stream.
func (g *Gateway) startBodyDeadline(w http.ResponseWriter, r *http.Request) *http.ResponseController {
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(g.bodyTimeout)); err != nil {
		// A middleware that wraps the ResponseWriter without Unwrap hides
		// the connection; say so once instead of failing every request.
		g.deadlineWarning.Do(func() {
			g.log.LogAttrs(r.Context(), slog.LevelWarn, "gateway: request bodies have no read deadline",
				slog.String("cause", err.Error()))
		})
		return nil
	}
	return rc
}

// receive reads the whole body of r (nil when it has none) and clears the
// read deadline that startBodyDeadline set, so that it cannot cut the
// response. A declared length was checked against MaxBodyBytes before; a
// body of unknown length (chunked) is cut at the limit.
func (g *Gateway) receive(w http.ResponseWriter, r *http.Request, rc *http.ResponseController) ([]byte, bodyError, error) {
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		return nil, bodyOK, nil
	}
	var body []byte
	var err error
	if r.ContentLength > 0 && r.ContentLength <= preallocBodyBytes {
		body = make([]byte, r.ContentLength)
		_, err = io.ReadFull(r.Body, body)
	} else {
		// Memory grows with the bytes that actually arrive, not with the
		// length a client declares.
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, g.maxBody))
	}
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil:
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, bodyTimedOut, err
	case errors.As(err, &tooLarge):
		return nil, bodyTooLong, err
	default:
		return nil, bodyBroken, err
	}
	if rc != nil {
		if err := rc.SetReadDeadline(time.Time{}); err != nil {
			return nil, bodyBroken, err
		}
	}
	if len(body) == 0 {
		return nil, bodyOK, nil
	}
	return body, bodyOK, nil
}

// refuseBody answers a request whose body could not be received. The
// connection is closed: what remains on it is the rest of a body, not a
// next request.
func (g *Gateway) refuseBody(w http.ResponseWriter, r *http.Request, why bodyError, err error) {
	w.Header().Set("Connection", "close")
	switch why {
	case bodyTimedOut:
		g.refuse(w, r, http.StatusRequestTimeout, bodyTimeout, "request body not received in time")
	case bodyTooLong:
		g.refuse(w, r, http.StatusRequestEntityTooLarge, bodyTooLarge, "request body too large")
	default:
		// Usually nobody reads this: the client has gone.
		writeBody(w, http.StatusBadRequest, bodyIncomplete)
		g.log.LogAttrs(r.Context(), slog.LevelDebug, "gateway: request body incomplete",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("cause", err.Error()))
	}
}

// replay returns a new reader over the received body. It is the outgoing
// request's body and its GetBody, which the transport calls to send the
// request again on a new connection.
func (f *forward) replay() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(f.body)), nil
}

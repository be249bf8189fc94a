package httpapi

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"time"
)

// DefaultBodyTimeout is how long a client may take to send a request
// body when Options.BodyTimeout is zero.
const DefaultBodyTimeout = 10 * time.Second

// maxRequestBytes bounds every request body the authorization server and
// the admin listener accept: their largest legitimate bodies (a
// registration document, a form) are a few kilobytes.
const maxRequestBytes = 64 << 10

// readBodies reads a request's whole body, within the body timeout and the
// size bound, before next sees the request; next reads it from memory.
//
// The http.Server has no ReadTimeout (the gateway streams), so without this
// a client that declares a body and then sends a byte a second holds a
// connection, a goroutine and its buffers for as long as it likes, and
// thousands of such clients exhaust file descriptors. Reading here, rather
// than in each handler, covers every route at once, including the ones that
// never read their body: after a handler returns, net/http would drain up
// to 256 KiB of unread body with no deadline at all.
//
// A body that does not arrive in time gets 408 and a closed connection.
// One beyond the bound is not read further: the handler sees its first
// maxRequestBytes followed by an *http.MaxBytesError, and answers 413 in
// its own error format (RFC 7591 codes at /register), and the connection
// closes after the answer. Requests without a body pass straight through.
func (s *Server) readBodies(next http.Handler) http.Handler {
	timeout := s.opts.BodyTimeout
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > maxRequestBytes {
			w.Header().Set("Connection", "close")
			r.Body = &memoryBody{Reader: bytes.NewReader(nil), err: &http.MaxBytesError{Limit: maxRequestBytes}}
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		// ErrNotSupported: a ResponseWriter without a connection (a
		// recorder in tests); the body is still read and bounded.
		deadlineErr := rc.SetReadDeadline(time.Now().Add(timeout))
		body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBytes+1))
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			w.Header().Set("Connection", "close")
			s.refuseBody(w, r, http.StatusRequestTimeout, "the request body did not arrive in time")
			return
		case err != nil:
			// The client went away or sent a broken chunked body.
			w.Header().Set("Connection", "close")
			s.refuseBody(w, r, http.StatusBadRequest, "the request body could not be read")
			return
		}
		mb := &memoryBody{}
		if len(body) > maxRequestBytes {
			w.Header().Set("Connection", "close")
			body, mb.err = body[:maxRequestBytes], &http.MaxBytesError{Limit: maxRequestBytes}
		} else if deadlineErr == nil {
			// The body is complete; the handler's own work (an upstream
			// call at the callback, a slow store) is not the client's
			// to hurry, and the connection's next request starts afresh.
			_ = rc.SetReadDeadline(time.Time{})
		}
		mb.Reader = bytes.NewReader(body)
		r.Body = mb
		next.ServeHTTP(w, r)
	})
}

// refuseBody answers a request whose body did not arrive, in the error
// document shape of the API endpoints.
func (s *Server) refuseBody(w http.ResponseWriter, r *http.Request, status int, description string) {
	s.log.WarnContext(r.Context(), "request body refused", "method", r.Method, "path", r.URL.Path, "status", status)
	writeJSON(w, status, errorBody{Error: "invalid_request", ErrorDescription: description})
}

// memoryBody is a request body already read into memory; err, when set, is
// what reading past its end returns (the body went on beyond the bound).
type memoryBody struct {
	*bytes.Reader
	err error
}

// Read implements io.Reader.
func (b *memoryBody) Read(p []byte) (int, error) {
	n, err := b.Reader.Read(p)
	if err == io.EOF && b.err != nil {
		err = b.err
	}
	return n, err
}

// Close implements io.Closer; there is nothing to release.
func (*memoryBody) Close() error { return nil }

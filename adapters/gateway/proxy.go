package gateway

import (
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Transport tuning for the one backend.
const (
	dialTimeout         = 10 * time.Second
	dialKeepAlive       = 30 * time.Second
	tlsHandshakeTimeout = 10 * time.Second
	// maxIdleConnsPerHost keeps enough warm connections for bursts of
	// concurrent clients: the default (2) would make most requests dial.
	maxIdleConnsPerHost = 256
	// bufferSize is the copy buffer of a proxied body. An open SSE stream
	// holds its buffer for as long as it stays open, so the size is a
	// memory cost per idle stream: measured per stream (BenchmarkIdleStream
	// Memory), 32 KiB buffers cost ~86 KiB, 16 KiB ~70 KiB, 8 KiB ~61 KiB,
	// and through the whole App (bench: BenchmarkGatewayIdleStreams) 8 KiB
	// came to 62-64 KiB, at the 64 KiB a stream may cost. MCP messages are small
	// JSON documents and SSE events, and 4 KiB (the size of the transport's
	// own read buffer) copies them in one or two reads.
	bufferSize = 4 << 10
)

const allowedMethods = "GET, POST, DELETE"

// newTransport is the HTTP client side toward the backend; idle connections
// are closed after idle (see Options.BackendIdleTimeout).
func newTransport(idle time.Duration) *http.Transport {
	return &http.Transport{
		// The backend is addressed directly; proxy variables in the
		// environment are meant for outbound internet traffic.
		Proxy:       nil,
		DialContext: (&net.Dialer{Timeout: dialTimeout, KeepAlive: dialKeepAlive}).DialContext,
		// HTTP/2 is used only with an https backend: a plain-http backend
		// gets HTTP/1.1 (no h2c), which every MCP server speaks.
		ForceAttemptHTTP2:   true,
		TLSHandshakeTimeout: tlsHandshakeTimeout,
		MaxIdleConns:        0, // no global cap; the per-host cap applies
		MaxIdleConnsPerHost: maxIdleConnsPerHost,
		IdleConnTimeout:     idle,
		// Bodies pass through byte for byte: no Accept-Encoding is added and
		// nothing is decompressed.
		DisableCompression: true,
		// No ResponseHeaderTimeout: an SSE GET may legitimately wait a long
		// time before the backend sends its headers.
		ExpectContinueTimeout: time.Second,
	}
}

// bufferPool recycles the copy buffers of proxied bodies. It stores array
// pointers, so that Put does not allocate a slice header.
type bufferPool struct{ p sync.Pool }

// Get implements httputil.BufferPool.
func (b *bufferPool) Get() []byte {
	if buf, ok := b.p.Get().(*[bufferSize]byte); ok {
		return buf[:]
	}
	return new([bufferSize]byte)[:]
}

// Put implements httputil.BufferPool.
func (b *bufferPool) Put(buf []byte) {
	if len(buf) != bufferSize {
		return
	}
	b.p.Put((*[bufferSize]byte)(buf))
}

// newReverseProxy assembles the streaming proxy.
func newReverseProxy(t http.RoundTripper, rewrite func(*httputil.ProxyRequest),
	errorHandler func(http.ResponseWriter, *http.Request, error), logger *slog.Logger,
) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:   rewrite,
		Transport: t,
		// ReverseProxy flushes every write of a text/event-stream response
		// and of a response of unknown length (a streamed JSON-RPC answer)
		// at once, whatever FlushInterval says; a fixed-length JSON answer
		// is written in one go. -1 would add a timer goroutine and an extra
		// flush to every such answer for nothing.
		FlushInterval: 0,
		BufferPool:    &bufferPool{},
		ErrorHandler:  errorHandler,
		// ReverseProxy logs only copy failures in the middle of a body (the
		// backend died mid-stream).
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// rewrite turns the client's request into the backend's: the target URL,
// the client's credentials removed, the verified identity added.
func (g *Gateway) rewrite(pr *httputil.ProxyRequest) {
	out := pr.Out
	// ServeHTTP checked that the path lies under the mount point.
	suffix, _ := g.suffix(pr.In.URL.Path)
	out.URL.Scheme = g.upstream.Scheme
	out.URL.Host = g.upstream.Host
	out.URL.Path, out.URL.RawPath = g.upstreamPath(pr.In.URL, suffix)
	switch {
	case g.upstream.RawQuery == "":
	case out.URL.RawQuery == "":
		out.URL.RawQuery = g.upstream.RawQuery
	default:
		out.URL.RawQuery = g.upstream.RawQuery + "&" + out.URL.RawQuery
	}
	// The backend sees its own host, not ours: MCP servers refuse foreign
	// Host headers on loopback (DNS-rebinding protection).
	out.Host = ""

	h := out.Header
	delete(h, "Authorization") // no token passthrough: the backend never sees our token
	delete(h, "Cookie")        // our cookies are ours
	delete(h, g.userHeader)
	delete(h, g.emailHeader)
	delete(h, g.clientHeader)
	if g.upstreamTokenHeader != "" {
		delete(h, g.upstreamTokenHeader)
	}
	// Some servers (CGI, WSGI, Rack) read X_Forwarded_User as
	// X-Forwarded-User, so a client could spoof the identity with
	// underscores. Non-canonical keys keep their spelling in the map.
	for k := range h {
		if strings.IndexByte(k, '_') >= 0 && g.isIdentityAlias(k) {
			delete(h, k)
		}
	}
	// MCP has no protocol upgrades; a backend answering 101 is refused by
	// ReverseProxy once the request no longer asks for one.
	delete(h, "Upgrade")
	delete(h, "Connection")
	if g.injectTrace != nil {
		// Our span is the backend's parent, not whatever the client claims.
		delete(h, "Traceparent")
		delete(h, "Tracestate")
		g.injectTrace(pr.In.Context(), h)
	}

	if f, ok := pr.In.Context().Value(forwardKey{}).(*forward); ok {
		if f.body != nil && len(f.body) <= singleWriteBodyBytes {
			// ReverseProxy wrapped the body in a reader of its own; the
			// transport writes only an in-memory body in one write with
			// the headers (see body.go).
			pr.Out.Body, _ = f.replay()
		}
		if f.filtering {
			// The list answer is read to be filtered: it must come
			// uncompressed.
			delete(h, "Accept-Encoding")
		}
		if f.client != "" {
			f.values[0][0] = f.client
			h[g.clientHeader] = f.values[0][:]
		} else {
			f.values[0][0] = f.user
			h[g.userHeader] = f.values[0][:]
		}
		if f.email != "" {
			f.values[1][0] = f.email
			h[g.emailHeader] = f.values[1][:]
		}
		if f.upstreamToken != "" {
			f.values[2][0] = f.upstreamToken
			h[g.upstreamTokenHeader] = f.values[2][:]
		}
	}
	pr.SetXForwarded()
}

// isIdentityAlias reports whether a header name reads as one of the identity
// headers when '_' is taken for '-'.
func (g *Gateway) isIdentityAlias(k string) bool {
	return headerAlias(k, g.userHeader) || headerAlias(k, g.emailHeader) || headerAlias(k, g.clientHeader) ||
		(g.upstreamTokenHeader != "" && headerAlias(k, g.upstreamTokenHeader))
}

// suffix returns the part of a request path after the mount point, and
// false when the path is not under it. The mount "/mcp" matches "/mcp"
// (suffix "") and "/mcp/x" (suffix "/x"), not "/mcpx".
func (g *Gateway) suffix(p string) (string, bool) {
	if !strings.HasPrefix(p, g.mount) {
		return "", false
	}
	s := p[len(g.mount):]
	if s != "" && s[0] != '/' {
		return "", false
	}
	return s, true
}

// upstreamPath appends the suffix to the upstream path, keeping the
// client's percent-encoding (an escaped "/" stays escaped) when there is one.
func (g *Gateway) upstreamPath(in *url.URL, suffix string) (path, rawPath string) {
	path = joinPath(g.upstream.Path, suffix)
	if in.RawPath == "" && g.upstream.RawPath == "" {
		return path, ""
	}
	escSuffix := (&url.URL{Path: suffix}).EscapedPath()
	if esc := in.EscapedPath(); strings.HasPrefix(esc, g.mountEsc) {
		if s := esc[len(g.mountEsc):]; s == "" || s[0] == '/' {
			escSuffix = s
		}
	}
	return path, joinPath(g.upEsc, escSuffix)
}

// joinPath appends a suffix ("" or starting with "/") to a base path without
// doubling the slash.
func joinPath(base, suffix string) string {
	switch {
	case suffix == "":
		if base == "" {
			return "/"
		}
		return base
	case strings.HasSuffix(base, "/"):
		return base + suffix[1:]
	default:
		return base + suffix
	}
}

// hasDotSegment reports whether a path has a "." or ".." segment (with "\"
// also taken as a separator, as some servers do).
func hasDotSegment(p string) bool {
	start := 0
	for i := 0; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' && p[i] != '\\' {
			continue
		}
		if seg := p[start:i]; seg == "." || seg == ".." {
			return true
		}
		start = i + 1
	}
	return false
}

// proxyError answers a request the backend could not serve.
func (g *Gateway) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case r.Context().Err() != nil:
		// The client went away; nobody reads this answer.
		w.WriteHeader(http.StatusBadGateway)
		g.log.LogAttrs(r.Context(), slog.LevelDebug, "gateway: client left before the backend answered",
			slog.String("method", r.Method), slog.String("path", r.URL.Path))
	default:
		writeBody(w, http.StatusBadGateway, bodyBadGateway)
		// The cause names the backend; it goes to the log only.
		g.log.LogAttrs(r.Context(), slog.LevelError, "gateway: backend request failed",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("cause", err.Error()))
	}
}

// refuse answers a transport-level refusal with a JSON-RPC error (the MCP
// transport allows a JSON-RPC error without id as the body) and logs it.
func (g *Gateway) refuse(w http.ResponseWriter, r *http.Request, status int, body []byte, reason string) {
	writeBody(w, status, body)
	g.log.LogAttrs(r.Context(), slog.LevelWarn, "gateway: request refused",
		slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.Int("status", status), slog.String("reason", reason))
}

var (
	jsonContentType = []string{"application/json"}
	noStore         = []string{"no-store"}
)

// writeBody writes a JSON answer that is never cached.
func writeBody(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Cache-Control"] = noStore
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// JSON-RPC error codes (JSON-RPC 2.0 5.1).
const (
	rpcInvalidRequest = -32600
	rpcInternalError  = -32603
)

// The JSON-RPC error bodies, built once.
var (
	bodyOriginRefused    = rpcError(rpcInvalidRequest, "Forbidden: origin not allowed")
	bodyMethodNotAllowed = rpcError(rpcInvalidRequest, "Method not allowed")
	bodyNotFound         = rpcError(rpcInvalidRequest, "Not found")
	bodyBadPath          = rpcError(rpcInvalidRequest, "Bad request: path with dot segments")
	bodyTooLarge         = rpcError(rpcInvalidRequest, "Request body too large")
	bodyTimeout          = rpcError(rpcInvalidRequest, "Request timeout: the request body did not arrive in time")
	bodyIncomplete       = rpcError(rpcInvalidRequest, "Bad request: the request body is incomplete")
	bodyBadGateway       = rpcError(rpcInternalError, "Bad gateway: the MCP server is unavailable")
)

// rpcError builds a JSON-RPC error response without id.
func rpcError(code int, message string) []byte {
	msg, _ := json.Marshal(message) // marshalling a string cannot fail
	return []byte(`{"jsonrpc":"2.0","error":{"code":` + strconv.Itoa(code) + `,"message":` + string(msg) + `},"id":null}`)
}

// isToken reports whether s is an RFC 7230 token (a valid field name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue reports whether s can be sent as a header value: no
// control characters but tab (RFC 7230 3.2).
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// headerAlias reports whether two header names are equal ignoring case and
// the difference between '-' and '_'.
func headerAlias(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == '_' {
			x = '-'
		}
		if y == '_' {
			y = '-'
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// reservedHeaders may not carry the identity: HTTP framing, our credentials,
// the MCP transport's own headers and the forwarding headers.
var reservedHeaders = []string{
	"Authorization", "Cookie", "Set-Cookie", "Host", "Content-Length", "Content-Type", "Content-Encoding",
	"Transfer-Encoding", "Connection", "Keep-Alive", "Upgrade", "Te", "Trailer", "Proxy-Authorization",
	"Proxy-Authenticate", "Proxy-Connection", "Expect", "Origin", "Accept", "Accept-Encoding", "User-Agent",
	"Mcp-Session-Id", "Mcp-Protocol-Version", "Last-Event-Id",
	"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
}

func reservedHeader(name string) bool {
	for _, r := range reservedHeaders {
		if headerAlias(name, r) {
			return true
		}
	}
	return false
}

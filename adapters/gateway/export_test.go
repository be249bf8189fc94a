package gateway

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
)

// NewBareProxy returns the benchmarks' baseline: a ReverseProxy with the
// gateway's transport settings, flush interval and buffer pool, forwarding
// everything to upstream without any check. The transport is returned so
// that the caller can close its idle connections.
func NewBareProxy(upstream *url.URL) (*httputil.ReverseProxy, *http.Transport) {
	t := newTransport(DefaultBackendIdleTimeout)
	rewrite := func(pr *httputil.ProxyRequest) {
		pr.SetURL(upstream)
		pr.Out.URL.Path = upstream.Path // SetURL would append the request path
		pr.Out.URL.RawPath = ""
		pr.SetXForwarded()
	}
	fail := func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) }
	return newReverseProxy(t, rewrite, fail, slog.New(slog.DiscardHandler)), t
}

// IsEventStream exposes the media-type check to the tests.
var IsEventStream = isEventStream

// WrapBackendConns makes the gateway's transport pass every connection it
// dials to the backend through wrap, so that a test can break a connection
// at the moment the transport reuses it.
func WrapBackendConns(g *Gateway, wrap func(net.Conn) net.Conn) {
	dial := g.trans.DialContext
	g.trans.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return wrap(c), nil
	}
}

package pgtest

import (
	"context"
	"net"
	"net/url"
	"sync"
	"testing"
)

// Proxy is a TCP proxy on loopback in front of the test server, which a
// test cuts and restores to play a database outage. It stands in for
// stopping or restarting PostgreSQL because the server is shared: other
// tests, of this run and of other people's, use it at the same time. To
// the client the effects are the same: Cut is a server that went away
// (every connection is dropped and new ones are closed at once, as a
// restarting server or a refused port does), Stall is a network that
// stops carrying packets (connections stay open and nothing arrives, so
// only timeouts notice). Restore lets new connections through again;
// connections from before a Cut stay dropped, as after a real restart.
type Proxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	mode    proxyMode
	resume  chan struct{} // closed by Restore while stalled
	conns   map[net.Conn]struct{}
	stopped bool
}

type proxyMode int

const (
	proxyOpen proxyMode = iota
	proxyCut
	proxyStalled
)

// NewProxy starts a proxy to target (host:port) and stops it when t ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pgtest: proxy: %v", err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}, resume: make(chan struct{})}
	go p.accept()
	t.Cleanup(p.stop)
	return p
}

// ProxyURL starts a proxy to the server of dbURL and returns dbURL
// rewritten to go through it, with the proxy.
func ProxyURL(t testing.TB, dbURL string) (string, *Proxy) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatalf("pgtest: proxy: %v", err)
	}
	p := NewProxy(t, u.Host)
	u.Host = p.Addr()
	return u.String(), p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Dial connects to the proxy, whatever address it is asked for: a
// pgconn.DialFunc for a client that should reach the server through the
// proxy while its configuration names the server.
func (p *Proxy) Dial(ctx context.Context, _, _ string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", p.Addr())
}

// Cut drops every connection and closes new ones at once, until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.setModeLocked(proxyCut)
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

// Stall stops carrying data in either direction, on open connections and
// new ones, until Restore.
func (p *Proxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.setModeLocked(proxyStalled)
}

// Restore carries data again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.setModeLocked(proxyOpen)
}

func (p *Proxy) setModeLocked(m proxyMode) {
	if p.mode == proxyStalled && m != proxyStalled {
		close(p.resume)
		p.resume = make(chan struct{})
	}
	p.mode = m
}

func (p *Proxy) stop() {
	p.mu.Lock()
	p.stopped = true
	p.setModeLocked(proxyCut)
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	_ = p.ln.Close()
}

func (p *Proxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.mode == proxyCut || p.stopped {
			p.mu.Unlock()
			_ = client.Close()
			continue
		}
		p.mu.Unlock()
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		if p.mode == proxyCut || p.stopped {
			p.mu.Unlock()
			_ = client.Close()
			_ = server.Close()
			continue
		}
		p.conns[client] = struct{}{}
		p.conns[server] = struct{}{}
		p.mu.Unlock()
		go p.pump(server, client)
		go p.pump(client, server)
	}
}

// pump copies src to dst until either fails, holding data back while the
// proxy is stalled, and then closes both.
func (p *Proxy) pump(dst, src net.Conn) {
	defer func() {
		p.mu.Lock()
		delete(p.conns, dst)
		delete(p.conns, src)
		p.mu.Unlock()
		_ = dst.Close()
		_ = src.Close()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.pass() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // io.EOF included: the other side closed
		}
	}
}

// pass waits while the proxy is stalled and reports whether data may go
// on (false: the proxy was cut or stopped meanwhile).
func (p *Proxy) pass() bool {
	for {
		p.mu.Lock()
		mode, resume := p.mode, p.resume
		p.mu.Unlock()
		switch mode {
		case proxyOpen:
			return true
		case proxyCut:
			return false
		}
		<-resume
	}
}

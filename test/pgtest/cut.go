package pgtest

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
)

// Cut is a TCP proxy on loopback in front of the PostgreSQL server of a
// database URL, which a test cuts and restores to see what the code under
// test does while the database is gone: as during a server restart or a
// failover, open connections break and new ones are refused. It stands
// between the client and the real server because the server itself is
// shared by every test on the machine and must never be stopped.
type Cut struct {
	t      testing.TB
	target string // the server's host:port
	addr   string // the proxy's host:port, stable across Restore

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewCut starts a proxy to the server of dbURL and returns it with dbURL
// rewritten to connect through it. The proxy stops when the test ends.
func NewCut(t testing.TB, dbURL string) (*Cut, string) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatalf("pgtest: cut: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pgtest: cut: %v", err)
	}
	c := &Cut{t: t, target: u.Host, addr: ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	c.serve(ln)
	t.Cleanup(func() {
		c.Down()
		c.wg.Wait()
	})
	u.Host = c.addr
	return c, u.String()
}

// Down closes every connection through the proxy and refuses new ones
// until Up.
func (c *Cut) Down() {
	c.mu.Lock()
	ln := c.ln
	c.ln = nil
	for conn := range c.conns {
		_ = conn.Close()
		delete(c.conns, conn)
	}
	c.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
}

// Up accepts connections again, on the same address.
func (c *Cut) Up() {
	c.t.Helper()
	c.mu.Lock()
	up := c.ln != nil
	c.mu.Unlock()
	if up {
		return
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		c.t.Fatalf("pgtest: cut: listen again on %s: %v", c.addr, err)
	}
	c.serve(ln)
}

func (c *Cut) serve(ln net.Listener) {
	c.mu.Lock()
	c.ln = ln
	c.mu.Unlock()
	c.wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			c.wg.Go(func() { c.pipe(client) })
		}
	})
}

// pipe forwards one connection until either side closes or Down.
func (c *Cut) pipe(client net.Conn) {
	server, err := net.Dial("tcp", c.target)
	if err != nil {
		_ = client.Close()
		return
	}
	c.mu.Lock()
	if c.ln == nil { // went down while dialling
		c.mu.Unlock()
		_ = client.Close()
		_ = server.Close()
		return
	}
	c.conns[client], c.conns[server] = struct{}{}, struct{}{}
	c.mu.Unlock()
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			_ = client.Close()
			_ = server.Close()
			c.mu.Lock()
			delete(c.conns, client)
			delete(c.conns, server)
			c.mu.Unlock()
		})
	}
	var wg sync.WaitGroup
	for _, dir := range [][2]net.Conn{{server, client}, {client, server}} {
		wg.Go(func() {
			_, _ = io.Copy(dir[0], dir[1]) // until EOF, a reset or Down
			closeBoth()
		})
	}
	wg.Wait()
}

// Package slowclient is an HTTP/1.1 client for tests that sends its request
// body a byte at a time over a real TCP connection, as a client on a bad
// link or an attacker holding connections open would, and reports how the
// server ended the exchange.
package slowclient

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Request is what to send: a method and path, extra header lines, a
// declared Content-Length, and how often to send the next body byte.
type Request struct {
	Method string
	Path   string
	Header http.Header
	// Length is the declared Content-Length; Body, when set, supplies the
	// bytes ("x" repeated otherwise) and must be Length bytes long.
	Length int
	Body   string
	// Every is the pause before each body byte.
	Every time.Duration
}

// Result is how the server ended the exchange within the wait.
type Result struct {
	// Status is the answer's status code, or 0 when none came.
	Status int
	// Body is the answer's body, when one came.
	Body string
	// Closed reports that the server closed the connection.
	Closed bool
	// After is the time from the end of the request head to the moment
	// the server answered and closed, or to the end of the wait.
	After time.Duration
	// Sent is how many body bytes went out.
	Sent int
}

// Do sends req to addr (host:port) and waits at most wait for the server
// to answer and close the connection. It never fails the test for what the
// server does; only a failure to connect is fatal.
func Do(t testing.TB, addr string, req Request, wait time.Duration) Result {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("slowclient: dial %s: %v", addr, err)
	}
	defer conn.Close()
	var head strings.Builder
	fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", req.Method, req.Path, addr, req.Length)
	for k, vs := range req.Header {
		for _, v := range vs {
			fmt.Fprintf(&head, "%s: %s\r\n", k, v)
		}
	}
	head.WriteString("\r\n")
	if _, err := io.WriteString(conn, head.String()); err != nil {
		t.Fatalf("slowclient: write request head: %v", err)
	}
	start := time.Now()
	body := req.Body
	if body == "" {
		body = strings.Repeat("x", req.Length)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sent int
	wg.Go(func() {
		for i := range len(body) {
			select {
			case <-stop:
				return
			case <-time.After(req.Every):
			}
			if _, err := conn.Write([]byte{body[i]}); err != nil {
				return
			}
			sent++
		}
	})

	var res Result
	_ = conn.SetReadDeadline(start.Add(wait))
	br := bufio.NewReader(conn)
	if resp, err := http.ReadResponse(br, nil); err == nil {
		res.Status = resp.StatusCode
		b, _ := io.ReadAll(resp.Body)
		res.Body = string(b)
		resp.Body.Close()
	}
	// Whatever came, the connection must end: read until the server
	// closes it or the wait is over.
	_, err = io.Copy(io.Discard, br)
	var ne net.Error
	res.Closed = !(errors.As(err, &ne) && ne.Timeout())
	res.After = time.Since(start)
	close(stop)
	_ = conn.Close()
	wg.Wait()
	res.Sent = sent
	return res
}

package e2e_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Through the whole App, with its middleware around the gateway (which
// must let the gateway reach the connection's read deadline): a client that
// sends its body at one byte per second is answered 408 and disconnected
// at GATEWAY_BODY_TIMEOUT. That responses are not cut is tested at the
// gateway (TestStreamsOutlastTheBodyTimeout).
func TestTheGatewayCutsABodySentAtOneBytePerSecond(t *testing.T) {
	be := startBackend(t)
	p, _ := startWithFaulty(t, withEnv("MCP_UPSTREAM", be.URL), withEnv("GATEWAY_BODY_TIMEOUT", "1s"))
	c := p.register(t, nil)
	tok, _ := p.login(t, c)

	u, err := url.Parse(p.BaseURL)
	require.NoError(t, err)
	conn, err := net.Dial("tcp", u.Host)
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "POST /mcp HTTP/1.1\r\nHost: "+u.Host+"\r\nContent-Type: application/json\r\n"+
		"Accept: application/json, text/event-stream\r\nAuthorization: Bearer "+tok.AccessToken+"\r\nContent-Length: 100\r\n\r\n")
	require.NoError(t, err)
	go func() {
		for range 100 {
			if _, err := conn.Write([]byte("x")); err != nil {
				return
			}
			time.Sleep(time.Second)
		}
	}()
	start := time.Now()
	_ = conn.SetReadDeadline(start.Add(5 * time.Second))
	r := bufio.NewReader(conn)
	res, err := http.ReadResponse(r, nil)
	require.NoError(t, err, "answered before the client gave up")
	_, _ = io.Copy(io.Discard, res.Body)
	require.Equal(t, http.StatusRequestTimeout, res.StatusCode)
	require.Less(t, time.Since(start), 2500*time.Millisecond)
	_, err = io.Copy(io.Discard, r)
	// Closed: an EOF, or a reset when the server closed with the client's
	// bytes unread; not the read deadline of this test.
	require.NotErrorIs(t, err, os.ErrDeadlineExceeded, "the connection was not closed")
	require.Empty(t, be.headers(), "nothing reached the backend")
}

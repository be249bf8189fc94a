package httpapi_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/httpapi"
	"github.com/oidcproxy/oidcproxy/test/slowclient"
)

// bodyTimeout is short so the tests run fast; margin absorbs a loaded
// machine under -race.
const (
	bodyTimeout = 400 * time.Millisecond
	margin      = 3 * time.Second
)

// slowServer serves the HTTP API on a real loopback listener with a short
// body timeout and a gateway that reads its whole body and says how long it
// was.
func slowServer(t *testing.T) string {
	t.Helper()
	gateway := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_, _ = io.WriteString(w, strconv.Itoa(len(b)))
	})
	fx := newFixture(t, func(o *httpapi.Options) {
		o.BodyTimeout = bodyTimeout
		o.Gateway = gateway
	})
	srv := httptest.NewServer(fx.handler)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestSlowBodiesAreCutOnEveryRouteOutsideTheGateway(t *testing.T) {
	addr := slowServer(t)
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	routes := []struct {
		method, path string
		header       http.Header
	}{
		{http.MethodPost, "/token", form},
		{http.MethodPost, "/revoke", form},
		{http.MethodPost, "/introspect", form},
		{http.MethodPost, "/authorize", form},
		{http.MethodPost, "/consent", form},
		{http.MethodPost, "/register", http.Header{"Content-Type": {"application/json"}}},
		// Routes that never read a body, and no route at all: net/http
		// would drain their bodies after the handler, without a deadline.
		{http.MethodGet, "/jwks.json", nil},
		{http.MethodPost, "/no-such-endpoint", nil},
	}
	var wg sync.WaitGroup
	results := make([]slowclient.Result, len(routes)*3)
	for i := range results {
		rt := routes[i%len(routes)]
		wg.Go(func() {
			results[i] = slowclient.Do(t, addr, slowclient.Request{
				Method: rt.method, Path: rt.path, Header: rt.header, Length: 10_000, Every: 100 * time.Millisecond,
			}, bodyTimeout+margin)
		})
	}
	wg.Wait()
	for i, res := range results {
		rt := routes[i%len(routes)]
		require.True(t, res.Closed, "%s %s: the connection is still open after %s", rt.method, rt.path, res.After)
		require.Equal(t, http.StatusRequestTimeout, res.Status, "%s %s: %s", rt.method, rt.path, res.Body)
		require.Less(t, res.After, bodyTimeout+margin)
	}
}

func TestABodyThatArrivesInTimeIsServedAndTheGatewayKeepsItsOwnPace(t *testing.T) {
	addr := slowServer(t)

	// A registration in a few pieces, all within the timeout.
	doc := `{"redirect_uris":["http://127.0.0.1:1/cb"]}`
	res := slowclient.Do(t, addr, slowclient.Request{
		Method: http.MethodPost, Path: "/register", Length: len(doc), Body: doc, Every: time.Millisecond,
		Header: http.Header{"Content-Type": {"application/json"}, "Connection": {"close"}},
	}, margin)
	require.Equal(t, http.StatusCreated, res.Status, res.Body)

	// The gateway streams: a body that takes far longer than the
	// authorization server's timeout still reaches it whole.
	res = slowclient.Do(t, addr, slowclient.Request{
		Method: http.MethodPost, Path: "/mcp", Length: 8, Every: bodyTimeout / 3,
		Header: http.Header{"Connection": {"close"}},
	}, 3*bodyTimeout+margin)
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	require.Equal(t, "8", res.Body)
	require.Greater(t, res.After, 2*bodyTimeout, "the body took longer than the timeout to send")
}

func TestOversizedBodiesAreRefusedWith413InTheEndpointsOwnErrorFormat(t *testing.T) {
	addr := slowServer(t)
	// Declared too large: refused before a byte of it is read.
	res := slowclient.Do(t, addr, slowclient.Request{
		Method: http.MethodPost, Path: "/token", Length: 1 << 20, Every: time.Hour,
		Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
	}, margin)
	require.Equal(t, http.StatusRequestEntityTooLarge, res.Status, res.Body)
	require.Contains(t, res.Body, `"invalid_request"`)
	require.True(t, res.Closed)

	// Chunked, so only reading finds out; /register answers with an
	// RFC 7591 error code.
	body := strings.NewReader(`{"client_name":"` + strings.Repeat("a", 100<<10) + `"}`)
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/register", io.NopCloser(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, string(b))
	require.Contains(t, string(b), `"invalid_client_metadata"`)
}

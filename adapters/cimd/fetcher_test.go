package cimd_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/cimd"
)

// docServer is a document host on a real 127.0.0.1 TLS listener that counts
// requests per path and accepted connections.
type docServer struct {
	*httptest.Server
	mu    sync.Mutex
	hits  map[string]int
	conns atomic.Int64
}

func newDocServer(t *testing.T, handler http.HandlerFunc) *docServer {
	t.Helper()
	s := &docServer{hits: map[string]int{}}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[r.URL.Path]++
		s.mu.Unlock()
		handler(w, r)
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func (s *docServer) Hits(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

func (s *docServer) roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())
	return pool
}

// clock is a settable time source for cache expiry.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newFetcher(t *testing.T, s *docServer, opts cimd.Options) *cimd.Fetcher {
	t.Helper()
	opts.AllowPrivateNetwork = true
	opts.RootCAs = s.roots()
	if opts.Timeout == 0 {
		opts.Timeout = 3 * time.Second
	}
	f, err := cimd.New(opts)
	require.NoError(t, err)
	return f
}

func document(id string, extra string) string {
	return fmt.Sprintf(`{"client_id":%q,"client_name":"Doc Client","redirect_uris":["http://127.0.0.1:33418/callback"]%s}`, id, extra)
}

// serveDocument answers every path with a document naming that path's URL.
func serveDocument(s **docServer, header map[string]string, extra string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		for k, v := range header {
			w.Header().Set(k, v)
		}
		_, _ = fmt.Fprint(w, document((*s).URL+r.URL.Path, extra))
	}
}

func TestADocumentIsFetchedAndParsed(t *testing.T) {
	var s *docServer
	s = newDocServer(t, serveDocument(&s, nil, `,"token_endpoint_auth_method":"none","unknown_member":[1,2]`))
	f := newFetcher(t, s, cimd.Options{})
	id := s.URL + "/client.json"

	doc, err := f.FetchClientMetadata(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, id, doc.ClientID)
	require.Equal(t, "Doc Client", doc.Metadata.ClientName)
	require.Equal(t, []string{"http://127.0.0.1:33418/callback"}, doc.Metadata.RedirectURIs)
	require.Equal(t, "none", doc.Metadata.TokenEndpointAuthMethod)
	require.False(t, doc.DeclaresSecret)
}

func TestADocumentWithASecretIsReportedAsSuch(t *testing.T) {
	for _, extra := range []string{`,"client_secret":"s3cret"`, `,"client_secret_expires_at":0`, `,"client_secret":null`} {
		t.Run(extra, func(t *testing.T) {
			var s *docServer
			s = newDocServer(t, serveDocument(&s, nil, extra))
			doc, err := newFetcher(t, s, cimd.Options{}).FetchClientMetadata(t.Context(), s.URL+"/client.json")
			require.NoError(t, err)
			require.True(t, doc.DeclaresSecret)
		})
	}
}

func TestTheClientIDOfTheDocumentIsReportedVerbatim(t *testing.T) {
	s := newDocServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprint(w, document("https://elsewhere.example/client.json", ""))
	})
	doc, err := newFetcher(t, s, cimd.Options{}).FetchClientMetadata(t.Context(), s.URL+"/client.json")
	require.NoError(t, err)
	require.Equal(t, "https://elsewhere.example/client.json", doc.ClientID, "the use case compares it with the URL")
}

func TestLoopbackIsRefusedWithoutThePrivateNetworkAllowance(t *testing.T) {
	var s *docServer
	s = newDocServer(t, serveDocument(&s, nil, ""))
	f, err := cimd.New(cimd.Options{RootCAs: s.roots(), Timeout: 3 * time.Second})
	require.NoError(t, err)
	port := s.Listener.Addr().(*net.TCPAddr).Port

	// A name that resolves to loopback passes the URL rule; the dialer
	// refuses the address it resolved to.
	_, err = f.FetchClientMetadata(t.Context(), fmt.Sprintf("https://localhost:%d/client.json", port))
	require.ErrorIs(t, err, cimd.ErrAddressRefused)
	require.Contains(t, err.Error(), fmt.Sprintf("localhost:%d", port), "the error names the host")

	// An IP literal does not even reach the dialer.
	_, err = f.FetchClientMetadata(t.Context(), s.URL+"/client.json")
	require.ErrorIs(t, err, cimd.ErrURL)

	require.Zero(t, s.conns.Load(), "no connection reached the listener")
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	var s *docServer
	s = newDocServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/client.json" {
			http.Redirect(w, r, "/moved.json", http.StatusFound)
			return
		}
		serveDocument(&s, nil, "")(w, r)
	})
	_, err := newFetcher(t, s, cimd.Options{}).FetchClientMetadata(t.Context(), s.URL+"/client.json")
	require.ErrorIs(t, err, cimd.ErrRedirect)
	require.Zero(t, s.Hits("/moved.json"))
}

func TestAnOversizeDocumentIsRefused(t *testing.T) {
	padding := `,"padding":"` + strings.Repeat("x", cimd.DefaultMaxDocumentBytes) + `"`
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			var s *docServer
			s = newDocServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				body := document(s.URL+r.URL.Path, padding)
				if !chunked {
					w.Header().Set("Content-Length", fmt.Sprint(len(body)))
				}
				for i := 0; i < len(body); i += 1024 {
					_, _ = fmt.Fprint(w, body[i:min(i+1024, len(body))])
					if chunked {
						w.(http.Flusher).Flush()
					}
				}
			})
			_, err := newFetcher(t, s, cimd.Options{}).FetchClientMetadata(t.Context(), s.URL+"/client.json")
			require.ErrorIs(t, err, cimd.ErrTooLarge)
		})
	}

	// Just under the cap is fine.
	var s *docServer
	s = newDocServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		base := document(s.URL+r.URL.Path, `,"padding":""`)
		fill := strings.Repeat("x", cimd.DefaultMaxDocumentBytes-len(base))
		_, _ = fmt.Fprint(w, document(s.URL+r.URL.Path, `,"padding":"`+fill+`"`))
	})
	_, err := newFetcher(t, s, cimd.Options{}).FetchClientMetadata(t.Context(), s.URL+"/client.json")
	require.NoError(t, err)
}

func TestOnlyJSONContentTypesAreAccepted(t *testing.T) {
	cases := map[string]bool{
		"application/json":                      true,
		"application/json; charset=utf-8":       true,
		"application/oauth-client-info+json":    true,
		"text/html":                             false,
		"text/plain; charset=utf-8":             false,
		"application/javascript":                false,
		"":                                      false,
		"application/json-seq":                  false,
		"application/x-www-form-urlencoded+xml": false,
	}
	for ct, ok := range cases {
		t.Run(ct, func(t *testing.T) {
			var s *docServer
			s = newDocServer(t, serveDocument(&s, map[string]string{"Content-Type": ct}, ""))
			_, err := newFetcher(t, s, cimd.Options{}).FetchClientMetadata(t.Context(), s.URL+"/client.json")
			if ok {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, cimd.ErrContentType)
			}
		})
	}
}

func TestOnlyStatus200IsAccepted(t *testing.T) {
	for _, status := range []int{http.StatusNoContent, http.StatusNotFound, http.StatusInternalServerError, http.StatusNotModified} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			var s *docServer
			s = newDocServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				_, _ = fmt.Fprint(w, document(s.URL+r.URL.Path, ""))
			})
			_, err := newFetcher(t, s, cimd.Options{}).FetchClientMetadata(t.Context(), s.URL+"/client.json")
			require.Error(t, err)
			if status == http.StatusNotModified {
				require.ErrorIs(t, err, cimd.ErrRedirect, "3xx")
			} else {
				require.ErrorIs(t, err, cimd.ErrStatus)
			}
		})
	}
}

func TestABodyThatIsNotAJSONObjectIsRefusedWithoutQuotingIt(t *testing.T) {
	for _, body := range []string{`["secret-looking-body"]`, `{"client_id": secret-looking-body`, `secret-looking-body`, `{"redirect_uris":"secret-looking-body"}`} {
		t.Run(body, func(t *testing.T) {
			s := newDocServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = fmt.Fprint(w, body)
			})
			_, err := newFetcher(t, s, cimd.Options{}).FetchClientMetadata(t.Context(), s.URL+"/client.json")
			require.ErrorIs(t, err, cimd.ErrNotJSON)
			require.NotContains(t, err.Error(), "secret-looking-body")
		})
	}
}

func TestAServerThatHangsTimesOut(t *testing.T) {
	release := make(chan struct{})
	s := newDocServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release) // before s.Close, which waits for the handler
	f := newFetcher(t, s, cimd.Options{Timeout: 300 * time.Millisecond})
	start := time.Now()
	_, err := f.FetchClientMetadata(t.Context(), s.URL+"/client.json")
	require.Error(t, err)
	require.Less(t, time.Since(start), 3*time.Second)
}

func TestACallerThatGivesUpStopsWaiting(t *testing.T) {
	release := make(chan struct{})
	s := newDocServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	f := newFetcher(t, s, cimd.Options{Timeout: 5 * time.Second})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := f.FetchClientMetadata(ctx, s.URL+"/client.json")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 2*time.Second)
}

func TestCachingHonoursMaxAgeWithinAFloorAndACeiling(t *testing.T) {
	cases := []struct {
		name         string
		cacheControl string
		fresh, stale time.Duration
	}{
		{"no directive: the default", "", cimd.DefaultTTL - time.Second, cimd.DefaultTTL + time.Second},
		{"max-age", "public, max-age=600", 599 * time.Second, 601 * time.Second},
		{"max-age=0: the floor", "max-age=0", cimd.DefaultMinTTL - time.Second, cimd.DefaultMinTTL + time.Second},
		{"no-store: the floor", "no-store", cimd.DefaultMinTTL - time.Second, cimd.DefaultMinTTL + time.Second},
		{"a year: the ceiling", "max-age=31536000", cimd.DefaultMaxTTL - time.Second, cimd.DefaultMaxTTL + time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			header := map[string]string{}
			if tc.cacheControl != "" {
				header["Cache-Control"] = tc.cacheControl
			}
			var s *docServer
			s = newDocServer(t, serveDocument(&s, header, ""))
			clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			f := newFetcher(t, s, cimd.Options{Now: clk.Now})
			id := s.URL + "/client.json"

			fetch := func() {
				t.Helper()
				_, err := f.FetchClientMetadata(t.Context(), id)
				require.NoError(t, err)
			}
			fetch()
			clk.Advance(tc.fresh)
			fetch()
			require.Equal(t, 1, s.Hits("/client.json"), "still fresh after %s", tc.fresh)
			clk.Advance(tc.stale - tc.fresh)
			fetch()
			require.Equal(t, 2, s.Hits("/client.json"), "stale after %s", tc.stale)
		})
	}
}

func TestFailuresAreCachedBriefly(t *testing.T) {
	var broken atomic.Bool
	broken.Store(true)
	var s *docServer
	s = newDocServer(t, func(w http.ResponseWriter, r *http.Request) {
		if broken.Load() {
			http.Error(w, "nope", http.StatusNotFound)
			return
		}
		serveDocument(&s, nil, "")(w, r)
	})
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	f := newFetcher(t, s, cimd.Options{Now: clk.Now})
	id := s.URL + "/client.json"

	for range 5 {
		_, err := f.FetchClientMetadata(t.Context(), id)
		require.ErrorIs(t, err, cimd.ErrStatus)
	}
	require.Equal(t, 1, s.Hits("/client.json"), "a failing URL is not fetched again at once")

	broken.Store(false)
	clk.Advance(cimd.DefaultNegativeTTL - time.Second)
	_, err := f.FetchClientMetadata(t.Context(), id)
	require.ErrorIs(t, err, cimd.ErrStatus)
	clk.Advance(2 * time.Second)
	_, err = f.FetchClientMetadata(t.Context(), id)
	require.NoError(t, err, "a repaired document is picked up once the failure expires")
	require.Equal(t, 2, s.Hits("/client.json"))
}

func TestConcurrentRequestsShareOneFetch(t *testing.T) {
	const callers = 20
	started := make(chan struct{})
	var s *docServer
	s = newDocServer(t, func(w http.ResponseWriter, r *http.Request) {
		<-started // answer only once every caller is waiting
		serveDocument(&s, nil, "")(w, r)
	})
	f := newFetcher(t, s, cimd.Options{})
	id := s.URL + "/client.json"

	var wg sync.WaitGroup
	var waiting sync.WaitGroup
	errs := make(chan error, callers)
	waiting.Add(callers)
	for range callers {
		wg.Go(func() {
			waiting.Done()
			_, err := f.FetchClientMetadata(t.Context(), id)
			errs <- err
		})
	}
	waiting.Wait()
	time.Sleep(50 * time.Millisecond) // let the callers reach the cache
	close(started)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, 1, s.Hits("/client.json"))
}

func TestTheCacheIsBoundedInEntries(t *testing.T) {
	var s *docServer
	s = newDocServer(t, serveDocument(&s, nil, ""))
	f := newFetcher(t, s, cimd.Options{MaxEntries: 2})
	get := func(path string) {
		t.Helper()
		_, err := f.FetchClientMetadata(t.Context(), s.URL+path)
		require.NoError(t, err)
	}
	get("/a.json")
	get("/b.json")
	get("/a.json") // a is now the most recently used
	get("/c.json") // evicts b
	get("/a.json")
	require.Equal(t, 1, s.Hits("/a.json"))
	get("/b.json")
	require.Equal(t, 2, s.Hits("/b.json"), "the least recently used entry was evicted")
}

func TestTheCacheIsBoundedInBytes(t *testing.T) {
	var s *docServer
	s = newDocServer(t, serveDocument(&s, nil, `,"padding":"`+strings.Repeat("x", 3000)+`"`))
	// Room for one document of ~3 KB, not two.
	f := newFetcher(t, s, cimd.Options{MaxCacheBytes: 5000})
	for _, p := range []string{"/a.json", "/b.json", "/a.json"} {
		_, err := f.FetchClientMetadata(t.Context(), s.URL+p)
		require.NoError(t, err)
	}
	require.Equal(t, 2, s.Hits("/a.json"))
}

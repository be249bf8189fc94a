package cimd_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/cimd"
	"github.com/oidcproxy/oidcproxy/domain"
)

// loopbackCert is a self-signed certificate for 127.0.0.1 to 127.0.0.n, so
// that each of n document servers is a host of its own (the per-host limits
// key on the host name, not the port).
func loopbackCert(t *testing.T, n int) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "cimd limits test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for i := 1; i <= n; i++ {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IPv4(127, 0, 0, byte(i)))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// inflight counts requests being served, overall and per host, and keeps
// the highest counts seen.
type inflight struct {
	mu            sync.Mutex
	now, max      int
	perHost, peak map[string]int
}

func (c *inflight) enter(host string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now++
	c.max = max(c.max, c.now)
	c.perHost[host]++
	c.peak[host] = max(c.peak[host], c.perHost[host])
}

func (c *inflight) leave(host string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now--
	c.perHost[host]--
}

func TestConcurrentDistinctURLsNeverExceedTheGlobalAndPerHostBounds(t *testing.T) {
	const hosts, perHost, bound = 50, 4, 8
	cert, pool := loopbackCert(t, hosts)
	counts := &inflight{perHost: map[string]int{}, peak: map[string]int{}}
	urls := make([]string, 0, hosts*perHost)
	for i := 1; i <= hosts; i++ {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:0", i))
		if err != nil {
			t.Skipf("this machine cannot listen on 127.0.0.%d: %v", i, err)
		}
		host := ln.Addr().String()
		s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			counts.enter(host)
			defer counts.leave(host)
			time.Sleep(300 * time.Millisecond) // so that fetches overlap
			w.Header().Set("Content-Type", "application/json")
			_, _ = fmt.Fprint(w, document("https://"+host+r.URL.RequestURI(), ""))
		}))
		_ = s.Listener.Close()
		s.Listener = ln
		s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		s.StartTLS()
		t.Cleanup(s.Close)
		for j := range perHost {
			urls = append(urls, fmt.Sprintf("https://%s/client.json?n=%d", host, j))
		}
	}
	f, err := cimd.New(cimd.Options{AllowPrivateNetwork: true, RootCAs: pool, Timeout: 5 * time.Second, MaxConcurrentFetches: bound})
	require.NoError(t, err)

	var wg sync.WaitGroup
	var fetched, refused atomic.Int64
	var slowestRefusal atomic.Int64
	for _, u := range urls {
		wg.Go(func() {
			start := time.Now()
			_, err := f.FetchClientMetadata(t.Context(), u)
			switch {
			case err == nil:
				fetched.Add(1)
			case assertBusy(t, err):
				refused.Add(1)
				for d := int64(time.Since(start)); ; {
					old := slowestRefusal.Load()
					if d <= old || slowestRefusal.CompareAndSwap(old, d) {
						break
					}
				}
			}
		})
	}
	wg.Wait()
	counts.mu.Lock()
	defer counts.mu.Unlock()
	require.LessOrEqual(t, counts.max, bound, "fetches in flight at once")
	require.Positive(t, counts.max)
	for host, peak := range counts.peak {
		require.LessOrEqual(t, peak, cimd.DefaultMaxConcurrentPerHost, "fetches in flight to %s", host)
	}
	require.Equal(t, int64(len(urls)), fetched.Load()+refused.Load())
	require.Positive(t, fetched.Load())
	require.Positive(t, refused.Load(), "the excess is refused")
	require.Less(t, time.Duration(slowestRefusal.Load()), 2*time.Second, "a refusal does not wait for a slot (queued, the last would wait about 200/8 × 300 ms)")
}

// assertBusy checks that err is the limits' refusal: temporarily_unavailable
// wrapping ErrBusy.
func assertBusy(t *testing.T, err error) bool {
	t.Helper()
	require.ErrorIs(t, err, cimd.ErrBusy)
	e, ok := domain.AsError(err)
	require.True(t, ok, "a *domain.Error: %v", err)
	require.Equal(t, domain.CodeTemporarilyUnavailable, e.Code)
	return true
}

func TestASequentialFloodOfDistinctURLsIsRateLimitedPerHost(t *testing.T) {
	var s *docServer
	s = newDocServer(t, serveDocument(&s, nil, ""))
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	f := newFetcher(t, s, cimd.Options{Now: clk.Now})

	start := time.Now()
	var refused []string
	for i := range 500 {
		id := fmt.Sprintf("%s/client.json?flood=%d", s.URL, i)
		if _, err := f.FetchClientMetadata(t.Context(), id); err != nil {
			assertBusy(t, err)
			refused = append(refused, id)
		}
	}
	require.Equal(t, cimd.DefaultHostBurst, s.Hits("/client.json"), "a burst, then nothing while the clock stands still")
	require.Len(t, refused, 500-cimd.DefaultHostBurst)
	require.Less(t, time.Since(start), 10*time.Second)

	// One more per interval; a refused URL was not remembered as failed.
	clk.Advance(cimd.DefaultHostInterval)
	_, err := f.FetchClientMetadata(t.Context(), refused[0])
	require.NoError(t, err)
	_, err = f.FetchClientMetadata(t.Context(), refused[1])
	assertBusy(t, err)
	require.Equal(t, cimd.DefaultHostBurst+1, s.Hits("/client.json"))
}

func TestAFailingHostIsNotContactedAgainWithinTheWindow(t *testing.T) {
	var status atomic.Int64
	status.Store(http.StatusServiceUnavailable)
	var s *docServer
	s = newDocServer(t, func(w http.ResponseWriter, r *http.Request) {
		if code := int(status.Load()); code != http.StatusOK {
			http.Error(w, "down", code)
			return
		}
		serveDocument(&s, nil, "")(w, r)
	})
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	f := newFetcher(t, s, cimd.Options{Now: clk.Now})

	_, err := f.FetchClientMetadata(t.Context(), s.URL+"/a.json")
	require.ErrorIs(t, err, cimd.ErrStatus)
	status.Store(http.StatusOK)
	for _, p := range []string{"/b.json", "/c.json?x=1", "/d.json"} {
		_, err := f.FetchClientMetadata(t.Context(), s.URL+p)
		require.ErrorIs(t, err, cimd.ErrStatus, "the host's failure is remembered for %s", p)
	}
	require.EqualValues(t, 1, s.conns.Load(), "the failing host was contacted once")

	clk.Advance(cimd.DefaultHostFailureTTL + time.Second)
	_, err = f.FetchClientMetadata(t.Context(), s.URL+"/e.json")
	require.NoError(t, err, "contacted again after the window")
	require.EqualValues(t, 2, s.conns.Load())
}

func TestAMissingDocumentDoesNotCondemnItsHost(t *testing.T) {
	var s *docServer
	s = newDocServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing.json" {
			http.NotFound(w, r)
			return
		}
		serveDocument(&s, nil, "")(w, r)
	})
	f := newFetcher(t, s, cimd.Options{})
	_, err := f.FetchClientMetadata(t.Context(), s.URL+"/missing.json")
	require.ErrorIs(t, err, cimd.ErrStatus)
	_, err = f.FetchClientMetadata(t.Context(), s.URL+"/client.json")
	require.NoError(t, err)
}

func TestAnUnreachableHostIsRemembered(t *testing.T) {
	// A listener that accepts and hangs up at once: no TLS handshake
	// completes.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			_ = c.Close()
		}
	}()
	f, err := cimd.New(cimd.Options{AllowPrivateNetwork: true, Timeout: 2 * time.Second})
	require.NoError(t, err)
	base := "https://" + ln.Addr().String()
	_, err = f.FetchClientMetadata(t.Context(), base+"/a.json")
	require.Error(t, err)
	_, err = f.FetchClientMetadata(t.Context(), base+"/b.json")
	require.ErrorContains(t, err, "host failed recently")
	require.EqualValues(t, 1, accepted.Load())
}

package cimd

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/wire"

	"github.com/oidcproxy/oidcproxy/adapters/oauthhttp"
	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// Defaults for Options fields left zero.
const (
	// DefaultMaxDocumentBytes is the draft's recommended cap on a client
	// metadata document: 5 kilobytes.
	DefaultMaxDocumentBytes = 5 << 10
	// DefaultMaxJWKSBytes caps a key set fetched from a jwks_uri: room for
	// a handful of keys, RSA ones included, and for a rotation's overlap.
	DefaultMaxJWKSBytes = 32 << 10
	// DefaultTimeout bounds one fetch, from dial to the last byte.
	DefaultTimeout = 5 * time.Second
	// MaxTimeout caps Timeout: a fetch holds up the user's /authorize
	// request (or a client's /token request, for a jwks_uri) while it
	// runs, and a document or key set is a few kilobytes, so a server
	// slower than this is not worth waiting for, whatever bound the
	// proxy's other outbound calls have.
	MaxTimeout = 5 * time.Second
	// DefaultMinTTL and DefaultMaxTTL clamp the document's max-age: a
	// floor, so that "no-cache" cannot make every request a fetch, and a
	// ceiling, so that a changed document is seen within a day.
	DefaultMinTTL = time.Minute
	DefaultMaxTTL = 24 * time.Hour
	// DefaultTTL applies when the document says nothing about caching.
	DefaultTTL = 5 * time.Minute
	// DefaultNegativeTTL is how long a failure is remembered: long enough
	// that a hostile URL cannot make us fetch in a loop, short enough that
	// a fixed document is picked up soon.
	DefaultNegativeTTL = 30 * time.Second
	// DefaultMaxEntries and DefaultMaxCacheBytes bound the cache.
	DefaultMaxEntries    = 1000
	DefaultMaxCacheBytes = 8 << 20
)

// Reasons a fetch fails; errors wrap one of them (test with errors.Is).
var (
	// ErrURL: the client_id is not an acceptable client identifier URL.
	ErrURL = errors.New("client_id is not an acceptable metadata document URL")
	// ErrAddressRefused: the host resolved to an address that is not public.
	ErrAddressRefused = errAddressRefused
	// ErrRedirect: the server answered with a redirect, which is not followed.
	ErrRedirect = errors.New("redirects are not followed")
	// ErrStatus: the server answered with a status other than 200.
	ErrStatus = errors.New("unexpected status")
	// ErrContentType: the answer is not JSON.
	ErrContentType = errors.New("content type is not JSON")
	// ErrTooLarge: the document exceeds the size cap.
	ErrTooLarge = errors.New("document is too large")
	// ErrNotJSON: the body is not a JSON object of client metadata.
	ErrNotJSON = errors.New("document is not a JSON object of client metadata")
)

var errAddressRefused = errors.New("address is not public")

// Options configure a Fetcher. Zero values take the defaults above.
type Options struct {
	// AllowPrivateNetwork lets the fetcher connect to loopback and private
	// addresses and accept IP-literal hosts: for `oidcproxy dev` and tests,
	// whose documents live on this machine. https stays mandatory.
	AllowPrivateNetwork bool
	// Timeout bounds each fetch; a longer one is cut to MaxTimeout.
	Timeout time.Duration
	// RootCAs verifies the document servers' certificates; nil means the
	// system roots. Tests pass their httptest server's pool.
	RootCAs *x509.CertPool
	// MaxDocumentBytes caps the response body.
	MaxDocumentBytes int64
	// MaxJWKSBytes caps a key set fetched from a jwks_uri.
	MaxJWKSBytes int64
	// MinTTL, MaxTTL, DefaultTTL and NegativeTTL govern caching.
	MinTTL, MaxTTL, DefaultTTL, NegativeTTL time.Duration
	// MaxEntries and MaxCacheBytes bound the cache; the least recently used
	// entries go first.
	MaxEntries    int
	MaxCacheBytes int64
	// Now tells the time for cache expiry and the per-host limits (the
	// proxy's clock); nil means time.Now.
	Now func() time.Time
	// MaxConcurrentFetches bounds the fetches in flight at once, and
	// MaxConcurrentPerHost those to one host; a fetch beyond either is
	// refused at once with ErrBusy.
	MaxConcurrentFetches, MaxConcurrentPerHost int
	// HostBurst fetches may go to one host at once, then one per
	// HostInterval; more are refused with ErrBusy.
	HostBurst    int
	HostInterval time.Duration
	// HostFailureTTL is how long a failing host is not contacted again.
	HostFailureTTL time.Duration
	// AdmitFetch, when set, decides whether a request may start a fetch:
	// it is asked on a cache miss that no fetch in flight covers (a
	// request that is answered from the cache, or that joins a fetch
	// already under way, costs nothing and is never asked). An error
	// refuses the fetch: FetchClientMetadata returns it wrapped in a
	// temporarily_unavailable *domain.Error, and nothing is cached. The
	// composition root limits fetches per client address with it; the
	// per-host limits above are the fetcher's own.
	AdmitFetch func(ctx context.Context) error
}

func (o *Options) defaults() {
	setDuration := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	setDuration(&o.Timeout, DefaultTimeout)
	o.Timeout = min(o.Timeout, MaxTimeout)
	setDuration(&o.MinTTL, DefaultMinTTL)
	setDuration(&o.MaxTTL, DefaultMaxTTL)
	setDuration(&o.DefaultTTL, DefaultTTL)
	setDuration(&o.NegativeTTL, DefaultNegativeTTL)
	setDuration(&o.HostInterval, DefaultHostInterval)
	setDuration(&o.HostFailureTTL, DefaultHostFailureTTL)
	setInt := func(n *int, v int) {
		if *n <= 0 {
			*n = v
		}
	}
	setInt(&o.MaxConcurrentFetches, DefaultMaxConcurrentFetches)
	setInt(&o.MaxConcurrentPerHost, DefaultMaxConcurrentPerHost)
	setInt(&o.HostBurst, DefaultHostBurst)
	if o.MaxDocumentBytes <= 0 {
		o.MaxDocumentBytes = DefaultMaxDocumentBytes
	}
	if o.MaxJWKSBytes <= 0 {
		o.MaxJWKSBytes = DefaultMaxJWKSBytes
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	if o.MaxCacheBytes <= 0 {
		o.MaxCacheBytes = DefaultMaxCacheBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Fetcher fetches and caches client metadata documents. It is safe for
// concurrent use.
type Fetcher struct {
	opts   Options
	client *http.Client
	cache  *cache[ports.ClientMetadataDocument]
	// keys caches JWK Sets fetched from jwks_uri (jwks.go).
	keys   *cache[[]byte]
	limits *limiter
}

var (
	_ ports.MetadataFetcher = (*Fetcher)(nil)
	_ ports.JWKSFetcher     = (*Fetcher)(nil)
)

// ProviderSet builds the Fetcher from the Options the composition root
// supplies, also as the fetcher of clients' jwks_uri key sets. Whether it
// also resolves client ID metadata documents is the configuration's
// choice, made where the Options are.
var ProviderSet = wire.NewSet(New, wire.Bind(new(ports.JWKSFetcher), new(*Fetcher)))

// New builds a Fetcher with its own guarded HTTP client.
func New(opts Options) (*Fetcher, error) {
	opts.defaults()
	if opts.MinTTL > opts.MaxTTL {
		return nil, fmt.Errorf("cimd: minimum cache lifetime %s exceeds the maximum %s", opts.MinTTL, opts.MaxTTL)
	}
	dialer := &net.Dialer{Timeout: opts.Timeout, Control: dialControl(opts.AllowPrivateNetwork)}
	transport := &http.Transport{
		// Never a proxy from the environment: the proxy would do the
		// connecting, and the address check would judge the proxy instead
		// of the document's host.
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		TLSClientConfig:        &tls.Config{RootCAs: opts.RootCAs, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    opts.Timeout,
		ResponseHeaderTimeout:  opts.Timeout,
		MaxResponseHeaderBytes: 16 << 10,
		// Each host is fetched rarely (the cache), and keeping connections
		// open to hosts that attackers choose buys nothing.
		DisableKeepAlives: true,
		ForceAttemptHTTP2: true,
	}
	client := &http.Client{
		Transport: transport,
		Timeout:   opts.Timeout,
		// The document must be served at the client_id URL itself; a
		// redirect could also point the fetch somewhere internal.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &Fetcher{
		opts: opts, client: client, limits: newLimiter(opts),
		cache: newCache[ports.ClientMetadataDocument](opts), keys: newCache[[]byte](opts),
	}, nil
}

// FetchClientMetadata returns the document at clientID: from the cache while
// it is fresh, otherwise fetched (once, however many callers ask at the
// same time). A failure is cached too, for NegativeTTL. A fetch beyond the
// global or per-host limits is refused at once with a temporarily_unavailable
// *domain.Error wrapping ErrBusy; a host that failed recently is not
// contacted again for HostFailureTTL.
func (f *Fetcher) FetchClientMetadata(ctx context.Context, clientID string) (ports.ClientMetadataDocument, error) {
	u, err := domain.ValidateClientIDURL(clientID, f.opts.AllowPrivateNetwork)
	if err != nil {
		return ports.ClientMetadataDocument{}, fmt.Errorf("cimd: %w: %w", ErrURL, err)
	}
	host := strings.ToLower(u.Hostname())
	return f.cache.get(ctx, clientID, 0, f.admit, func(ctx context.Context) (ports.ClientMetadataDocument, int64, time.Duration, error) {
		release, err := f.limits.acquire(host)
		if err != nil {
			if errors.Is(err, ErrBusy) {
				return ports.ClientMetadataDocument{}, 0, 0, err
			}
			return ports.ClientMetadataDocument{}, 0, 0, fmt.Errorf("cimd: fetch client metadata from %s: %w", u.Host, err)
		}
		doc, size, ttl, err := f.fetch(ctx, clientID)
		release(err)
		if err != nil {
			return doc, 0, 0, fmt.Errorf("cimd: fetch client metadata from %s: %w", u.Host, err)
		}
		return doc, size, ttl, nil
	})
}

// admit asks Options.AdmitFetch whether the request of ctx may start a
// fetch.
func (f *Fetcher) admit(ctx context.Context) error {
	if f.opts.AdmitFetch == nil {
		return nil
	}
	if err := f.opts.AdmitFetch(ctx); err != nil {
		return domain.ErrTemporarilyUnavailable("too many new client metadata documents were requested from your address; try again shortly",
			fmt.Errorf("cimd: fetch refused: %w", err))
	}
	return nil
}

// fetch performs one guarded GET and parses the answer. It returns the
// document, its size for the cache's accounting, and how long it may be
// cached.
func (f *Fetcher) fetch(ctx context.Context, clientID string) (ports.ClientMetadataDocument, int64, time.Duration, error) {
	var none ports.ClientMetadataDocument
	body, header, err := f.download(ctx, clientID, "application/json", f.opts.MaxDocumentBytes)
	if err != nil {
		return none, 0, 0, err
	}
	doc, err := parseDocument(body)
	if err != nil {
		return none, 0, 0, err
	}
	return doc, int64(len(body)), f.ttl(header), nil
}

// download performs one guarded GET of a JSON resource of at most limit
// bytes and returns its body and headers. Redirects are not followed, a
// status other than 200 or a type other than JSON is an error, and
// failures of the host itself are marked for the limiter.
func (f *Fetcher) download(ctx context.Context, target, accept string, limit int64) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrURL, err)
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", "oidcproxy (client metadata document fetcher)")
	resp, err := f.client.Do(req)
	if err != nil {
		// *url.Error repeats the whole URL; the host is named once, by the
		// caller.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, nil, failedHost(err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return nil, nil, fmt.Errorf("%w (status %d)", ErrRedirect, resp.StatusCode)
	case statusFailsHost(resp.StatusCode):
		return nil, nil, failedHost(fmt.Errorf("%w %d", ErrStatus, resp.StatusCode))
	case resp.StatusCode != http.StatusOK:
		return nil, nil, fmt.Errorf("%w %d", ErrStatus, resp.StatusCode)
	}
	if !isJSON(resp.Header.Get("Content-Type")) {
		return nil, nil, ErrContentType
	}
	if resp.ContentLength > limit {
		return nil, nil, fmt.Errorf("%w: over %d bytes", ErrTooLarge, limit)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, nil, failedHost(fmt.Errorf("read document: %w", err))
	}
	if int64(len(body)) > limit {
		return nil, nil, fmt.Errorf("%w: over %d bytes", ErrTooLarge, limit)
	}
	return body, resp.Header, nil
}

// isJSON accepts application/json and the application/*+json types the
// draft allows.
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// ttl is the document's max-age clamped to [MinTTL, MaxTTL]; no-store and
// no-cache count as zero (so the floor), and no directive means DefaultTTL.
func (f *Fetcher) ttl(h http.Header) time.Duration {
	ttl := f.opts.DefaultTTL
	for _, v := range h.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(name) {
			case "no-store", "no-cache":
				ttl = 0
			case "max-age":
				secs, err := strconv.ParseInt(strings.Trim(value, `"`), 10, 64)
				if err != nil || secs < 0 {
					continue
				}
				if secs > int64(f.opts.MaxTTL/time.Second) {
					ttl = f.opts.MaxTTL
				} else {
					ttl = time.Duration(secs) * time.Second
				}
			}
		}
	}
	return min(max(ttl, f.opts.MinTTL), f.opts.MaxTTL)
}

// wireDocument is the JSON form of a client metadata document: the RFC 7591
// metadata /register also reads, plus the client_id. Unknown members are
// ignored (the draft allows them); the secret members are kept raw only to
// notice that they are present.
type wireDocument struct {
	ClientID string `json:"client_id"`
	oauthhttp.ClientMetadata
	ClientSecret          json.RawMessage `json:"client_secret"`
	ClientSecretExpiresAt json.RawMessage `json:"client_secret_expires_at"`
}

// parseDocument decodes a document. Its errors never quote the body: the
// JSON decoder's messages can contain bytes of it.
func parseDocument(body []byte) (ports.ClientMetadataDocument, error) {
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return ports.ClientMetadataDocument{}, ErrNotJSON
	}
	var w wireDocument
	if err := json.Unmarshal(body, &w); err != nil {
		return ports.ClientMetadataDocument{}, ErrNotJSON
	}
	return ports.ClientMetadataDocument{
		ClientID:       w.ClientID,
		Metadata:       w.Command(),
		DeclaresSecret: len(w.ClientSecret) > 0 || len(w.ClientSecretExpiresAt) > 0,
	}, nil
}

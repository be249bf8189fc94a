package assertion

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// Caching of the trusted issuers' keys.
const (
	// MinKeysTTL and MaxKeysTTL clamp the max-age of an issuer's JWKS; a
	// forced refetch (after an unknown kid) happens at most once per
	// MinKeysTTL.
	MinKeysTTL = time.Minute
	MaxKeysTTL = time.Hour
	// DefaultKeysTTL applies when the JWKS says nothing about caching.
	DefaultKeysTTL = 10 * time.Minute
	// FailureTTL is how long a failed fetch is remembered, so that a
	// flood of ID-JAGs naming a down IdP does not become a flood of
	// fetches.
	FailureTTL = 10 * time.Second
	// maxDocumentBytes bounds a discovery document and a JWKS.
	maxDocumentBytes = 256 << 10
)

// IssuerOptions configure Issuers.
type IssuerOptions struct {
	// Issuers are the trusted issuer identifiers, exactly as their ID-JAGs
	// name them in iss and their discovery documents in issuer.
	Issuers []string
	// Client fetches discovery and keys: the upstream client (bounded,
	// instrumented, no redirects).
	Client *http.Client
	// Now tells the time for the cache; nil means time.Now.
	Now func() time.Time
}

// Issuers hands out the JWK Sets of the trusted ID-JAG issuers, found
// through their OpenID Connect discovery documents (issuer +
// "/.well-known/openid-configuration", whose issuer must equal it) and
// cached by their max-age. It never contacts an issuer it was not given.
type Issuers struct {
	client  *http.Client
	now     func() time.Time
	entries map[string]*issuerEntry
}

var _ ports.IssuerKeys = (*Issuers)(nil)

// issuerEntry is one issuer's cached keys. Its mutex is held while the
// keys are fetched, so concurrent requests wait for one fetch; other
// issuers are not affected.
type issuerEntry struct {
	mu       sync.Mutex
	keys     []byte
	err      error
	fetched  time.Time
	expires  time.Time
	issuer   string
	insecure bool // an http issuer: development and tests on loopback only
}

// NewIssuers checks the issuer identifiers (https, or http on a loopback
// host for development; no query or fragment, RFC 8414 2) and builds the
// key source.
func NewIssuers(opts IssuerOptions) (*Issuers, error) {
	if opts.Client == nil {
		return nil, errors.New("assertion: issuers: nil HTTP client")
	}
	if opts.Client.Timeout <= 0 {
		// A fetch runs detached from its caller (see IssuerJWKS) and holds
		// the issuer's entry: only the client's own timeout bounds it.
		return nil, errors.New("assertion: issuers: the HTTP client needs a timeout")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	i := &Issuers{client: opts.Client, now: opts.Now, entries: map[string]*issuerEntry{}}
	var errs []error
	for _, iss := range opts.Issuers {
		insecure, err := CheckIssuerURL(iss)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		i.entries[iss] = &issuerEntry{issuer: iss, insecure: insecure}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return i, nil
}

// CheckIssuerURL accepts an issuer identifier to trust: an absolute https
// URL without query or fragment (RFC 8414 2), or http on a loopback host
// (development and tests; insecure then reports it).
func CheckIssuerURL(iss string) (insecure bool, err error) {
	u, err := url.Parse(iss)
	if err != nil || !u.IsAbs() || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.Contains(iss, "#") {
		return false, fmt.Errorf("assertion: issuer %q is not an absolute URL without query and fragment", iss)
	}
	switch u.Scheme {
	case "https":
		return false, nil
	case "http":
		if loopback(u.Hostname()) {
			return true, nil
		}
	}
	return false, fmt.Errorf("assertion: issuer %q must use https", iss)
}

func loopback(host string) bool { return domain.IsLoopbackHost(host) }

// IssuerJWKS returns the JWK Set of iss, from the cache while it is fresh.
// fresh forces a new fetch when the cached set is at least MinKeysTTL old
// (the IdP may have rotated). A failure is remembered for FailureTTL.
func (i *Issuers) IssuerJWKS(ctx context.Context, iss string, fresh bool) ([]byte, error) {
	e, ok := i.entries[iss]
	if !ok {
		return nil, fmt.Errorf("assertion: %q is not a trusted issuer", iss)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := i.now()
	if now.Before(e.expires) && (!fresh || now.Sub(e.fetched) < MinKeysTTL) {
		return e.keys, e.err
	}
	// The fetch is the cache's, not the caller's: it runs detached from the
	// caller's context (bounded by the HTTP client's timeout), so a caller
	// that gives up cannot leave its cancellation cached as the issuer's
	// failure for every other caller.
	keys, ttl, err := i.fetch(context.WithoutCancel(ctx), e)
	now = i.now()
	e.fetched = now
	if err != nil {
		e.keys, e.err, e.expires = nil, err, now.Add(FailureTTL)
		return nil, err
	}
	e.keys, e.err, e.expires = keys, nil, now.Add(ttl)
	return keys, nil
}

// fetch reads the issuer's discovery document, checks it names the issuer,
// and fetches the JWKS it points to.
func (i *Issuers) fetch(ctx context.Context, e *issuerEntry) ([]byte, time.Duration, error) {
	fail := func(err error) ([]byte, time.Duration, error) {
		return nil, 0, fmt.Errorf("assertion: keys of issuer %s: %w", e.issuer, err)
	}
	body, _, err := i.get(ctx, strings.TrimSuffix(e.issuer, "/")+"/.well-known/openid-configuration")
	if err != nil {
		return fail(fmt.Errorf("discovery: %w", err))
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return fail(errors.New("discovery: not a JSON object"))
	}
	if doc.Issuer != e.issuer {
		// OpenID Connect Discovery 4.3: the document must name the issuer
		// it was fetched for, or it may be another's keys.
		return fail(errors.New("discovery: the document names another issuer"))
	}
	u, err := url.Parse(doc.JWKSURI)
	if err != nil || !u.IsAbs() || u.Host == "" || !(u.Scheme == "https" || (e.insecure && u.Scheme == "http" && loopback(u.Hostname()))) {
		return fail(errors.New("discovery: jwks_uri is not an https URL"))
	}
	keys, header, err := i.get(ctx, doc.JWKSURI)
	if err != nil {
		return fail(fmt.Errorf("jwks: %w", err))
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if t := bytes.TrimLeft(keys, " \t\r\n"); len(t) == 0 || t[0] != '{' || json.Unmarshal(keys, &set) != nil || set.Keys == nil {
		return fail(errors.New("jwks: not a JWK Set"))
	}
	return keys, maxAge(header), nil
}

// get fetches a JSON document of at most maxDocumentBytes.
func (i *Issuers) get(ctx context.Context, target string) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := i.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "application/json" && !(strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return nil, nil, errors.New("not JSON")
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	if err != nil {
		return nil, nil, err
	}
	if len(body) > maxDocumentBytes {
		return nil, nil, fmt.Errorf("larger than %d bytes", maxDocumentBytes)
	}
	return body, resp.Header, nil
}

// maxAge is the answer's max-age clamped to [MinKeysTTL, MaxKeysTTL];
// DefaultKeysTTL without one.
func maxAge(h http.Header) time.Duration {
	ttl := DefaultKeysTTL
	for _, v := range h.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(name) {
			case "no-store", "no-cache":
				ttl = 0
			case "max-age":
				if secs, err := strconv.ParseInt(strings.Trim(value, `"`), 10, 64); err == nil && secs >= 0 {
					ttl = time.Duration(min(secs, int64(MaxKeysTTL/time.Second))) * time.Second
				}
			}
		}
	}
	return min(max(ttl, MinKeysTTL), MaxKeysTTL)
}

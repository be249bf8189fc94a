package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/oidcproxy/oidcproxy/adapters/boltstore"
	"github.com/oidcproxy/oidcproxy/domain"
)

// flowClient is what a browser and an MCP client share for one flow.
type flowClient struct {
	browser *http.Client
	api     *http.Client
}

// newFlowClient builds a scripted browser (its own cookie jar, no automatic
// redirects) and an API client on the shared connection pool.
func newFlowClient(transport *http.Transport) (*flowClient, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	return &flowClient{
		browser: &http.Client{
			Jar:       jar,
			Transport: transport,
			Timeout:   30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		api: &http.Client{Transport: transport, Timeout: 30 * time.Second},
	}, nil
}

// fullFlow runs one authorization as an MCP client and its user do:
// register, authorize, consent page, approve, upstream login, callback,
// token. It returns an error at the first step that does not answer as a
// healthy flow should.
func (p *proxy) fullFlow(ctx context.Context, transport *http.Transport) error {
	fc, err := newFlowClient(transport)
	if err != nil {
		return err
	}
	clientID, err := p.register(ctx, fc.api)
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	state, verifier := randomToken(), randomToken()
	authorize := p.BaseURL + "/authorize?" + url.Values{
		"response_type":         {domain.ResponseTypeCode},
		"client_id":             {clientID},
		"redirect_uri":          {clientRedirectURI},
		"state":                 {state},
		"code_challenge":        {s256(verifier)},
		"code_challenge_method": {"S256"},
		"resource":              {p.Resource},
	}.Encode()
	res, err := fetch(ctx, fc.browser, http.MethodGet, authorize, "")
	if err != nil || res.Status != http.StatusFound || res.Location.Path != "/consent" {
		return stepError("authorize", res, err)
	}
	consent, err := fetch(ctx, fc.browser, http.MethodGet, res.Location.String(), "")
	if err != nil || consent.Status != http.StatusOK {
		return stepError("consent page", consent, err)
	}
	action, fields, err := formFields(consent.Body)
	if err != nil {
		return fmt.Errorf("consent page: %w", err)
	}
	fields.Set("decision", "approve")
	target, err := url.Parse(p.BaseURL)
	if err != nil {
		return err
	}
	actionURL, err := target.Parse(action)
	if err != nil {
		return fmt.Errorf("consent form action: %w", err)
	}
	up, err := fetch(ctx, fc.browser, http.MethodPost, actionURL.String(), fields.Encode())
	if err != nil || up.Status != http.StatusSeeOther {
		return stepError("approve", up, err)
	}
	callback, err := p.IdP.Login(ctx, fc.browser, up.Location.String())
	if err != nil {
		return fmt.Errorf("upstream login: %w", err)
	}
	final, err := fetch(ctx, fc.browser, http.MethodGet, callback.String(), "")
	if err != nil || final.Status != http.StatusFound || !strings.HasPrefix(final.Location.String(), clientRedirectURI+"?") {
		return stepError("callback", final, err)
	}
	q := final.Location.Query()
	if q.Get("state") != state || q.Get("iss") == "" || q.Get("code") == "" {
		return fmt.Errorf("callback: redirect to the client lacks state, iss or code: %s", final.Location.Redacted())
	}
	tok, err := postToken(ctx, fc.api, p.TokenURL, codeExchangeBody(clientID, q.Get("code"), verifier, p.Resource))
	switch {
	case err != nil:
		return fmt.Errorf("token: %w", err)
	case tok.Status != http.StatusOK:
		return fmt.Errorf("token: HTTP %d %q", tok.Status, tok.Error)
	case !tok.Issued:
		return fmt.Errorf("token: %w", errNotIssued)
	}
	return nil
}

// register registers a public native client, as MCP clients do.
func (p *proxy) register(ctx context.Context, c *http.Client) (string, error) {
	body, err := json.Marshal(map[string]any{
		"client_name":   "Benchmark MCP Client",
		"redirect_uris": []string{clientRedirectURI},
		"grant_types":   []string{domain.GrantAuthorizationCode, domain.GrantRefreshToken},
	})
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.BaseURL+"/register", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var doc struct {
		ClientID string `json:"client_id"`
		Error    string `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&doc); err != nil {
		return "", fmt.Errorf("HTTP %d: %w", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusCreated || doc.ClientID == "" {
		return "", fmt.Errorf("HTTP %d %q", resp.StatusCode, doc.Error)
	}
	return doc.ClientID, nil
}

// page is a fetched response with its body read.
type page struct {
	Status   int
	Body     string
	Location *url.URL
}

func fetch(ctx context.Context, c *http.Client, method, target, form string) (page, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, strings.NewReader(form))
	if err != nil {
		return page{}, err
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		return page{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return page{}, err
	}
	p := page{Status: resp.StatusCode, Body: string(body), Location: &url.URL{}}
	if loc, err := resp.Location(); err == nil {
		p.Location = loc
	}
	return p, nil
}

// stepError explains a flow step that failed; the body is cut short (an
// error page says what went wrong in its first lines).
func stepError(step string, p page, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", step, err)
	}
	return fmt.Errorf("%s: HTTP %d, Location %q: %.300s", step, p.Status, p.Location.Redacted(), p.Body)
}

// formFields returns the action and the inputs (name → value) of the first
// form on a page.
func formFields(body string) (string, url.Values, error) {
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		return "", nil, err
	}
	values := url.Values{}
	action, found := "", false
	var walk func(n *html.Node, inForm bool)
	walk = func(n *html.Node, inForm bool) {
		if n.Type == html.ElementNode && n.Data == "form" && !found {
			action, found, inForm = attr(n, "action"), true, true
		}
		if inForm && n.Type == html.ElementNode && n.Data == "input" && attr(n, "name") != "" {
			values.Set(attr(n, "name"), attr(n, "value"))
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, inForm)
		}
	}
	walk(doc, false)
	if !found {
		return "", nil, errors.New("no form on the page")
	}
	return action, values, nil
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// fullFlowRun runs b.N complete flows on about concurrentClients
// goroutines and reports flows per second and the latency of a flow.
func fullFlowRun(b *testing.B, opts boltstore.Options) {
	p := newProxy(b)
	p.start(opts)
	transport := newTransport()
	b.Cleanup(transport.CloseIdleConnections)
	warmUp(b, &http.Client{Transport: transport}, p.BaseURL+"/healthz")
	ctx := context.Background()
	var (
		fails failures
		flows atomic.Int64
		lat   latencies
	)
	setClients(b)
	stopProfile := profileTimed(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 256)
		for pb.Next() {
			start := time.Now()
			if err := p.fullFlow(ctx, transport); err != nil {
				fails.add(err)
				continue
			}
			local = append(local, time.Since(start))
			flows.Add(1)
		}
		lat.merge(local)
	})
	b.StopTimer()
	stopProfile()
	fails.check(b)
	b.ReportMetric(float64(flows.Load())/b.Elapsed().Seconds(), "flows/s")
	b.ReportMetric(lat.quantile(0.50), "p50-ms")
	b.ReportMetric(lat.quantile(0.99), "p99-ms")
}

// BenchmarkFullFlow measures whole authorizations per second, 50 at a
// time: register → authorize → consent page → approve → upstream login
// (the Faulty IdP, in process, redirects back at once) → callback (the
// proxy redeems the upstream code at the IdP and verifies its ES256 ID
// token) → token. Each flow has its own browser cookie jar; all share one
// keep-alive connection pool. fsync is production; nosync shows the CPU
// cost alone.
func BenchmarkFullFlow(b *testing.B) {
	b.Run("fsync", func(b *testing.B) { fullFlowRun(b, boltstore.Options{}) })
	b.Run("nosync", func(b *testing.B) { fullFlowRun(b, boltstore.Options{NoSync: true}) })
}

// Package browser is a scripted user agent for tests and the conformance
// run: it follows redirects, approves oidcproxy's consent page and signs in
// on an identity provider's login form, like a person would.
package browser

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/html"
)

// maxSteps bounds a flow so a redirect loop fails instead of hanging.
const maxSteps = 32

// Browser keeps cookies across the flow and never follows redirects on its
// own, so every hop is visible.
type Browser struct {
	Client   *http.Client
	Username string
	Password string
	// StopAt, when set, ends the flow at the first redirect to a URL with
	// this prefix, without visiting it (the client's redirect URI when no
	// one listens there).
	StopAt string
}

// New returns a browser that signs in with the given credentials.
func New(username, password string) *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{
		Client: &http.Client{
			Jar:           jar,
			Timeout:       15 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		Username: username,
		Password: password,
	}
}

// Result is where the flow ended.
type Result struct {
	URL    *url.URL // the last URL visited, or the StopAt redirect
	Status int
	Body   string
}

// Authorize starts at authURL and walks the flow: redirects, the consent
// page (approved), the IdP's login form (signed in). It returns at StopAt,
// or at the first page it has nothing to do on.
func (b *Browser) Authorize(ctx context.Context, authURL string) (Result, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return Result{}, err
	}
	for range maxSteps {
		if b.StopAt != "" && strings.HasPrefix(req.URL.String(), b.StopAt) {
			return Result{URL: req.URL}, nil
		}
		resp, err := b.Client.Do(req)
		if err != nil {
			return Result{}, fmt.Errorf("browser: %s %s: %w", req.Method, req.URL.Redacted(), err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return Result{}, fmt.Errorf("browser: read %s: %w", req.URL.Redacted(), err)
		}
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			next, err := resp.Location()
			if err != nil {
				return Result{}, fmt.Errorf("browser: redirect without location from %s", req.URL.Redacted())
			}
			if next.Scheme != "http" && next.Scheme != "https" {
				return Result{URL: next, Status: resp.StatusCode}, nil
			}
			if req, err = http.NewRequestWithContext(ctx, http.MethodGet, next.String(), nil); err != nil {
				return Result{}, err
			}
			continue
		}
		res := Result{URL: req.URL, Status: resp.StatusCode, Body: string(body)}
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), "html") {
			return res, nil
		}
		f, ok := findForm(string(body), req.URL)
		if !ok {
			return res, nil
		}
		switch {
		case f.password != "":
			// Without credentials of its own the browser submits what
			// the page filled in, as a person would.
			if b.Username != "" || b.Password != "" {
				f.values.Set(f.username, b.Username)
				f.values.Set(f.password, b.Password)
			}
		case f.hasDecision:
			f.values.Set("decision", "approve")
		default:
			return res, nil
		}
		if req, err = http.NewRequestWithContext(ctx, http.MethodPost, f.action.String(), strings.NewReader(f.values.Encode())); err != nil {
			return Result{}, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", f.action.Scheme+"://"+f.action.Host)
	}
	return Result{}, errors.New("browser: too many steps")
}

type form struct {
	action      *url.URL
	values      url.Values
	username    string
	password    string
	hasDecision bool
}

// findForm returns the first form of a page with its inputs: a login form
// (it has a password input) or a consent form (a "decision" button).
func findForm(page string, base *url.URL) (form, bool) {
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		return form{}, false
	}
	var found *html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if found == nil && n.Type == html.ElementNode && n.Data == "form" {
			found = n
			return
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if found == nil {
		return form{}, false
	}
	action, err := base.Parse(attr(found, "action"))
	if err != nil {
		return form{}, false
	}
	f := form{action: action, values: url.Values{}}
	var inputs func(*html.Node)
	inputs = func(n *html.Node) {
		if n.Type == html.ElementNode {
			name := attr(n, "name")
			switch {
			case n.Data == "input" && name != "":
				switch strings.ToLower(attr(n, "type")) {
				case "password":
					f.password = name
					f.values.Set(name, attr(n, "value"))
				case "hidden":
					f.values.Set(name, attr(n, "value"))
				case "", "text", "email":
					if f.username == "" {
						f.username = name
					}
					f.values.Set(name, attr(n, "value"))
				}
			case n.Data == "button" && name == "decision":
				f.hasDecision = true
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			inputs(c)
		}
	}
	inputs(found)
	return f, true
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

package idp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"golang.org/x/net/html"
)

// Client is an OAuth client registered at the OP: a confidential web client
// authenticating with client_secret_basic.
type Client struct {
	ID, Secret   string
	RedirectURIs []string
}

// OP is a real OpenID provider (zitadel/oidc's example OP) on 127.0.0.1.
//
// What it does, as of zitadel/oidc v3.52.0:
//   - discovery at Issuer + /.well-known/openid-configuration, RS256 ID
//     tokens, PKCE S256, client_secret_basic and _post, a revocation
//     endpoint (RFC 7009) and a login form at /login/username;
//   - a refresh token only when "offline_access" is requested (it is in
//     scopes_supported), rotated on every refresh;
//   - opaque (encrypted, non-JWT) access tokens for web clients, so the
//     access-token checks (Audience, Algorithm) cannot pass against it;
//   - ID tokens without email and profile claims when an access token is
//     issued too (OpenID Connect Core 5.4): those come from userinfo;
//   - one user: Username/Password below, subject Subject, email Email
//     (verified).
type OP struct {
	// Issuer is http://127.0.0.1:port, without a trailing slash.
	Issuer string
	// ConfigURL is the discovery document URL.
	ConfigURL string
	// Username and Password log the test user in.
	Username, Password string
	// Subject and Email are the test user's sub and email claims.
	Subject, Email string

	server     *httptest.Server
	down       atomic.Bool
	tokenCalls atomic.Int64
	revokes    atomic.Int64
}

// StartOP starts an OP with the given clients on a random loopback port; it
// is closed by t.Cleanup. Each OP has its own storage, so tests may run in
// parallel.
func StartOP(t testing.TB, clients ...Client) *OP {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	registered := make(map[string]*storage.Client, len(clients))
	for _, c := range clients {
		registered[c.ID] = storage.WebClient(c.ID, c.Secret, c.RedirectURIs...)
	}
	users := storage.NewUserStore(issuer)
	// A nil logger: SetupServer would otherwise replace the process-wide
	// slog default.
	router := exampleop.SetupServer(issuer, storage.NewStorageWithClients(users, registered), nil, false)
	op := &OP{
		Issuer:    issuer,
		ConfigURL: issuer + "/.well-known/openid-configuration",
		Password:  "verysecure",
		Subject:   "id1",
		server:    srv,
	}
	u := users.GetUserByID(op.Subject)
	if u == nil {
		t.Fatalf("idp: example OP has no user %q", op.Subject)
	}
	op.Username, op.Email = u.Username, u.Email
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if op.down.Load() {
			// The client sees a connection closed without a response,
			// as from an IdP that went away.
			panic(http.ErrAbortHandler)
		}
		switch r.URL.Path {
		case "/oauth/token":
			op.tokenCalls.Add(1)
		case "/revoke":
			op.revokes.Add(1)
		}
		router.ServeHTTP(w, r)
	})
	srv.Start()
	t.Cleanup(srv.Close)
	return op
}

// SetDown makes every request fail with a dropped connection (true) or
// serves normally again (false).
func (op *OP) SetDown(down bool) { op.down.Store(down) }

// TokenCalls counts the requests to the token endpoint so far.
func (op *OP) TokenCalls() int { return int(op.tokenCalls.Load()) }

// RevocationCalls counts the requests to the revocation endpoint so far.
func (op *OP) RevocationCalls() int { return int(op.revokes.Load()) }

// Login logs the test user in like a browser would and returns the URL the
// OP finally redirects to outside itself: the client's redirect URI with
// code and state (or error). c must have a cookie jar and must not follow
// redirects (CheckRedirect returns http.ErrUseLastResponse).
func (op *OP) Login(ctx context.Context, c *http.Client, authURL string) (*url.URL, error) {
	return login(ctx, c, authURL, op.Issuer, op.Username, op.Password)
}

// login follows redirects inside the IdP at base and submits the first form
// with a password field; it stops at the first redirect that leaves base.
func login(ctx context.Context, c *http.Client, authURL, base, username, password string) (*url.URL, error) {
	origin, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("idp: login: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return nil, fmt.Errorf("idp: login: %w", err)
	}
	submitted := false
	for range 16 {
		resp, err := c.Do(req)
		if err != nil {
			return nil, fmt.Errorf("idp: login: %s %s: %w", req.Method, req.URL.Path, err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("idp: login: read %s: %w", req.URL.Path, err)
		}
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			next, err := resp.Location()
			if err != nil {
				return nil, fmt.Errorf("idp: login: redirect from %s: %w", req.URL.Path, err)
			}
			if next.Scheme != origin.Scheme || next.Host != origin.Host {
				return next, nil
			}
			if req, err = http.NewRequestWithContext(ctx, http.MethodGet, next.String(), nil); err != nil {
				return nil, fmt.Errorf("idp: login: %w", err)
			}
		case resp.StatusCode == http.StatusOK:
			if submitted {
				return nil, errors.New("idp: login: the login form came back: credentials refused")
			}
			form, err := parseLoginForm(body, req.URL)
			if err != nil {
				return nil, fmt.Errorf("idp: login: %s: %w", req.URL.Path, err)
			}
			form.values.Set(form.userField, username)
			form.values.Set(form.passwordField, password)
			if req, err = http.NewRequestWithContext(ctx, http.MethodPost, form.action.String(),
				strings.NewReader(form.values.Encode())); err != nil {
				return nil, fmt.Errorf("idp: login: %w", err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			submitted = true
		default:
			return nil, fmt.Errorf("idp: login: %s %s: HTTP %d", req.Method, req.URL.Path, resp.StatusCode)
		}
	}
	return nil, errors.New("idp: login: too many steps")
}

type loginForm struct {
	action        *url.URL
	values        url.Values
	userField     string
	passwordField string
}

// parseLoginForm finds the form that holds a password input and collects its
// inputs with their default values (hidden ones carry the auth request id).
func parseLoginForm(page []byte, base *url.URL) (loginForm, error) {
	doc, err := html.Parse(strings.NewReader(string(page)))
	if err != nil {
		return loginForm{}, fmt.Errorf("parse page: %w", err)
	}
	var found *loginForm
	var walkForm func(n *html.Node, f *loginForm)
	walkForm = func(n *html.Node, f *loginForm) {
		if n.Type == html.ElementNode && n.Data == "input" {
			name, typ, value := attr(n, "name"), strings.ToLower(attr(n, "type")), attr(n, "value")
			switch {
			case name == "":
			case typ == "password":
				f.passwordField = name
			case typ == "" || typ == "text" || typ == "email":
				if f.userField == "" {
					f.userField = name
				}
			}
			if name != "" && typ != "submit" && typ != "button" {
				f.values.Set(name, value)
			}
		}
		for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
			walkForm(ch, f)
		}
	}
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if found != nil {
			return
		}
		if n.Type == html.ElementNode && n.Data == "form" {
			f := loginForm{values: url.Values{}}
			walkForm(n, &f)
			if f.passwordField != "" && f.userField != "" {
				action, err := base.Parse(attr(n, "action"))
				if err == nil {
					f.action = action
					found = &f
				}
			}
			return
		}
		for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
			walk(ch)
		}
	}
	walk(doc)
	if found == nil {
		return loginForm{}, errors.New("no login form with a user and a password field")
	}
	return *found, nil
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

package idp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
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
//     (verified); StartOPWithUsers gives it a directory of users instead,
//     with claims of their own (groups, roles, nested objects) in their ID
//     tokens and userinfo answers.
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
	directory  *directory
}

// User is a person in the directory of an OP started by StartOPWithUsers.
type User struct {
	// Subject is the sub claim; Username and Password sign the user in.
	Subject, Username, Password string
	// Email and EmailVerified are what the OP says about the address (in
	// userinfo: the example OP keeps them out of ID tokens that come with
	// an access token).
	Email         string
	EmailVerified bool
	// Claims are added to the user's ID tokens and userinfo answers:
	// groups, roles, nested objects such as Keycloak's realm_access.
	Claims map[string]any
	// UserinfoClaims are added to userinfo answers only, as IdPs that keep
	// groups out of ID tokens do.
	UserinfoClaims map[string]any
}

// StartOP starts an OP with the given clients on a random loopback port; it
// is closed by t.Cleanup. Each OP has its own storage, so tests may run in
// parallel.
func StartOP(t testing.TB, clients ...Client) *OP {
	t.Helper()
	return startOP(t, nil, clients)
}

// StartOPWithUsers starts an OP (as StartOP) whose directory holds users
// instead of the example's own, each with the claims it lists. The OP's
// Username, Password, Subject and Email describe the first user.
//
// The example OP's storage has no place for claims of one's own, so the
// OP wraps it: the wrapper adds each user's claims where the example
// storage fills in ID tokens and userinfo answers, and everything else
// (login, codes, PKCE, refresh, revocation) stays the example's.
func StartOPWithUsers(t testing.TB, users []User, clients ...Client) *OP {
	t.Helper()
	if len(users) == 0 {
		t.Fatal("idp: StartOPWithUsers needs at least one user")
	}
	return startOP(t, newDirectory(users), clients)
}

func startOP(t testing.TB, dir *directory, clients []Client) *OP {
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	registered := make(map[string]*storage.Client, len(clients))
	for _, c := range clients {
		registered[c.ID] = storage.WebClient(c.ID, c.Secret, c.RedirectURIs...)
	}
	users := storage.NewUserStore(issuer)
	subject := "id1"
	if dir != nil {
		users, subject = dir, dir.first
	}
	var store exampleop.Storage = storage.NewStorageWithClients(users, registered)
	if dir != nil {
		store = &claimsStorage{Storage: store.(*storage.Storage), dir: dir}
	}
	// A nil logger: SetupServer would otherwise replace the process-wide
	// slog default.
	router := exampleop.SetupServer(issuer, store, nil, false)
	op := &OP{
		Issuer:    issuer,
		ConfigURL: issuer + "/.well-known/openid-configuration",
		Subject:   subject,
		server:    srv,
		directory: dir,
	}
	u := users.GetUserByID(op.Subject)
	if u == nil {
		t.Fatalf("idp: example OP has no user %q", op.Subject)
	}
	op.Username, op.Password, op.Email = u.Username, u.Password, u.Email
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

// LoginAs is Login for another user of the directory.
func (op *OP) LoginAs(ctx context.Context, c *http.Client, authURL, username, password string) (*url.URL, error) {
	return login(ctx, c, authURL, op.Issuer, username, password)
}

// SetClaims replaces the claims of the directory's user subject, in ID
// tokens and userinfo answers issued from now on (a refresh included): a
// change at the IdP, such as leaving a group.
func (op *OP) SetClaims(subject string, claims map[string]any) {
	if op.directory == nil {
		panic("idp: SetClaims needs an OP started by StartOPWithUsers")
	}
	op.directory.setClaims(subject, claims)
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

// directory is the users of an OP started by StartOPWithUsers, as the
// example storage's storage.UserStore, plus their claims.
type directory struct {
	first string
	users map[string]*storage.User // by subject; never changed after start
	mu    sync.Mutex
	// claims and userinfo are each user's extra claims, by subject.
	claims, userinfo map[string]map[string]any
}

var _ storage.UserStore = (*directory)(nil)

func newDirectory(users []User) *directory {
	d := &directory{first: users[0].Subject, users: map[string]*storage.User{},
		claims: map[string]map[string]any{}, userinfo: map[string]map[string]any{}}
	for _, u := range users {
		password := u.Password
		if password == "" {
			password = "verysecure"
		}
		d.users[u.Subject] = &storage.User{ID: u.Subject, Username: u.Username, Password: password,
			FirstName: u.Username, LastName: "Test", Email: u.Email, EmailVerified: u.EmailVerified}
		d.claims[u.Subject] = maps.Clone(u.Claims)
		d.userinfo[u.Subject] = maps.Clone(u.UserinfoClaims)
	}
	return d
}

// GetUserByID implements storage.UserStore.
func (d *directory) GetUserByID(id string) *storage.User { return d.users[id] }

// GetUserByUsername implements storage.UserStore.
func (d *directory) GetUserByUsername(username string) *storage.User {
	for _, u := range d.users {
		if u.Username == username {
			return u
		}
	}
	return nil
}

// ExampleClientID implements storage.UserStore: the example's service
// user, which the directory does not use.
func (d *directory) ExampleClientID() string { return storage.ServiceUserID }

func (d *directory) setClaims(subject string, claims map[string]any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.claims[subject] = maps.Clone(claims)
}

// add puts subject's claims into info; userinfo adds those for the
// userinfo endpoint only.
func (d *directory) add(info *oidc.UserInfo, subject string, userinfo bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, v := range d.claims[subject] {
		info.AppendClaims(k, v)
	}
	if userinfo {
		for k, v := range d.userinfo[subject] {
			info.AppendClaims(k, v)
		}
	}
}

// claimsStorage is the example storage with the directory's claims added
// to ID tokens (SetUserinfoFromRequest) and userinfo answers
// (SetUserinfoFromToken).
type claimsStorage struct {
	*storage.Storage
	dir *directory
}

var _ op.CanSetUserinfoFromRequest = (*claimsStorage)(nil)

// SetUserinfoFromRequest fills an ID token's claims.
func (s *claimsStorage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, info, req, scopes); err != nil {
		return err
	}
	s.dir.add(info, req.GetSubject(), false)
	return nil
}

// SetUserinfoFromToken fills a userinfo answer.
func (s *claimsStorage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, origin string) error {
	if err := s.Storage.SetUserinfoFromToken(ctx, info, tokenID, subject, origin); err != nil {
		return err
	}
	if info.Subject != "" {
		subject = info.Subject
	}
	s.dir.add(info, subject, true)
	return nil
}

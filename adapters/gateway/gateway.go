package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/oidcproxy/oidcproxy/adapters/oauthhttp"
	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/domain/policy"
	"github.com/oidcproxy/oidcproxy/internal/clientip"
	"github.com/oidcproxy/oidcproxy/internal/ratelimit"
	"github.com/oidcproxy/oidcproxy/ports"
)

// Defaults applied by New to zero Options fields.
const (
	DefaultUserHeader   = "X-Forwarded-User"
	DefaultEmailHeader  = "X-Forwarded-Email"
	DefaultClientHeader = "X-Forwarded-Client"
	DefaultMaxBodyBytes = 4 << 20
	// DefaultBodyTimeout is ample for a JSON-RPC message of MaxBodyBytes
	// over a slow link, and short enough that a client trickling its body
	// cannot hold a connection for long.
	DefaultBodyTimeout = 30 * time.Second
	// DefaultBackendIdleTimeout is below the 5 s keep-alive timeout of
	// Node.js's http.Server and of uvicorn, which most MCP servers run on,
	// so that the gateway closes an idle connection before the backend
	// does and never sends a request into one the backend is closing.
	DefaultBackendIdleTimeout = 4 * time.Second
)

// Options configures a Gateway.
type Options struct {
	// Upstream is the MCP backend, e.g. http://127.0.0.1:9000/mcp. Required.
	Upstream *url.URL
	// MountPath is the path the gateway is mounted at (MCP_PATH). A request
	// for MountPath goes to Upstream's path, a request for MountPath+"/x"
	// to Upstream's path + "/x"; anything else is answered 404. Default:
	// the path of Resource.
	MountPath string
	// Resource is our canonical resource URI, the audience every token must
	// carry, e.g. https://proxy.example/mcp. Required.
	Resource string
	// ResourceMetadataURL is the RFC 9728 metadata document announced in
	// every challenge, e.g.
	// https://proxy.example/.well-known/oauth-protected-resource/mcp.
	// Required.
	ResourceMetadataURL string
	// RequiredScopes must all be carried by every token; they are advertised
	// in the challenges so that clients know what to ask for.
	RequiredScopes []string
	// AllowedOrigins are the browser origins (exact scheme://host[:port])
	// that may call the gateway. A request with an Origin header outside
	// this list is refused with 403; requests without Origin (non-browser
	// clients) pass. The proxy's own origin is not implied: list it for a
	// browser client served from BASE_URL.
	AllowedOrigins []string
	// UserHeader carries the subject to the backend. Default
	// X-Forwarded-User.
	UserHeader string
	// EmailHeader carries the user's email, only when the upstream IdP said
	// it is verified. Default X-Forwarded-Email.
	EmailHeader string
	// ClientHeader carries the client id of a machine client acting for
	// itself (client_credentials), which gets no UserHeader or
	// EmailHeader: a backend tells machines from people by which header
	// it receives. Default X-Forwarded-Client.
	ClientHeader string
	// UpstreamTokenHeader, when set, forwards the upstream IdP's access
	// token to the backend in this header (the raw token, no scheme). Off by
	// default: it hands the backend a credential valid at the IdP (and at
	// whatever else accepts it), so a compromised or logging backend leaks
	// the user's upstream identity. Enable it only for a backend you trust
	// as much as oidcproxy and that needs to call the IdP's APIs as the
	// user. The token is forwarded as stored; the gateway does not refresh
	// it.
	UpstreamTokenHeader string
	// MaxBodyBytes bounds a request body; larger bodies are answered 413.
	// Default 4 MiB. The body is received whole before the backend is
	// called, so it is also the memory one request may hold.
	MaxBodyBytes int64
	// BodyTimeout bounds the time a client may take to send a request body,
	// counted from the moment the request's headers have arrived; a slower
	// body is answered 408 and its connection closed. It applies to the
	// body only, never to the response (event streams stay open). Default
	// DefaultBodyTimeout.
	BodyTimeout time.Duration
	// BackendIdleTimeout is how long an idle keep-alive connection to the
	// backend is kept for reuse. It must be shorter than the backend's own
	// keep-alive timeout: a backend that closes an idle connection just as
	// the gateway sends a request on it leaves the request failed (a 502)
	// when bytes of it were already written. Default
	// DefaultBackendIdleTimeout.
	BackendIdleTimeout time.Duration
	// InjectTrace, when set, writes the current trace context (W3C
	// traceparent) into the backend request's headers, replacing whatever
	// trace headers the client sent, so the backend's spans join our trace.
	InjectTrace func(ctx context.Context, h http.Header)
	// Observe receives byte counts and stream opens/closes for metrics.
	Observe Observer
	// SubjectLimit, when set, rate-limits each subject's requests (after
	// the bearer check, before the body is received); nil is no limit.
	SubjectLimit *ratelimit.Keys
	// LimitRefused, when set, is told of every request SubjectLimit
	// refused, with the limit's name ("gateway"), for metrics.
	LimitRefused func(ctx context.Context, limit string)
	// ClientIP tells a request's client address for the audit records
	// (behind trusted proxies, the one they forwarded for); nil takes the
	// connection's peer.
	ClientIP *clientip.Resolver
	// Policy decides which JSON-RPC requests a caller may make and which
	// entries of list answers it sees (policy.go). Nil, or a source that
	// holds no policy, allows every request.
	Policy ports.PolicySource
}

// Gateway is the bearer-checking streaming reverse proxy in front of an MCP
// server. It is safe for concurrent use.
type Gateway struct {
	verify ports.VerifyAccessToken
	log    *slog.Logger
	proxy  *httputil.ReverseProxy
	trans  *http.Transport

	resource       string
	requiredScopes []string
	origins        map[string]struct{}
	maxBody        int64
	bodyTimeout    time.Duration
	// deadlineWarning logs once that the server cannot set read deadlines.
	deadlineWarning sync.Once

	mount    string // without a trailing slash; "" when mounted at "/"
	mountEsc string
	upstream *url.URL
	upEsc    string

	userHeader, emailHeader, clientHeader, upstreamTokenHeader string

	injectTrace func(ctx context.Context, h http.Header)
	observe     Observer
	pol         policyGate

	subjectLimit *ratelimit.Keys
	limitRefused func(ctx context.Context, limit string)
	clientIP     *clientip.Resolver

	// The RFC 6750 challenges (RFC 9728 5.1), built once; challengeNoToken
	// is the header value of every request without a token.
	challenges       oauthhttp.BearerChallenge
	challengeNoToken []string
}

var _ http.Handler = (*Gateway)(nil)

// forwardKey is the context key under which ServeHTTP hands the verified
// identity to the proxy's Rewrite hook.
type forwardKey struct{}

// forward is what the backend learns about the caller, and the per-request
// state of the proxying: one allocation per request carries all of it.
type forward struct {
	// user is the subject of a person's token; client the client id of a
	// machine's (never both).
	user, email, client, upstreamToken string
	// values back the identity header values rewrite sets (user or client,
	// email, upstream token), so that setting them allocates nothing.
	values [3][1]string
	// body is the request body, received whole; nil when empty.
	body []byte
	// out counts the response body when observed.
	out countingBody
	// in is the caller as the policy sees it, set when a policy decides.
	in policy.Input
	// list filters the answer to a list request when filtering is set.
	list      listFilter
	filtering bool
}

// New builds a Gateway. verify checks bearer tokens and, with
// UpstreamTokenHeader, hands over the upstream access token to forward.
func New(verify ports.VerifyAccessToken, logger *slog.Logger, opts Options) (*Gateway, error) {
	if verify == nil {
		return nil, errors.New("gateway: new: nil access token verifier")
	}
	if logger == nil {
		return nil, errors.New("gateway: new: nil logger")
	}
	g := &Gateway{
		verify:         verify,
		log:            logger,
		resource:       opts.Resource,
		requiredScopes: append([]string(nil), opts.RequiredScopes...),
		maxBody:        opts.MaxBodyBytes,
		bodyTimeout:    opts.BodyTimeout,
		injectTrace:    opts.InjectTrace,
		observe:        opts.Observe,
		subjectLimit:   opts.SubjectLimit,
		limitRefused:   opts.LimitRefused,
		clientIP:       opts.ClientIP,
		pol:            newPolicyGate(opts),
	}
	if g.maxBody <= 0 {
		g.maxBody = DefaultMaxBodyBytes
	}
	if g.bodyTimeout <= 0 {
		g.bodyTimeout = DefaultBodyTimeout
	}
	idle := opts.BackendIdleTimeout
	if idle <= 0 {
		idle = DefaultBackendIdleTimeout
	}
	if err := g.setUpstream(opts.Upstream); err != nil {
		return nil, fmt.Errorf("gateway: new: %w", err)
	}
	if err := g.setResource(opts); err != nil {
		return nil, fmt.Errorf("gateway: new: %w", err)
	}
	if err := g.setOrigins(opts.AllowedOrigins); err != nil {
		return nil, fmt.Errorf("gateway: new: %w", err)
	}
	if err := g.setHeaders(opts); err != nil {
		return nil, fmt.Errorf("gateway: new: %w", err)
	}
	g.challenges = oauthhttp.NewBearerChallenge(opts.ResourceMetadataURL, g.requiredScopes)
	g.challengeNoToken = []string{g.challenges.NoToken()}

	g.trans = newTransport(idle)
	g.proxy = newReverseProxy(g.trans, g.rewrite, g.proxyError, logger)
	if g.observe.active() || opts.Policy != nil {
		g.proxy.ModifyResponse = g.modifyResponse
	}
	return g, nil
}

func (g *Gateway) setUpstream(u *url.URL) error {
	switch {
	case u == nil:
		return errors.New("upstream URL is required")
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("upstream URL must be http or https")
	case u.Host == "":
		return errors.New("upstream URL has no host")
	case u.User != nil:
		// Credentials in the URL would end up in logs and error messages.
		return errors.New("upstream URL must not carry credentials")
	case u.Fragment != "":
		return errors.New("upstream URL must not have a fragment")
	}
	up := *u
	up.RawPath = ""
	if u.RawPath != "" && u.EscapedPath() == u.RawPath {
		up.RawPath = u.RawPath
	}
	g.upstream = &up
	g.upEsc = up.EscapedPath()
	return nil
}

func (g *Gateway) setResource(opts Options) error {
	if opts.Resource == "" {
		return errors.New("resource is required")
	}
	if opts.ResourceMetadataURL == "" {
		return errors.New("resource metadata URL is required")
	}
	mount := opts.MountPath
	if mount == "" {
		r, err := url.Parse(opts.Resource)
		if err != nil {
			return fmt.Errorf("resource: %w", err)
		}
		mount = r.Path
	}
	if mount == "" {
		mount = "/"
	}
	if !strings.HasPrefix(mount, "/") || hasDotSegment(mount) {
		return fmt.Errorf("mount path %q must be an absolute path without dot segments", mount)
	}
	g.mount = strings.TrimSuffix(mount, "/")
	g.mountEsc = (&url.URL{Path: g.mount}).EscapedPath()
	return nil
}

func (g *Gateway) setOrigins(origins []string) error {
	g.origins = make(map[string]struct{}, len(origins))
	for _, o := range origins {
		n, ok := normalizeOrigin(o)
		if !ok {
			return fmt.Errorf("allowed origin %q is not of the form scheme://host[:port]", o)
		}
		g.origins[n] = struct{}{}
	}
	return nil
}

func (g *Gateway) setHeaders(opts Options) error {
	g.userHeader = orDefault(opts.UserHeader, DefaultUserHeader)
	g.emailHeader = orDefault(opts.EmailHeader, DefaultEmailHeader)
	g.clientHeader = orDefault(opts.ClientHeader, DefaultClientHeader)
	g.upstreamTokenHeader = opts.UpstreamTokenHeader
	names := []string{g.userHeader, g.emailHeader, g.clientHeader}
	if g.upstreamTokenHeader != "" {
		names = append(names, g.upstreamTokenHeader)
	}
	for i, n := range names {
		if !isToken(n) {
			return fmt.Errorf("header name %q is not a valid HTTP field name", n)
		}
		if reservedHeader(n) {
			return fmt.Errorf("header name %q is reserved by HTTP or the MCP transport", n)
		}
		for _, m := range names[:i] {
			if headerAlias(n, m) {
				return fmt.Errorf("header names %q and %q collide", m, n)
			}
		}
	}
	g.userHeader = http.CanonicalHeaderKey(g.userHeader)
	g.emailHeader = http.CanonicalHeaderKey(g.emailHeader)
	g.clientHeader = http.CanonicalHeaderKey(g.clientHeader)
	if g.upstreamTokenHeader != "" {
		g.upstreamTokenHeader = http.CanonicalHeaderKey(g.upstreamTokenHeader)
	}
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// ServeHTTP checks the request's origin and bearer token, receives its body,
// then streams it to the backend and the answer back.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// First of all, so that every answer, refusals included, waits for a
	// slow body no longer than BodyTimeout.
	rc := g.startBodyDeadline(w, r)
	if origin, ok := r.Header["Origin"]; ok && !g.originAllowed(origin) {
		g.refuse(w, r, http.StatusForbidden, bodyOriginRefused, "origin not allowed")
		return
	}
	switch r.Method {
	case http.MethodPost, http.MethodGet, http.MethodDelete:
	default:
		w.Header().Set("Allow", allowedMethods)
		g.refuse(w, r, http.StatusMethodNotAllowed, bodyMethodNotAllowed, "method not allowed")
		return
	}
	suffix, ok := g.suffix(r.URL.Path)
	if !ok {
		g.refuse(w, r, http.StatusNotFound, bodyNotFound, "path outside the gateway's mount point")
		return
	}
	if hasDotSegment(suffix) {
		// The backend might resolve "/mcp/../admin" to a path the operator
		// never exposed.
		g.refuse(w, r, http.StatusBadRequest, bodyBadPath, "path with dot segments")
		return
	}
	if strings.Contains(r.URL.RawQuery, "access_token") && r.URL.Query().Has("access_token") {
		// RFC 6750 2.3 tokens end up in logs and would travel on to the
		// backend: only the header is accepted (bearer_methods_supported).
		g.reject(w, r, domain.ErrInvalidRequest("access tokens are accepted only in the Authorization header"))
		return
	}
	token, status := bearerToken(r.Header)
	switch status {
	case tokenAbsent:
		g.challenge(w, r)
		return
	case tokenMalformed:
		g.reject(w, r, domain.ErrInvalidRequest("the Authorization header is not a single Bearer token"))
		return
	}
	access, err := g.verify.Handle(r.Context(), ports.VerifyAccessTokenCommand{
		Token:          token,
		Resource:       g.resource,
		RequiredScopes: g.requiredScopes,
		WithUpstream:   g.upstreamTokenHeader != "",
	})
	if err != nil {
		g.reject(w, r, err)
		return
	}
	if g.overLimit(w, r, access) {
		return
	}
	if r.ContentLength > g.maxBody {
		g.refuse(w, r, http.StatusRequestEntityTooLarge, bodyTooLarge, "request body too large")
		return
	}
	fwd, err := g.identity(access)
	if err != nil {
		g.reject(w, r, domain.ErrServerError(err))
		return
	}
	body, why, err := g.receive(w, r, rc)
	if why != bodyOK {
		g.refuseBody(w, r, why, err)
		return
	}
	fwd.body = body
	if !g.authorize(w, r, &access, fwd) {
		return
	}
	out := r.WithContext(context.WithValue(r.Context(), forwardKey{}, fwd))
	// The body goes out with its exact length (a chunked upload becomes a
	// Content-Length one) and can be produced again for a retry.
	out.Body, out.ContentLength, out.TransferEncoding, out.GetBody = http.NoBody, 0, nil, nil
	if body != nil {
		out.Body, _ = fwd.replay()
		out.ContentLength = int64(len(body))
		out.GetBody = fwd.replay
		if g.observe.BytesIn != nil {
			g.observe.BytesIn(r.Context(), out.ContentLength)
		}
	}
	g.proxy.ServeHTTP(w, out)
}

// Close closes the idle connections to the backend.
func (g *Gateway) Close() {
	g.trans.CloseIdleConnections()
}

// identity builds the headers the backend receives for a verified token:
// a person's subject (and verified email), or a machine client's id, in
// headers of their own, so that a backend never takes one for the other.
func (g *Gateway) identity(access ports.VerifiedAccess) (*forward, error) {
	if access.Grant.Machine {
		f := &forward{client: access.Grant.ClientID}
		if f.client == "" || !validHeaderValue(f.client) {
			return nil, errors.New("gateway: the client id cannot be sent in an HTTP header")
		}
		return f, nil
	}
	f := &forward{user: access.Grant.Subject}
	if f.user == "" {
		f.user = access.Token.Subject
	}
	if access.Grant.Identity.EmailVerified {
		f.email = access.Grant.Identity.Email
	}
	// A grant made without an upstream login (an enterprise IdP's ID-JAG)
	// has no upstream token: the header is then left out, never empty.
	if g.upstreamTokenHeader != "" {
		f.upstreamToken = access.UpstreamAccessToken
	}
	// The transport would refuse these too, but with an error that reads
	// like a backend failure; saying so here points at the real cause.
	switch {
	case f.user == "" || !validHeaderValue(f.user):
		return nil, errors.New("gateway: the subject cannot be sent in an HTTP header")
	case !validHeaderValue(f.email):
		return nil, errors.New("gateway: the email cannot be sent in an HTTP header")
	case !validHeaderValue(f.upstreamToken):
		return nil, errors.New("gateway: the upstream access token cannot be sent in an HTTP header")
	}
	return f, nil
}

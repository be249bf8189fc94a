package httpapi

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/wire"
	"github.com/gorilla/mux"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/internal/clientip"
	"github.com/oidcproxy/oidcproxy/ports"
)

//go:embed templates/*.html
var templateFS embed.FS

var pages = template.Must(template.ParseFS(templateFS, "templates/*.html"))

// Body limits: OAuth requests are small; a bound stops memory exhaustion.
const (
	maxFormBytes = 64 << 10
	maxJSONBytes = 64 << 10
)

// Check is one readiness check (store writable, IdP reachable).
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// Options configure the HTTP API.
type Options struct {
	// Issuer is our issuer identifier, exactly as configured.
	Issuer string
	// BaseURL is where this server is reachable; endpoints hang off it.
	BaseURL string
	// CallbackPath is the path the upstream IdP redirects to.
	CallbackPath string
	// Resource is the protected MCP server's canonical URI, and MCPPath its
	// path (for the RFC 9728 metadata location).
	Resource string
	MCPPath  string
	// ScopesSupported are advertised in the metadata documents.
	ScopesSupported []string
	// CIMD advertises client_id_metadata_document_supported: URL client_ids
	// are resolved through their Client ID Metadata Documents.
	CIMD bool
	// PrivateKeyJWT advertises private_key_jwt client authentication and
	// its signing algorithms (the application was built with an assertion
	// verifier).
	PrivateKeyJWT bool
	// CookieKey signs cookies (HKDF-derived, distinct from other keys).
	CookieKey []byte
	// Consent is the consent mode (for the remember cookie).
	Consent domain.ConsentMode
	// ReadyTimeout bounds the readiness checks.
	ReadyTimeout time.Duration
	// Checks run at /readyz.
	Checks []Check
	// Middleware wraps every route, innermost last (tracing, metrics).
	Middleware []func(http.Handler) http.Handler
	// Gateway, when set, serves MCPPath and everything below it. It
	// carries most of the traffic, so its requests skip the router (route
	// matching, per-request middleware chains and request copies):
	// ServeHTTP sends them straight to the gateway, wrapped in the same
	// panic recovery and security headers as every route and then in
	// GatewayMiddleware.
	Gateway http.Handler
	// GatewayMiddleware wraps the gateway, innermost last; it plays the
	// part Middleware plays for the routes.
	GatewayMiddleware []func(http.Handler) http.Handler
	// BodyTimeout is how long a client may take to send a request
	// body to any route but the gateway's (which streams, and bounds its
	// bodies itself), and to the admin listener; zero means
	// DefaultBodyTimeout.
	BodyTimeout time.Duration
	// ClientIP tells a request's client address (behind trusted proxies,
	// the one they forwarded for); nil takes the connection's peer.
	ClientIP *clientip.Resolver
	// Limits are the per-client-address rate limits of the endpoints.
	Limits Limits
}

// Server holds the HTTP handlers.
type Server struct {
	app     ports.Application
	jwks    ports.TokenIssuer
	opts    Options
	log     *slog.Logger
	cookies cookieJar
	// api serves every request outside the gateway's mount: the router
	// behind panic recovery, security headers and the body reader.
	api http.Handler
	// gateway is Options.Gateway with its middleware, or nil.
	gateway http.Handler
}

// ProviderSet builds the HTTP API from the Options the composition root
// maps from its configuration.
var ProviderSet = wire.NewSet(New)

// New builds the HTTP API. Every dependency is required.
func New(app ports.Application, jwks ports.TokenIssuer, logger *slog.Logger, opts Options) (*Server, error) {
	var errs []error
	if app.RegisterClient == nil || app.StartAuthorization == nil || app.Consent == nil ||
		app.CompleteCallback == nil || app.ExchangeToken == nil || app.RefreshToken == nil || app.Revoke == nil ||
		app.Introspect == nil {
		errs = append(errs, errors.New("httpapi: application is incomplete"))
	}
	if jwks == nil {
		errs = append(errs, errors.New("httpapi: nil token issuer"))
	}
	if logger == nil {
		errs = append(errs, errors.New("httpapi: nil logger"))
	}
	base, err := url.Parse(opts.BaseURL)
	if err != nil || !base.IsAbs() {
		errs = append(errs, fmt.Errorf("httpapi: base URL %q is not absolute", opts.BaseURL))
	}
	if _, err := url.Parse(opts.Issuer); err != nil || opts.Issuer == "" {
		errs = append(errs, fmt.Errorf("httpapi: issuer %q is not a URL", opts.Issuer))
	}
	if len(opts.CookieKey) < 32 {
		errs = append(errs, errors.New("httpapi: cookie key must be at least 32 bytes"))
	}
	if !strings.HasPrefix(opts.CallbackPath, "/") || !strings.HasPrefix(opts.MCPPath, "/") {
		errs = append(errs, errors.New("httpapi: callback and MCP paths must start with /"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 5 * time.Second
	}
	if opts.BodyTimeout <= 0 {
		opts.BodyTimeout = DefaultBodyTimeout
	}
	opts.BaseURL = strings.TrimSuffix(opts.BaseURL, "/")
	s := &Server{
		app:     app,
		jwks:    jwks,
		opts:    opts,
		log:     logger,
		cookies: newCookieJar(opts.CookieKey, base.Scheme == "https"),
	}
	s.api = s.recoverPanics(securityHeaders(s.limitRequests(s.readBodies(s.routes()))))
	if opts.Gateway != nil {
		h := opts.Gateway
		for i := len(opts.GatewayMiddleware) - 1; i >= 0; i-- {
			h = opts.GatewayMiddleware[i](h)
		}
		s.gateway = s.recoverPanics(securityHeaders(h))
	}
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.gateway != nil && underMount(r.URL.Path, s.opts.MCPPath) {
		s.gateway.ServeHTTP(w, r)
		return
	}
	s.api.ServeHTTP(w, r)
}

// underMount reports whether path is the mount point or below it: "/mcp"
// covers "/mcp" and "/mcp/x", not "/mcpx".
func underMount(path, mount string) bool {
	return strings.HasPrefix(path, mount) && (len(path) == len(mount) || path[len(mount)] == '/' || strings.HasSuffix(mount, "/"))
}

// endpoint builds an absolute URL of ours.
func (s *Server) endpoint(path string) string { return s.opts.BaseURL + path }

func (s *Server) routes() *mux.Router {
	r := mux.NewRouter()
	for _, m := range s.opts.Middleware {
		r.Use(m)
	}

	issuerPath := ""
	if u, err := url.Parse(s.opts.Issuer); err == nil {
		issuerPath = strings.TrimSuffix(u.EscapedPath(), "/")
	}
	metadata := cors(http.HandlerFunc(s.handleMetadata))
	for _, wk := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		r.Handle(wk, metadata).Methods(http.MethodGet, http.MethodHead, http.MethodOptions)
		if issuerPath != "" {
			// RFC 8414 3.1 inserts the issuer's path after the well-known
			// segment; OpenID Connect Discovery appends the well-known
			// segment to the issuer. Clients try both.
			r.Handle(wk+issuerPath, metadata).Methods(http.MethodGet, http.MethodHead, http.MethodOptions)
			r.Handle(issuerPath+wk, metadata).Methods(http.MethodGet, http.MethodHead, http.MethodOptions)
		}
	}
	resourceMeta := cors(http.HandlerFunc(s.handleResourceMetadata))
	r.Handle(ResourceMetadataPath, resourceMeta).Methods(http.MethodGet, http.MethodHead, http.MethodOptions)
	r.Handle(ResourceMetadataPath+s.opts.MCPPath, resourceMeta).Methods(http.MethodGet, http.MethodHead, http.MethodOptions)
	r.Handle("/jwks.json", cors(http.HandlerFunc(s.handleJWKS))).Methods(http.MethodGet, http.MethodHead, http.MethodOptions)

	r.Handle("/register", cors(http.HandlerFunc(s.handleRegister))).Methods(http.MethodPost, http.MethodOptions)
	r.HandleFunc("/authorize", s.handleAuthorize).Methods(http.MethodGet, http.MethodPost)
	r.HandleFunc("/consent", s.handleConsentPage).Methods(http.MethodGet)
	r.HandleFunc("/consent", s.handleConsentDecision).Methods(http.MethodPost)
	r.HandleFunc(s.opts.CallbackPath, s.handleCallback).Methods(http.MethodGet)
	r.Handle(TokenPath, cors(http.HandlerFunc(s.handleToken))).Methods(http.MethodPost, http.MethodOptions)
	r.Handle("/revoke", cors(http.HandlerFunc(s.handleRevoke))).Methods(http.MethodPost, http.MethodOptions)
	r.HandleFunc("/introspect", s.handleIntrospect).Methods(http.MethodPost)

	r.HandleFunc("/healthz", s.handleHealthz).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/readyz", s.handleReadyz).Methods(http.MethodGet, http.MethodHead)

	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "not_found", ErrorDescription: "no such endpoint"})
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: "invalid_request", ErrorDescription: "method not allowed"})
	})
	return r
}

// recoverPanics turns a panic into a logged 500 instead of a dropped
// connection; a panic is a bug, never an answer to bad input.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(r.Context(), "panic while serving request", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v))
				writeJSON(w, http.StatusInternalServerError, errorBody{Error: "server_error", ErrorDescription: "internal error"})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// securityHeaders applies to every answer.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// Shared value slices: Set would allocate two per request, and
		// every gateway request passes here. Nothing writes into a header
		// value in place; an Add (ReverseProxy copying a backend's header
		// of the same name) appends, and with len == cap that copies.
		h["X-Content-Type-Options"] = nosniff
		h["Referrer-Policy"] = noReferrer
		next.ServeHTTP(w, r)
	})
}

var (
	nosniff    = []string{"nosniff"}
	noReferrer = []string{"no-referrer"}
)

// cors allows any origin on the endpoints browser-based MCP clients call
// directly (metadata, JWKS, registration, token, revocation). It never
// applies to /authorize or /consent, which are navigations, not fetches.
// Credentials are never allowed, so "*" exposes nothing cookie-bound.
func cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Expose-Headers", "WWW-Authenticate")
		if r.Method == http.MethodOptions {
			h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, MCP-Protocol-Version")
			h.Set("Access-Control-Max-Age", "86400")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// renderPage renders an HTML page that may never be framed or cached.
func (s *Server) renderPage(w http.ResponseWriter, status int, name string, data any) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'")
	var buf strings.Builder
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		s.log.Error("render page", "template", name, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(buf.String()))
}

type errorPage struct {
	Code        string
	Description string
}

// jsonEncoder writes JSON without HTML escaping: our documents hold URLs with
// "&", and they are served as application/json, never embedded in HTML.
func jsonEncoder(w http.ResponseWriter) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc
}

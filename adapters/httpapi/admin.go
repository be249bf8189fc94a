package httpapi

import (
	"crypto/subtle"
	"errors"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// AdminOptions configure the admin listener's handler.
type AdminOptions struct {
	// Keys administers the signing key ring.
	Keys ports.KeyManager
	// MaxTokenTTL is how long a retired key stays published after a
	// rotation: at least the access-token lifetime.
	MaxTokenTTL time.Duration
	// Backup streams a consistent copy of the store; nil when the store
	// cannot (memory).
	Backup ports.Backuper
	// Admin serves the client and grant endpoints (adminclients.go); the
	// zero value leaves them out.
	Admin ports.Admin
	// Metrics serves /metrics; nil leaves it out.
	Metrics http.Handler
	// Token, when set, is required as a bearer token on the key and backup
	// endpoints; when empty they answer loopback peers only.
	Token string
	// Addr is the admin listener's configured address (host:port): besides
	// loopback literals, its host is the one Host header the key and
	// backup endpoints accept.
	Addr string
	// ReloadPolicy re-reads the access policy file (POST /policy/reload)
	// and returns the summary of the policy now in force; on error the
	// previous policy stays, and the error lists the file's problems
	// (ErrNoPolicyFile when there is no file). Nil leaves the route out.
	ReloadPolicy func() (string, error)
}

// AdminRequestHeader marks a request to the admin listener as sent by a
// program, not by a web page: a browser sends a custom header cross-origin
// only after a CORS preflight, which the admin listener never grants, so a
// page elsewhere cannot forge a state change. Every request that changes
// state (POST /keys/rotate) must carry it, or be application/json, which
// needs the same preflight. `oidcproxy keys` sends it.
const AdminRequestHeader = "X-OIDCProxy-Admin"

// KeyInfo is one key as the admin API and `oidcproxy keys list` show it
// (never the private half).
type KeyInfo struct {
	ID          string    `json:"kid"`
	Algorithm   string    `json:"alg"`
	CreatedAt   time.Time `json:"created_at"`
	Active      bool      `json:"active"`
	NotAfter    time.Time `json:"not_after,omitzero"`
	RemoveAfter time.Time `json:"remove_after,omitzero"`
}

// DescribeKey describes a key for listings.
func DescribeKey(k domain.SigningKey) KeyInfo {
	return KeyInfo{ID: k.ID, Algorithm: k.Algorithm, CreatedAt: k.CreatedAt, Active: k.NotAfter.IsZero(),
		NotAfter: k.NotAfter, RemoveAfter: k.RemoveAfter}
}

// Admin is the handler of the admin listener: health, readiness and metrics
// for probes and scrapers, plus key administration, backup, the client
// and grant endpoints and the access policy reload, which hand out or
// change secrets or access and so need ADMIN_TOKEN (or, without one, a
// loopback peer such as the CLI on the same host or kubectl port-forward).
//
// A loopback peer is not necessarily a person at this host: a web page in
// a browser on it can send requests to 127.0.0.1 too, either cross-origin
// (cross-site request forgery) or same-origin after pointing a name it
// controls at 127.0.0.1 (DNS rebinding). The key and backup endpoints
// therefore also refuse (see adminOnly) a Host header that is a foreign
// name, any request a browser marks as cross-origin, and a state change
// that a page could send without a CORS preflight. These rules hold even
// with a token, as a second line of defence.
//
// /healthz, /readyz and /metrics stay open to any peer and any Host: the
// kubelet and Prometheus address the pod by its IP or a service name
// that cannot be known here, and what they return (status, counters) is
// neither secret nor personal.
func (s *Server) Admin(opts AdminOptions) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	if opts.Metrics != nil {
		mux.Handle("GET /metrics", opts.Metrics)
	}
	guarded := http.NewServeMux()
	s.adminRoutes(guarded, opts)
	g := s.adminOnly(opts, guarded)
	mux.Handle("/keys", g)
	mux.Handle("/keys/", g)
	mux.Handle("/backup", g)
	if opts.Admin != (ports.Admin{}) {
		s.adminManageRoutes(guarded, opts.Admin)
		for _, path := range []string{"/clients", "/clients/", "/grants", "/grants/"} {
			mux.Handle(path, g)
		}
	}
	mux.Handle("/policy/", g)
	return s.readBodies(mux)
}

// adminOnly lets through requests that pass every rule of Admin: a Host
// header naming this listener, no cross-origin browser request, a
// non-simple request for a state change, and the admin token or, when no
// token is configured, a loopback peer.
func (s *Server) adminOnly(opts AdminOptions, next http.Handler) http.Handler {
	cfgHost, _, _ := net.SplitHostPort(opts.Addr)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refuse := func(reason string) {
			s.log.WarnContext(r.Context(), "admin request refused", "path", r.URL.Path, "remote_addr", r.RemoteAddr, "reason", reason)
			writeJSON(w, http.StatusForbidden, errorBody{Error: "access_denied", ErrorDescription: "admin endpoint: " + reason})
		}
		switch {
		case !adminHostAllowed(r.Host, cfgHost):
			refuse("the Host header names neither a loopback address nor the admin address")
		case crossOrigin(r):
			refuse("cross-origin requests are refused")
		case !safeMethod(r.Method) && !programRequest(r):
			refuse("a state change needs the " + AdminRequestHeader + " header or an application/json body")
		case !s.adminAuthorized(opts.Token, r):
			refuse("missing or wrong admin token")
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// adminAuthorized checks the admin token or, when none is configured, that
// the peer is on loopback.
func (s *Server) adminAuthorized(token string, r *http.Request) bool {
	if token != "" {
		scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		return ok && strings.EqualFold(scheme, "Bearer") &&
			subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(token)) == 1
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// adminHostAllowed decides whether a request's Host header may reach the
// key and backup endpoints. DNS rebinding needs a name the attacker
// controls, so names are refused except:
//   - "localhost", which browsers resolve to loopback themselves, never
//     through DNS (so no attacker can point it elsewhere, and a page that
//     uses it is cross-origin to us and caught by the Origin rules);
//   - the host of the configured admin address, which the operator chose.
//
// IP literals cannot be rebound: loopback ones are always allowed, and
// every one is when the listener binds all interfaces (0.0.0.0, ::, or
// an empty host), since each of them is then an address of this listener.
func adminHostAllowed(hostHeader, cfgHost string) bool {
	host := hostHeader
	if h, _, err := net.SplitHostPort(hostHeader); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" {
		return false
	}
	if strings.EqualFold(host, "localhost") || (cfgHost != "" && strings.EqualFold(host, cfgHost)) {
		return true
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return false
	}
	return ip.IsLoopback() || cfgHost == "" || cfgHost == "0.0.0.0" || cfgHost == "::"
}

// crossOrigin reports whether a browser marked the request as coming from
// another origin: an Origin header other than this listener's own (the
// opaque "null" included), or Sec-Fetch-Site cross-site or same-site (a
// page on another port of localhost is same-site). Programs send neither
// header.
func crossOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return true
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	u, err := url.Parse(origin)
	return err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host)
}

// safeMethod reports the methods that change nothing.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead
}

// keyFailure reports a failed key-ring operation: temporarily_unavailable
// (503, try again) when the store could not be reached, server_error
// otherwise.
func keyFailure(err error) error {
	if errors.Is(err, ports.ErrUnavailable) {
		return domain.ErrTemporarilyUnavailable("the store is temporarily unavailable; try again shortly", err)
	}
	return domain.ErrServerError(err)
}

// programRequest reports whether a request is one that a browser would
// send cross-origin only after a CORS preflight: it carries
// AdminRequestHeader, or declares a JSON body.
func programRequest(r *http.Request) bool {
	if r.Header.Get(AdminRequestHeader) != "" {
		return true
	}
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && ct == "application/json"
}

func (s *Server) adminRoutes(mux *http.ServeMux, opts AdminOptions) {
	if opts.ReloadPolicy != nil {
		mux.HandleFunc("POST /policy/reload", s.handlePolicyReload(opts.ReloadPolicy))
	}
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		keys, err := opts.Keys.Keys(r.Context())
		if err != nil {
			s.writeJSONError(w, r, keyFailure(err))
			return
		}
		out := make([]KeyInfo, 0, len(keys))
		for _, k := range keys {
			out = append(out, DescribeKey(k))
		}
		writeJSON(w, http.StatusOK, map[string]any{"keys": out})
	})
	mux.HandleFunc("POST /keys/rotate", func(w http.ResponseWriter, r *http.Request) {
		k, err := opts.Keys.Rotate(r.Context(), opts.MaxTokenTTL)
		if err != nil {
			s.writeJSONError(w, r, keyFailure(err))
			return
		}
		s.log.InfoContext(r.Context(), "signing key rotated", "kid", k.ID)
		writeJSON(w, http.StatusOK, DescribeKey(k))
	})
	mux.HandleFunc("GET /backup", func(w http.ResponseWriter, r *http.Request) {
		if opts.Backup == nil {
			s.writeJSONError(w, r, domain.ErrInvalidRequest("this store cannot be backed up (in-memory)"))
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="oidcproxy-backup.db"`)
		if _, err := opts.Backup.Backup(r.Context(), w); err != nil {
			// Headers are gone; abort the response so the client sees a
			// broken transfer rather than a truncated file.
			s.log.ErrorContext(r.Context(), "backup failed", "error", err)
			panic(http.ErrAbortHandler)
		}
	})
}

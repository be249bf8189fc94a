package httpapi

import (
	"crypto/subtle"
	"net"
	"net/http"
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
	// Metrics serves /metrics; nil leaves it out.
	Metrics http.Handler
	// Token, when set, is required as a bearer token on the key and backup
	// endpoints; when empty they answer loopback peers only.
	Token string
}

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
// for probes and scrapers, plus key administration and backup, which hand
// out or change secrets and so need ADMIN_TOKEN (or, without one, a
// loopback peer such as the CLI on the same host or kubectl port-forward).
func (s *Server) Admin(opts AdminOptions) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	if opts.Metrics != nil {
		mux.Handle("GET /metrics", opts.Metrics)
	}
	guarded := http.NewServeMux()
	mux.Handle("/keys", s.adminOnly(opts.Token, guarded))
	mux.Handle("/keys/", s.adminOnly(opts.Token, guarded))
	mux.Handle("/backup", s.adminOnly(opts.Token, guarded))
	s.adminRoutes(guarded, opts)
	return mux
}

// adminOnly lets through requests carrying the admin token or, when no
// token is configured, requests from a loopback address.
func (s *Server) adminOnly(token string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		allowed := false
		if token != "" {
			scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
			allowed = ok && strings.EqualFold(scheme, "Bearer") &&
				subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(token)) == 1
		} else if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			ip := net.ParseIP(host)
			allowed = ip != nil && ip.IsLoopback()
		}
		if !allowed {
			s.log.WarnContext(r.Context(), "admin request refused", "path", r.URL.Path, "remote_addr", r.RemoteAddr)
			writeJSON(w, http.StatusForbidden, errorBody{Error: "access_denied", ErrorDescription: "admin endpoint: missing or wrong admin token"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) adminRoutes(mux *http.ServeMux, opts AdminOptions) {
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		keys, err := opts.Keys.Keys(r.Context())
		if err != nil {
			s.writeJSONError(w, r, domain.ErrServerError(err))
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
			s.writeJSONError(w, r, domain.ErrServerError(err))
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

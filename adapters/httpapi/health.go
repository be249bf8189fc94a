package httpapi

import (
	"context"
	"net/http"
	"sync"
)

// handleHealthz answers as long as the process serves HTTP.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

type readiness struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// handleReadyz runs every readiness check concurrently within a timeout and
// names the ones that failed.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.ReadyTimeout)
	defer cancel()
	out := readiness{Status: "ok", Checks: map[string]string{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range s.opts.Checks {
		wg.Go(func() {
			result := "ok"
			if err := c.Run(ctx); err != nil {
				s.log.WarnContext(ctx, "readiness check failed", "check", c.Name, "error", err)
				result = "failed"
			}
			mu.Lock()
			defer mu.Unlock()
			out.Checks[c.Name] = result
			if result != "ok" {
				out.Status = "unavailable"
			}
		})
	}
	wg.Wait()
	status := http.StatusOK
	if out.Status != "ok" {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, out)
}

package httpapi

import (
	"errors"
	"net/http"
	"strings"
)

// ErrNoPolicyFile is what AdminOptions.ReloadPolicy returns when no policy
// file is configured: there is nothing to reload.
var ErrNoPolicyFile = errors.New("no access policy file is configured (OIDC_PROXY_POLICY_FILE)")

// policyReloaded is the answer to a successful POST /policy/reload.
type policyReloaded struct {
	Reloaded bool `json:"reloaded"`
	// Summary describes the policy now in force, counts only.
	Summary string `json:"summary"`
}

// policyRefused is the answer to a reload that kept the policy in force.
type policyRefused struct {
	Error            string   `json:"error"`
	ErrorDescription string   `json:"error_description"`
	Problems         []string `json:"problems"`
}

// handlePolicyReload re-reads the access policy file. A valid file's
// policy replaces the one in force at once, for every request decided
// after it; a file that cannot be used changes nothing, and the answer
// (422) lists every problem, as the log does.
func (s *Server) handlePolicyReload(reload func() (string, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		summary, err := reload()
		switch {
		case err == nil:
			writeJSON(w, http.StatusOK, policyReloaded{Reloaded: true, Summary: summary})
		case errors.Is(err, ErrNoPolicyFile):
			writeJSON(w, http.StatusBadRequest, errorBody{Error: "invalid_request", ErrorDescription: err.Error()})
		default:
			writeJSON(w, http.StatusUnprocessableEntity, policyRefused{
				Error:            "invalid_policy",
				ErrorDescription: "the policy file cannot be used; the policy in force stays",
				Problems:         problemsOf(err),
			})
		}
	}
}

// problemsOf lists the problems a reload reported: each of a joined error
// (the policy file loader reports every problem of a file at once), or
// the one error.
func problemsOf(err error) []string {
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		var out []string
		for _, e := range joined.Unwrap() {
			out = append(out, strings.ReplaceAll(e.Error(), "\n", " "))
		}
		return out
	}
	return []string{err.Error()}
}

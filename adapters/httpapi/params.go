package httpapi

import (
	"errors"
	"mime"
	"net/http"
	"net/url"
	"slices"

	"github.com/oidcproxy/oidcproxy/domain"
)

// errBodyTooLarge marks a request whose body exceeded its limit; the error
// writer answers 413 for it.
var errBodyTooLarge = errors.New("request body too large")

// checkParams rejects repeated parameters (RFC 6749 3.1 and 3.2: each may
// appear at most once), except those listed as repeatable (RFC 8707
// resource).
func checkParams(v url.Values, repeatable ...string) (url.Values, error) {
	for k, vs := range v {
		if len(vs) > 1 && !slices.Contains(repeatable, k) {
			return nil, domain.ErrInvalidRequest("parameter " + strconvQuote(k) + " is repeated")
		}
	}
	return v, nil
}

// formParams parses an application/x-www-form-urlencoded body, bounded, and
// ignores the query string (token endpoint parameters belong in the body).
func formParams(w http.ResponseWriter, r *http.Request, repeatable ...string) (url.Values, error) {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "application/x-www-form-urlencoded" {
		return nil, domain.ErrInvalidRequest("the request body must be application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, domain.ErrInvalidRequest("the request body is too large").WithCause(errBodyTooLarge)
		}
		return nil, domain.ErrInvalidRequest("the request body is not a valid form")
	}
	return checkParams(r.PostForm, repeatable...)
}

// strconvQuote quotes a client-supplied parameter name for an error
// description, shortened so the description stays readable.
func strconvQuote(s string) string {
	if len(s) > 40 {
		s = s[:40]
	}
	return `"` + url.QueryEscape(s) + `"`
}

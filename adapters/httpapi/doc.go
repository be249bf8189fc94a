// Package httpapi is the HTTP face of the authorization server: a gorilla/mux
// router with one file per endpoint, the rendering of domain errors as JSON
// documents, redirects or pages (errors.go, over the shared status table and
// error document of adapters/oauthhttp), signed cookies, the consent and
// error pages, and the per-client-address rate limits that run before any
// of it (ratelimit.go).
// It drives the inbound ports and knows nothing of storage or the upstream
// IdP.
package httpapi

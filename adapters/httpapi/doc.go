// Package httpapi is the HTTP face of the authorization server: a gorilla/mux
// router with one file per endpoint, the one table that maps domain errors to
// HTTP answers (errors.go), signed cookies, and the consent and error pages.
// It drives the inbound ports and knows nothing of storage or the upstream
// IdP.
package httpapi
